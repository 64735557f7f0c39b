"""``python -m autograder worker --broker redis://HOST:PORT/0 [--slots N]``: a grading worker
for ``python -m autograder grade --executor celery`` on any machine with the course checkout.

It runs a Celery worker with ``N`` slots (threads); each slot keeps one serving grading process
(``python -m autograder.worker --serve``, as the local ``--jobs`` pool does: torch and nbgrader
are imported once per slot) and grades one submission at a time in it, in the jail and a cgroup
of its own, under the limits the grader sent. The worker writes only into its scratch folder
(``--scratch``, default ``/var/tmp/arflow-worker-<pid>``); the scores, reports, autograded
notebook and feedback go back to the grader through the result backend.

A task is refused (with a message, never graded) when it carries another grader fingerprint
than this checkout's: another version of the course or of the assignment. A task whose
submission vanished from the shared folder (``--transfer shared``) comes back flagged, final.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import hashlib
import itertools
import os
import shutil
import socket
import sys
import threading
import time
import warnings
from dataclasses import fields
from pathlib import Path

from . import celery_app
from .assignment import load
from .celery_app import LEASE_REFRESH, LEASE_SECONDS, cancelled_key, lease_key

#: set by :func:`main` before the Celery worker starts
STATE: dict = {}
_local = threading.local()
_slots = itertools.count()
_serving: list = []  # every slot's grading process (grade.Worker), ended when the Celery worker ends


def _encode_folder(folder: Path) -> dict[str, str]:
    """Every plain file directly in ``folder``, base64 (an autograded notebook, a feedback page)."""
    return {p.name: base64.b64encode(p.read_bytes()).decode() for p in sorted(folder.iterdir())
            if p.is_file() and not p.is_symlink()} if folder.is_dir() else {}


def _staged_files(payload: dict, folder: Path) -> str:
    """Write the submission's files into ``folder``; returns "" or why the submission is gone."""
    folder.mkdir(parents=True, exist_ok=True)
    if "files" in payload:
        for name, data in payload["files"].items():
            if Path(name).name != name:
                return f"a file name in the task is not plain: {name!r}"
            (folder / name).write_bytes(base64.b64decode(data))
        return ""
    shared = Path(payload["shared"])
    for name, digest in payload["sha256"].items():
        path = shared / name
        try:
            data = path.read_bytes()
        except OSError as err:
            return (f"the submission vanished from the shared folder ({path}: {os.strerror(err.errno or 2)}); "
                    "run the grader again")
        if hashlib.sha256(data).hexdigest() != digest:
            return f"the submission changed in the shared folder since intake ({path}); run the grader again"
        (folder / name).write_bytes(data)
    return ""


def _lease(client, task_id: str, holder: str, stop: threading.Event) -> None:
    while True:
        try:
            client.set(lease_key(task_id), holder, ex=max(1, int(LEASE_SECONDS)))
        except Exception:  # noqa: BLE001 - a broker hiccup: the next refresh tries again
            pass
        if stop.wait(LEASE_REFRESH):
            return


def handle(task_id: str, payload: dict) -> dict:
    """Grade the submission of one task (in a Celery worker thread); returns the result for the grader."""
    from .grade import Worker, _grade_in
    from .worker import GradingLimits

    student, hostname = payload["student"], STATE["hostname"]
    where = {"worker": hostname, "pid": os.getpid(), "task_id": task_id, "student": student}
    client = STATE["redis"]
    if client.get(cancelled_key(task_id)):  # a copy of a task the grader already sent again
        return {**where, "skipped": "the grader cancelled this task (it was sent again after its worker was lost)"}
    if payload.get("fingerprint") != STATE["fingerprint"]:
        return {**where, "final": True,
                "failed": f"refused by worker {hostname}: it has another version of the course or of the assignment "
                          f"(grader fingerprint {STATE['fingerprint'][:12]}, the task's "
                          f"{str(payload.get('fingerprint'))[:12]}): update its checkout and restart it"}
    stop = threading.Event()
    lease = threading.Thread(target=_lease, args=(client, task_id, hostname, stop), daemon=True)
    lease.start()
    scratch: Path = STATE["scratch"]
    staged = scratch / "intake" / f"{student}-{task_id}"
    try:
        why = _staged_files(payload, staged)
        if why:
            return {**where, "failed": why, "final": True}
        if not hasattr(_local, "worker"):
            _local.worker = Worker(STATE["slot_base"] + next(_slots), scratch / "logs")
            _serving.append(_local.worker)
        known = {f.name for f in fields(GradingLimits)}
        limits = GradingLimits(**{k: v for k, v in payload["limits"].items() if k in known})
        assignment = load(payload.get("assignment", "10_ar"))
        result = _grade_in(_local.worker, student, staged, payload["notes"], scratch, template(assignment),
                           payload.get("seed"), limits, assignment)
        root = scratch / "work" / student
        for kind in ("autograded", "feedback"):
            path = result.pop(kind, None)
            if path:
                result.setdefault("files", {})[kind] = _encode_folder(Path(path).parent)
        shutil.rmtree(root, ignore_errors=True)
        return {**result, **where}
    finally:
        stop.set()
        lease.join(timeout=5)
        try:
            client.delete(lease_key(task_id))
        except Exception:  # noqa: BLE001 - it expires by itself
            pass
        shutil.rmtree(staged, ignore_errors=True)


