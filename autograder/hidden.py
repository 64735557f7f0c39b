"""Hidden tests that plain nbgrader runs: the entry point of every ``### BEGIN HIDDEN TESTS`` cell.

An assignment's source notebook carries real hidden tests, stripped from the release by
``nbgrader generate_assignment`` and restored by ``nbgrader autograde``. Each is one call::

    from autograder.hidden import run_hidden
    run_hidden("10_ar", "hidden_pixelcnn", globals())

which runs the SAME check the course's grader runs (``autograder.assignments.<name>.checks``),
with secret random probes, on :class:`arflow.checks.box.LocalBox`: the probes are answered by
the notebook's own objects, in the student's kernel. That is plain nbgrader's trust model: it
is convenient (formgrader, ``generate_feedback``, ``export`` work as nbgrader users know them)
but the kernel decides, so a submission that patches what the checks call can fool it. The
hardened grader (``python -m autograder grade``) asks the same questions of a jailed process
and decides every verdict outside the kernel.

The cell's score is nbgrader's partial credit: the check's points are the cell's last
expression (a number), a check worth nothing raises ``AssertionError``. The report goes to
stdout; stderr stays empty (nbgrader gives 0 to a grade cell that writes to stderr).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings

from .assignment import load


def run_hidden(assignment: str, grade_id: str, namespace: dict, seed: int | None = None) -> float:
    """Run the check ``grade_id`` of ``assignment`` on the objects in ``namespace``; return its points."""
    spec = load(assignment)
    weights = os.path.abspath(spec.weights) if spec.weights and os.path.exists(spec.weights) else None
    captured = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stderr(captured):
        warnings.simplefilter("ignore")
        box = spec.local_box(namespace, weights)
        result = spec.in_kernel_checks[grade_id](box, seed=seed)
    print(result.report())
    if result.score <= 0:
        raise AssertionError(f"{result.title}: 0 / {result.max_points:g} points")
    return result.score
