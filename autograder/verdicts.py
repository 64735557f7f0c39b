"""Every verdict of one submission, decided outside the student's kernel (any assignment).

:func:`run_checks` starts the assignment's black box (:class:`autograder.sandbox.Box`: the
student's solution cells and the assignment's probes, in a jail) and runs every check of
``checks.CHECKS`` against it: the visible ones first (their reasons may repeat the student's own
messages, which at that point cannot carry anything a hidden probe showed), then the hidden ones.
A cell that kills the process while it is defined is left out, so the other cells still earn
their points; a box that dies or hangs during a check is restarted for the next one. It never
raises: what cannot run scores 0 with the reason.
"""

from __future__ import annotations

import inspect
import sys
import time
import traceback
from pathlib import Path

from arflow.checks.result import VISIBLE_KIND, CheckResult

from .assignment import Assignment
from .sandbox import BUILTIN_EXCEPTIONS, Box, BoxError, BoxStartError, StudentError


def failed_result(assignment: Assignment, grade_id: str, reason: str) -> CheckResult:
    """Zero points on every sub-check of ``grade_id``, with the reason (the fail-safe when a check cannot run)."""
    if grade_id in assignment.plan:
        title, parts = assignment.plan[grade_id]
        result = CheckResult(grade_id, title, error=reason)
    else:
        title, points, what = assignment.visible[grade_id]
        parts = [(what, points)]
        result = CheckResult(grade_id, title, error=reason, kind=VISIBLE_KIND)
    for name, points in parts:
        result.add(name, points, False, reason)
    return result


def failure_reason(err: Exception, visible: bool = False) -> str:
    """The reason a whole check failed. Only a visible check (public probes) may repeat what the
    student's code said; a box's printed output and a grader error's message go to the log."""
    if isinstance(err, StudentError):
        return err.visible_text() if visible else str(err)
    if isinstance(err, BoxError):
        if err.log:
            print(f"[grader] {err}; the submission's last output:\n{err.log}", file=sys.stderr)
        return str(err)
    traceback.print_exc()
    name = type(err).__name__
    return (f"internal error of the grader ({name if name in BUILTIN_EXCEPTIONS else 'an exception'}); the "
            "instructor's log has the details")


def _call(check, box, seed: int | None, limit: int | None) -> CheckResult:
    """A check with its seed, and ``limit`` (test digits for a trained model) where it takes one."""
    if limit is not None and "limit" in inspect.signature(check).parameters:
        return check(box, seed=seed, limit=limit)
    return check(box, seed=seed)


def run_checks(assignment: Assignment, cells: list[dict], weights: str | Path | None, seed: int | None = None,
               limit: int | None = None, timeout: float = 120.0, total_timeout: float = 900.0,
               visible_too: bool = True, max_weights_bytes: int | None = None) -> dict[str, CheckResult]:
    """Run every check (the visible tests' verdicts too, unless ``visible_too=False``) against one
    submission's cells and weights file, in one black box. ``timeout`` bounds each probe,
    ``total_timeout`` the whole box (restarts included); ``max_weights_bytes`` defaults to
    :class:`autograder.worker.GradingLimits`' ``file_bytes``."""
    if max_weights_bytes is None:
        from .worker import GradingLimits

        max_weights_bytes = GradingLimits().file_bytes
    ids = assignment.grade_ids() if visible_too else tuple(assignment.plan)
    results: dict[str, CheckResult] = {}
    weights_note = ""
    if weights is not None and Path(weights).is_file() and Path(weights).stat().st_size > max_weights_bytes:
        weights_note = f"{assignment.weights} is larger than {max_weights_bytes // 2**20} MB: not loaded"
    weights = str(weights) if weights is not None and Path(weights).is_file() and not weights_note else None
    deadline = time.monotonic() + total_timeout
    running, left_out = list(cells), []

    def start() -> Box:
        while True:
            try:
                return Box(running, assignment.probes, weights, timeout=timeout,
                           total_timeout=max(deadline - time.monotonic(), 1.0))
            except BoxStartError as err:
                names = [c["name"] for c in running]
                if err.cell not in names or err.cell in ("prelude", "setup") or time.monotonic() > deadline:
                    raise
                running.remove(next(c for c in running if c["name"] == err.cell))
                left_out.append(f"the cell defining {err.cell} stopped the process when it ran ({err}); "
                                "it was left out")
                if err.log:
                    print(f"[grader] cell {err.cell} left out; its last output:\n{err.log}", file=sys.stderr)

    try:
        box = start()
    except Exception as err:  # fail-safe: nothing could run, everything scores 0 with the reason
        reason = f"the submission's code could not be started ({failure_reason(err)})"
        return {gid: failed_result(assignment, gid, reason) for gid in ids}
    try:
        for n, gid in enumerate(ids):
            if weights_note and gid == "hidden_trained_model":
                results[gid] = failed_result(assignment, gid, weights_note)
                continue
            try:
                results[gid] = _call(assignment.checks.CHECKS[gid], box, None if seed is None else seed + n, limit)
            except Exception as err:
                results[gid] = failed_result(assignment, gid, failure_reason(err, visible=gid not in assignment.plan))
                if isinstance(err, BoxError):  # a dead or hung box: the next check gets a fresh one
                    box.close()
                    try:
                        box = start()
                    except Exception as again:
                        box = None
                        why = failure_reason(again)
                        for rest in ids:
                            results.setdefault(rest, failed_result(assignment, rest, "the submission's process "
                                                                                     f"could not be restarted ({why})"))
                        break
    finally:
        if box is not None:
            box.close()
    for gid in ids:
        results.setdefault(gid, failed_result(assignment, gid, "not run"))
        if left_out and not results[gid].error:
            results[gid].error = "; ".join(left_out)
    return {gid: results[gid] for gid in ids}
