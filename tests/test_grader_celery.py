"""Grading on Celery workers (``--executor celery``) with a real Redis on loopback and two workers,
each a process of its own (``python -m autograder worker``).

The hostile corpus goes through the same two workers in tests/test_grader_corpus.py (when Redis
can be had); here: a worker killed with SIGKILL mid-task loses nothing and nothing is graded
twice, a grader killed with -9 resumes, and bad input (an unreachable broker or gradebook, a
worker of another version, a vanished submission) is said clearly.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder import celery_worker, grade
from autograder.worker import GradingLimits

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "autograder" / "assignments" / "10_ar" / "samples"
EXPECTED = json.loads((SAMPLES.parent / "samples_expected.json").read_text())
LIMITS = GradingLimits(probe_seconds=60, checks_seconds=300, cell_seconds=60, notebook_seconds=300,
                       submission_seconds=600, bpd_limit=50)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def test_an_unreachable_broker_is_named_within_seconds_before_any_grading(tmp_path):
    pytest.importorskip("celery")
    broker = f"redis://127.0.0.1:{_closed_port()}/0"
    began = time.monotonic()
    with pytest.raises(ConnectionError, match=f"the broker {broker} cannot be reached"):
        grade.grade(SAMPLES, tmp_path / "out", executor="celery", broker=broker, log=lambda *a: None)
    assert time.monotonic() - began < 10
    assert not (tmp_path / "out" / "state").exists()  # nothing was graded, not even intake
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", "--submitted", str(SAMPLES), "--out",
                           str(tmp_path / "cli"), "--executor", "celery", "--broker", broker],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 2 and f"error: the broker {broker} cannot be reached" in done.stderr, done.stderr
    worker = subprocess.run([sys.executable, "-m", "autograder", "worker", "--broker", broker],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert worker.returncode == 2 and f"the broker {broker} cannot be reached" in worker.stderr, worker.stderr


def test_an_unreachable_gradebook_is_named_within_seconds_before_any_grading(tmp_path):
    db = f"postgresql://grader@127.0.0.1:{_closed_port()}/gradebook"
    began = time.monotonic()
    with pytest.raises(ConnectionError, match="the gradebook postgresql"):
        grade.grade(SAMPLES, tmp_path / "out", db_url=db, log=lambda *a: None)
    assert time.monotonic() - began < 15
    assert not (tmp_path / "out" / "state").exists()


class _NoRedis:
    """Stands for the broker where a task is refused before anything is asked of it."""

    def get(self, key):
        return None

    def set(self, *args, **kwargs):
        return True

    def delete(self, *args):
        return 0


def test_a_worker_of_another_version_refuses_the_task_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setattr(celery_worker, "STATE", {"hostname": "w9@elsewhere", "fingerprint": "a" * 64,
                                                 "redis": _NoRedis(), "scratch": tmp_path})
    result = celery_worker.handle("t1", {"student": "s1", "fingerprint": "b" * 64, "files": {}, "notes": [],
                                         "limits": {}})
    assert result["final"] and "refused by worker w9@elsewhere" in result["failed"]
    assert "another version of the course or of the assignment" in result["failed"]
    assert "scores" not in result


def test_a_vanished_submission_is_flagged_not_retried(tmp_path, monkeypatch):
    from autograder.celery_app import grader_fingerprint

    fingerprint = grader_fingerprint()
    monkeypatch.setattr(celery_worker, "STATE", {"hostname": "w0", "fingerprint": fingerprint, "redis": _NoRedis(),
                                                 "scratch": tmp_path})
    payload = {"student": "s1", "fingerprint": fingerprint, "notes": [], "limits": {},
               "shared": str(tmp_path / "gone"), "sha256": {"pixelcnn.ipynb": "0" * 64}}
    result = celery_worker.handle("t2", payload)
    assert result["final"] and "vanished from the shared folder" in result["failed"]
    # The grader flags a final failure at once: no second attempt.
    from autograder.celery_executor import CeleryExecutor, _Task

    executor = CeleryExecutor("redis://unused", tmp_path, LIMITS, retries=5, log=lambda *a: None)
    executor.attempts = {"s1": []}
    flagged = executor._again_or_fail("t2", _Task("s1", 1, 0.0), result["failed"], final=True)
    assert flagged == {"student": "s1", "failed": result["failed"], "worker": None}


def test_a_failing_task_is_sent_again_then_flagged_never_dropped(tmp_path):
    from autograder.celery_executor import CeleryExecutor, _Task

    executor = CeleryExecutor("redis://unused", tmp_path, LIMITS, retries=1, log=lambda *a: None)
    executor.attempts = {"s1": []}
    sent = []
    executor._send = lambda student, attempt: sent.append((student, attempt))
    assert executor._again_or_fail("t1", _Task("s1", 1, 0.0, worker="w0"), "the grading worker died") is None
    assert sent == [("s1", 2)]  # sent again
    flagged = executor._again_or_fail("t2", _Task("s1", 2, 0.0, worker="w1"), "the grading worker died")
    assert flagged["failed"] == "the grading worker died (after 2 attempts)" and sent == [("s1", 2)]
    assert [a["worker"] for a in executor.attempts["s1"]] == ["w0", "w1"]


@pytest.fixture(scope="module")
def workers(redis_broker, tmp_path_factory):
    pytest.importorskip("celery", reason="celery is not installed (make setup installs it)")
    from redis_server import CeleryWorkers

    pool = CeleryWorkers(redis_broker, n=2, logs=tmp_path_factory.mktemp("celery-workers"))
    try:
        pool.start()
        yield pool
    finally:
        pool.stop()


def _leases(broker: str) -> dict[str, str]:
    from autograder.celery_app import redis_client

    client = redis_client(broker)
    return {key.decode().split(":")[-1]: (client.get(key) or b"").decode() for key in client.keys("arflow:lease:*")}


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_worker_killed_mid_task_loses_nothing_and_nothing_is_graded_twice(workers, redis_broker, tmp_path):
    from nbgrader.api import Gradebook

    students = ("blank", "partial", "loss_truncated")
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    for student in students:
        shutil.copytree(SAMPLES / student, submitted / student)
    outcome: dict = {}

    def run():
        try:
            outcome["summary"] = grade.grade(submitted, out, executor="celery", broker=redis_broker, seed=3,
                                             limits=LIMITS, log=lambda *a: None)
        except BaseException as err:  # reported by the test below
            outcome["error"] = err

    grader = threading.Thread(target=run)
    grader.start()
    deadline, leases = time.monotonic() + 300, {}
    while not leases and time.monotonic() < deadline and grader.is_alive():
        time.sleep(0.3)
        leases = _leases(redis_broker)
    assert leases, "no worker started a task"
    task_id, victim = next(iter(leases.items()))
    time.sleep(3)  # well into the task: the notebook and the black box are running
    victim_pid = workers.processes[victim].pid
    workers.kill(victim)
    grader.join(timeout=1100)
    assert not grader.is_alive() and "error" not in outcome, outcome.get("error")
    summary = outcome["summary"]
    survivor = next(name for name in workers.processes if name != victim)

    totals = {row["student_id"]: row["total"] for row in summary["rows"]}
    assert totals == {s: EXPECTED[s]["total"] for s in students}
    assert sorted(summary["committed"]) == sorted(students)  # each committed exactly once
    assert all(not row["flag"] for row in summary["rows"])
    killed = next(s for s in students if task_id.startswith(s + "-"))
    attempts = summary["results"][killed]["attempts"]
    assert attempts[0]["task_id"] == task_id and "was lost" in attempts[0]["outcome"], attempts
    assert attempts[-1] == {**attempts[-1], "worker": survivor, "outcome": "graded"}, attempts
    print(f"killed {victim} while it graded {killed}; its task went to {survivor}: {attempts}")
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        submissions = gb.assignment_submissions("10_ar")
        assert sorted(s.student.id for s in submissions) == sorted(students)  # one submission each
        assert {s.student.id: s.score for s in submissions} == totals
    for student in students:
        assert (out / "feedback" / student / "10_ar" / "pixelcnn.html").is_file()
        assert (out / "autograded" / student / "10_ar" / "pixelcnn.ipynb").is_file()
    assert not list((out / "work").iterdir()) if (out / "work").exists() else True
    # The killed worker left nothing running: its grading process (and with it the jails) died with it.
    time.sleep(2)
    mark = f"ARFLOW_GRADER_PID={victim_pid}\0"
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _mentions(p / "environ", mark)]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_grader_killed_with_minus_9_resumes_on_celery(workers, redis_broker, tmp_path):
    alive = [name for name, process in workers.processes.items() if process.poll() is None]
    assert alive, "no worker left"
    students = ("blank", "partial")
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    for student in students:
        shutil.copytree(SAMPLES / student, submitted / student)
    command = [sys.executable, "-m", "autograder", "grade", "--submitted", str(submitted), "--out", str(out),
               "--limit", "50", "--executor", "celery", "--broker", redis_broker]
    log = tmp_path / "grader.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    states = out / "state"
    deadline = time.monotonic() + 600
    while not list(states.glob("*.json")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = {p.stem: p.stat().st_mtime_ns for p in states.glob("*.json")}
    assert done and len(done) < len(students), log.read_text()[-3000:]
    summary = grade.grade(submitted, out, executor="celery", broker=redis_broker, limit=50, log=lambda *a: None)
    assert set(summary["graded_now"]) == set(students) - set(done)
    assert {s: (states / f"{s}.json").stat().st_mtime_ns for s in done} == done  # finished grades untouched
    assert {row["student_id"]: row["total"] for row in summary["rows"]} == {s: EXPECTED[s]["total"] for s in students}
    again = grade.grade(submitted, out, executor="celery", broker=redis_broker, limit=50, log=lambda *a: None)
    assert again["graded_now"] == [] and again["committed"] == []


def _mentions(path: Path, text: str) -> bool:
    try:
        return text.encode() in path.read_bytes()
    except OSError:
        return False
