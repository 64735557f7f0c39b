"""The Celery application shared by the grader (``--executor celery``) and its workers
(``python -m autograder worker``), with Redis as the broker and the result backend.

How a submission travels (autograder/README.md, "Grading on a cluster"):

- **to a worker, through the queue**: the task's payload carries the files intake took (the
  notebook and the weights, base64; bounded by intake's limits: 64 MB and 20 MB), the intake notes,
  the seed, the grading limits and the grader's fingerprint; no shared folder is needed. With
  ``--transfer shared`` the payload names the staged folder instead (``OUT`` on a shared
  filesystem, mounted at the same path on every machine) with each file's sha256;
- **back to the grader, through the result backend**: the scores, reports and notes, and the
  autograded notebook and the feedback page (base64). The grader is the only writer of the
  gradebook and of ``OUT``: a worker writes only into its own scratch folder.

Reliability (the settings below): late acknowledgement, a prefetch of one, a task rejected (and
so requeued) when its worker process is lost. Redis only hands an unacknowledged task to another
worker after the visibility timeout, so a whole worker machine that dies is noticed by the
grader itself: a worker holds a **lease** (a Redis key that expires after :data:`LEASE_SECONDS`)
while it grades, refreshed every few seconds; a started task whose lease expired is cancelled
and sent again, and whatever the lost task would still deliver is ignored (and a redelivered copy
of it is skipped by the worker that receives it). The grader commits each student once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

TASK = "autograder.grade_submission"
QUEUE = "arflow-grading"
LEASE_SECONDS = 12.0  # a grading worker's lease expires this long after its last refresh
LEASE_REFRESH = 3.0  # how often a worker refreshes its lease while it grades
KEY_PREFIX = "arflow:"


def lease_key(task_id: str) -> str:
    return f"{KEY_PREFIX}lease:{task_id}"


def cancelled_key(task_id: str) -> str:
    return f"{KEY_PREFIX}cancelled:{task_id}"


def result_key(task_id: str) -> str:
    """Where Celery's Redis result backend keeps a task's state and result (JSON)."""
    return f"celery-task-meta-{task_id}"


def grader_fingerprint() -> str:
    """sha256 of every file the verdicts depend on (``grade.grader_files()``: the source notebook,
    the grader's modules, the grader-only digits). Tasks carry it; a worker with another version of
    the course or of the assignment refuses them."""
    from .grade import grader_files

    digest = hashlib.sha256()
    for path in grader_files():
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(Path(path).read_bytes()).digest())
    return digest.hexdigest()


def make_app(broker: str, visibility_seconds: float = 3 * 3600):
    """A Celery app on ``broker`` (``redis://HOST:PORT/DB``), results in the same Redis database.

    ``visibility_seconds`` is how long Redis waits before handing an unacknowledged task to
    another worker: longer than any task may run (the grader's own lease notices lost workers
    within seconds), so that a slow task is never given to a second worker while it runs."""
    from celery import Celery

    app = Celery("autograder", broker=broker, backend=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,  # acknowledged once graded: a worker that dies mid-task loses nothing
        worker_prefetch_multiplier=1,  # a worker reserves no more tasks than it has free slots
        task_reject_on_worker_lost=True,  # a pool process lost mid-task: the task goes back to the queue
        task_track_started=True,  # the grader sees when (and where) a task started
        task_serializer="json", result_serializer="json", accept_content=["json"],
        result_expires=24 * 3600,
        task_default_queue=QUEUE,
        broker_transport_options={"visibility_timeout": visibility_seconds},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


def redis_client(url: str, timeout: float = 5.0):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=max(timeout, 30.0))


def check_broker(url: str, timeout: float = 5.0) -> None:
    """Raise ConnectionError naming the broker when it cannot be reached within ``timeout`` s."""
    if not url or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"the broker must be a Redis URL (redis://HOST:PORT/DB), got {url!r}")
    try:
        redis_client(url, timeout).ping()
    except Exception as err:  # redis raises its own ConnectionError / TimeoutError / AuthenticationError
        raise ConnectionError(f"the broker {url} cannot be reached ({type(err).__name__}: {err}); "
                              "start Redis there or pass another --broker") from err


def read_meta(raw: bytes | None) -> dict | None:
    """A task's state in the result backend (``{"status": ..., "result": ...}``), or None."""
    return None if raw is None else json.loads(raw)