def _end_serving(**_) -> None:
    """When the Celery worker shuts down: each slot's grading process ends after its submission and is
    waited for (so its CPU time is counted by whoever waits for this worker)."""
    for worker in _serving:
        try:
            if worker.process is not None:
                worker.process.stdin.close()
        except OSError:
            pass


def _stop_serving() -> None:
    for worker in _serving:
        worker.stop()


def build_app(broker: str):
    """The Celery app with the grading task registered."""
    from celery.signals import worker_shutting_down

    worker_shutting_down.connect(_end_serving, weak=False)
    app = celery_app.make_app(broker)

    @app.task(name=celery_app.TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
    def grade_submission(self, payload: dict) -> dict:
        return handle(self.request.id, payload)

    return app


def prepare(scratch: Path) -> Path:
    """This worker's scratch folder, with the template course folder of every assignment made now."""
    scratch.mkdir(parents=True, exist_ok=True)
    os.chmod(scratch, 0o700)
    (scratch / "logs").mkdir(exist_ok=True)
    return scratch


_templates_lock = threading.Lock()


def template(assignment) -> Path:
    """This worker's template course folder of ``assignment`` (registered in a private gradebook),
    made on its first task and kept."""
    from .grade import make_template

    with _templates_lock:
        templates = STATE.setdefault("templates", {})
        if assignment.name not in templates:
            templates[assignment.name] = make_template(STATE["scratch"], assignment)
        return templates[assignment.name]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", required=True, help="redis://HOST:PORT/DB (the grader's --broker)")
    parser.add_argument("--slots", type=int, default=1, help="submissions graded at once (about one per 2 cores)")
    parser.add_argument("--slot-base", type=int, default=0,
                        help="first job slot (jail uids): workers on one machine need disjoint ranges, "
                             "e.g. 0 and 4 for two workers of 4 slots (at most 20 slots per machine in all)")
    parser.add_argument("--name", default=None, help="this worker's name (default: grader-<pid>@<host>)")
    parser.add_argument("--scratch", default=None, help="its private work folder (default /var/tmp/arflow-worker-PID)")
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)
    if args.slots < 1:
        parser.error(f"--slots must be at least 1, got {args.slots}")
    try:
        celery_app.check_broker(args.broker)
    except (ConnectionError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from . import cgroups

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    cgroups.remove_stale()  # what workers killed with -9 left behind
    scratch = Path(args.scratch or f"/var/tmp/arflow-worker-{os.getpid()}").resolve()
    hostname = args.name or f"grader-{os.getpid()}@{socket.gethostname()}"
    began = time.perf_counter()
    STATE.update(scratch=prepare(scratch), fingerprint=celery_app.grader_fingerprint(),
                 redis=celery_app.redis_client(args.broker), hostname=hostname, slot_base=args.slot_base)
    print(f"worker {hostname}: {args.slots} slot(s), scratch {scratch}, grader fingerprint "
          f"{STATE['fingerprint'][:12]}, ready in {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
    # Celery warns when its worker runs as root: this one must (the jail: namespaces, cgroups, its own
    # uid per slot); the students' code never runs as root (autograder/README.md, "Grading on a cluster").
    warnings.filterwarnings("ignore", message=".*running the worker with superuser privileges")
    app = build_app(args.broker)
    atexit.register(_stop_serving)
    app.worker_main(["worker", "--pool", "threads", "--concurrency", str(args.slots), "--hostname", hostname,
                     "--queues", celery_app.QUEUE, "--without-gossip", "--without-mingle", "--without-heartbeat",
                     "--loglevel", args.loglevel])
    return 0


if __name__ == "__main__":
    sys.exit(main())
