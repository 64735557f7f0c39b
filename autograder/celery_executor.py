"""The grader's side of ``--executor celery``: one task per submission, results back to the one writer.

:class:`CeleryExecutor` sends the tasks (at most ``window`` in flight, so the broker holds a
bounded number of payloads), polls their states and the workers' leases in the result backend
(two ``MGET`` per poll, whatever the number of tasks), sends a task again when it failed or its
worker was lost (up to ``retries`` times), and yields ``(student, result)`` as results arrive,
with the autograded notebook and the feedback unpacked into ``OUT/work/<student>/`` for
``grade._commit``. Each student's result is yielded once: whatever a superseded task delivers
later is ignored. See :mod:`autograder.celery_app` for the transport and the settings.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import celery_app
from .assignment import load
from .celery_app import LEASE_SECONDS, cancelled_key, lease_key, result_key
from .worker import GradingLimits


@dataclass
class _Task:
    student: str
    attempt: int
    sent: float
    started: float | None = None
    lease_seen: float | None = None
    worker: str | None = None


@dataclass
class CeleryExecutor:
    broker: str
    out: Path
    limits: GradingLimits
    seed: int | None = None
    retries: int = 2  # a submission is tried at most 1 + retries times
    transfer: str = "queue"  # "queue": files in the task; "shared": OUT is on a filesystem every worker mounts
    window: int = 64  # tasks in flight at most
    poll_seconds: float = 1.0
    log: object = print
    assignment: str = "10_ar"
    attempts: dict[str, list[dict]] = field(default_factory=dict)  # per student: task id, worker, outcome

    def check(self) -> None:
        """Raise ConnectionError (naming the broker) when it cannot be reached; log the workers that answer."""
        if self.transfer not in ("queue", "shared"):
            raise ValueError(f"transfer must be 'queue' or 'shared', got {self.transfer!r}")
        celery_app.check_broker(self.broker)
        self.app = celery_app.make_app(self.broker)
        self.redis = celery_app.redis_client(self.broker)

    def workers(self, timeout: float = 2.0) -> list[str]:
        """The names of the workers that answer a ping now."""
        try:
            return sorted(name for reply in self.app.control.ping(timeout=timeout) or [] for name in reply)
        except Exception:  # noqa: BLE001 - only informative
            return []

    # ------------------------------------------------------------------ sending
    def _payload(self, student: str, staged: Path, files: dict[str, Path], notes: list[str]) -> dict:
        payload = {"student": student, "notes": list(notes), "seed": self.seed, "limits": asdict(self.limits),
                   "fingerprint": self.fingerprint, "assignment": self.assignment}
        if self.transfer == "queue":
            payload["files"] = {name: base64.b64encode(Path(path).read_bytes()).decode()
                                for name, path in files.items()}
        else:
            payload["shared"] = str(staged)
            payload["sha256"] = {name: hashlib.sha256(Path(path).read_bytes()).hexdigest()
                                 for name, path in files.items()}
        return payload

    def _send(self, student: str, attempt: int) -> None:
        task_id = f"{student[:40]}-{uuid.uuid4().hex}"
        staged, files, notes = self.jobs[student]
        self.app.send_task(celery_app.TASK, args=[self._payload(student, staged, files, notes)], task_id=task_id,
                           queue=celery_app.QUEUE)
        self.pending[task_id] = _Task(student, attempt, time.monotonic())
        (self.out / "state" / f"{student}.sent").write_text(task_id)  # a rerun cancels it (see results)

    def _cancel(self, task_id: str) -> None:
        self.redis.set(cancelled_key(task_id), b"1", ex=7 * 24 * 3600)

    def _again_or_fail(self, task_id: str, task: _Task, why: str, final: bool = False) -> dict | None:
        """Send the submission again, or return the failure to flag when it is final or out of tries."""
        self.attempts[task.student].append({"task_id": task_id, "worker": task.worker, "outcome": why})
        if not final and task.attempt <= self.retries:
            self.log(f"{task.student}: attempt {task.attempt} failed ({why[:200]}); sending it again")
            self._send(task.student, task.attempt + 1)
            return None
        tries = f" (after {task.attempt} attempt{'s' if task.attempt > 1 else ''})" if not final else ""
        return {"student": task.student, "failed": why + tries, "worker": task.worker}

    # ------------------------------------------------------------------ receiving
    def _unpack(self, result: dict) -> dict:
        """The autograded notebook and feedback of a result, written under ``OUT/work/<student>/``."""
        student = result["student"]
        for kind, names in (result.pop("files", None) or {}).items():
            folder = self.out / "work" / student / kind / student / self.assignment
            folder.mkdir(parents=True, exist_ok=True)
            for name, data in names.items():
                if Path(name).name == name:
                    (folder / name).write_bytes(base64.b64decode(data))
            notebook = load(self.assignment).notebook
            main = folder / (f"{notebook}.ipynb" if kind == "autograded" else f"{notebook}.html")
            result[kind] = str(main) if main.exists() else None
        return result

    def results(self, todo: list[str], jobs: dict[str, tuple[Path, dict[str, Path], list[str]]]
                ) -> Iterator[tuple[str, dict]]:
        """Grade ``todo`` on the workers; ``jobs[student] = (staged folder, {name: file}, intake notes)``."""
        self.fingerprint = celery_app.grader_fingerprint()
        self.jobs, self.pending = jobs, {}
        state = self.out / "state"
        for student in todo:  # tasks a killed run left in the queue are not graded again
            sent = state / f"{student}.sent"
            if sent.exists():
                self._cancel(sent.read_text().strip())
        names = self.workers()
        self.log(f"celery: {len(names)} worker(s) answered on {self.broker}"
                 + (f": {', '.join(names)}" if names else "; the tasks wait in the queue until one starts"))
        waiting = deque(todo)
        overdue = self.limits.submission_seconds + 300.0
        while waiting or self.pending:
            while waiting and len(self.pending) < self.window:
                student = waiting.popleft()
                self.attempts[student] = []
                self._send(student, 1)
            ids = list(self.pending)
            metas = self.redis.mget([result_key(t) for t in ids])
            leases = self.redis.mget([lease_key(t) for t in ids])
            now = time.monotonic()
            for task_id, raw, lease in zip(ids, metas, leases):
                task = self.pending[task_id]
                meta = celery_app.read_meta(raw) or {"status": "PENDING"}
                status, value = meta.get("status"), meta.get("result")
                if lease:
                    task.lease_seen, task.worker = now, lease.decode(errors="replace")
                if status in ("SUCCESS", "FAILURE"):
                    del self.pending[task_id]
                    self.redis.delete(result_key(task_id))
                    if status == "FAILURE":
                        why = f"the task failed on a worker: {(value or {}).get('exc_type')}: " \
                              f"{(value or {}).get('exc_message')}"
                        done = self._again_or_fail(task_id, task, why)
                    elif "failed" in value:
                        task.worker = value.get("worker", task.worker)
                        done = self._again_or_fail(task_id, task, value["failed"], final=bool(value.get("final")))
                    else:
                        self.attempts[task.student].append({"task_id": task_id, "worker": value.get("worker"),
                                                            "outcome": "graded"})
                        done = self._unpack(value)
                    if done is not None:
                        (state / f"{task.student}.sent").unlink(missing_ok=True)
                        done["attempts"] = self.attempts[task.student]
                        yield task.student, done
                    continue
                if status == "STARTED":
                    task.started = task.started or now
                    task.worker = task.worker or (value or {}).get("hostname")
                    silent = now - max(task.started, task.lease_seen or 0.0)
                    why = None
                    if silent > LEASE_SECONDS + 3 * self.poll_seconds:
                        why = f"its worker {task.worker} was lost (no lease for {silent:.0f} s)"
                    elif now - task.started > overdue:
                        why = f"its worker {task.worker} gave no result within {overdue:.0f} s"
                    if why:
                        del self.pending[task_id]
                        self._cancel(task_id)
                        done = self._again_or_fail(task_id, task, why)
                        if done is not None:
                            (state / f"{task.student}.sent").unlink(missing_ok=True)
                            done["attempts"] = self.attempts[task.student]
                            yield task.student, done
            if self.pending:
                time.sleep(self.poll_seconds)


def summary_line(attempts: dict[str, list[dict]]) -> str:
    """How many tasks ran where, and how many were sent again."""
    workers: dict[str, int] = {}
    again = 0
    for tries in attempts.values():
        again += max(0, len(tries) - 1)
        for attempt in tries:
            workers[str(attempt["worker"])] = workers.get(str(attempt["worker"]), 0) + 1
    return f"celery: tasks per worker {json.dumps(workers)}; {again} sent again"
