"""Formgrader shows the course grader's grades, and an instructor's adjustment there survives a regrade.

A course directory (``python -m autograder course``) is graded by the hardened grader
(``python -m autograder grade --course``); then the Jupyter server runs with nbgrader's Formgrader
extension as ``make lab-instructor`` enables it (``jupyter/instructor``), on loopback with a token,
and the test reads Formgrader's own REST API (what its pages call): each submission's score is the
grader's total, each grade cell's automatic score its verdict. An instructor's manual score put
through that API is what nbgrader counts after the grader grades the class again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from pg_server import _free_port  # tests/ is on the path (conftest)

from autograder.assignment import load
from autograder.course import init_course
from autograder.grade import grade

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
AR = load("10_ar")
STUDENTS = ("partial", "mask_once")


@contextlib.contextmanager
def formgrader(course: Path, tmp_path: Path):
    """A Jupyter server with Formgrader over ``course``; yields ``api(method, path, body=None)``."""
    home = tmp_path / "home"
    home.mkdir(parents=True)
    port, token = _free_port(), hashlib.sha256(os.urandom(16)).hexdigest()[:32]
    env = {**os.environ, "HOME": str(home), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_CONFIG_DIR": str(home / ".jupyter"), "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter"),
           "JUPYTER_CONFIG_PATH": str(ROOT / "jupyter" / "instructor"),
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    command = [sys.executable, "-m", "jupyter", "server", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, env=env, cwd=course, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def api(method: str, path: str, body: dict | None = None):
        request = urllib.request.Request(f"{base}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read().decode())

    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                raise AssertionError(f"the Jupyter server exited ({server.returncode}):\n"
                                     + log_path.read_text()[-3000:])
            try:
                if api("GET", "/formgrader/api/status")["status"]:
                    break
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("Formgrader did not answer within 90 s:\n" + log_path.read_text()[-3000:])
            time.sleep(0.5)
        yield api
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def _cells(api, student: str) -> dict[str, dict]:
    """Formgrader's view of one student's grade cells: name -> its grade record."""
    notebooks = api("GET", f"/formgrader/api/submitted_notebooks/{AR.name}/{AR.notebook}")
    (mine,) = [n for n in notebooks if n["student"] == student]
    return {g["name"]: g for g in api("GET", f"/formgrader/api/grades?submission_id={mine['id']}")}


def test_formgrader_shows_the_graders_grades_and_keeps_a_manual_score(tmp_path):
    course = init_course(tmp_path / "course", [AR.name])
    for student in STUDENTS:
        shutil.copytree(AR.samples / student, course / "submitted" / student)
    grade(course / "submitted", course, jobs=2, seed=3, log=lambda *a: None)

    with formgrader(course, tmp_path) as api:
        submissions = {s["student"]: s for s in api("GET", f"/formgrader/api/submissions/{AR.name}")}
        assert set(submissions) == set(STUDENTS)
        for student in STUDENTS:
            assert submissions[student]["autograded"]
            assert submissions[student]["score"] == pytest.approx(AR.expected[student]["total"])
            assert submissions[student]["max_score"] == pytest.approx(sum(map(AR.max_points, AR.grade_ids())))
            cells = _cells(api, student)
            assert {g: cells[g]["auto_score"] for g in AR.expected[student]["scores"]} == \
                AR.expected[student]["scores"]
            assert not any(c["needs_manual_grade"] for c in cells.values())

        # The instructor gives "mask_once" one point by hand on a grade cell the grader failed.
        cells = _cells(api, "mask_once")
        failed = next(g for g, s in AR.expected["mask_once"]["scores"].items() if s < AR.max_points(g))
        api("PUT", f"/formgrader/api/grade/{cells[failed]['id']}", {"manual_score": 1.0})
        assert _cells(api, "mask_once")[failed]["manual_score"] == 1.0

    # "mask_once" submits again (nbgrader's collect writes a new timestamp.txt): the grader grades it again.
    (course / "submitted" / "mask_once" / AR.name / "timestamp.txt").write_text("2026-12-01 10:00:00.000000 UTC")
    lines = []
    grade(course / "submitted", course, jobs=2, seed=3, log=lines.append)
    assert any("unchanged since they were graded" in line and line.startswith("1 ") for line in lines), lines
    with formgrader(course, tmp_path / "again") as api:
        submissions = {s["student"]: s for s in api("GET", f"/formgrader/api/submissions/{AR.name}")}
        assert submissions["partial"]["score"] == pytest.approx(AR.expected["partial"]["total"])
        kept = _cells(api, "mask_once")[failed]
        assert kept["manual_score"] == 1.0 and kept["auto_score"] == AR.expected["mask_once"]["scores"][failed]
        expected = AR.expected["mask_once"]["total"] - AR.expected["mask_once"]["scores"][failed] + 1.0
        assert submissions["mask_once"]["score"] == pytest.approx(expected)
