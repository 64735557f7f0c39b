"""The two ways of grading agree on honest work.

1. **Kernel and box.** Every check (visible and hidden) is one function run on a box: in the
   student's kernel (:class:`arflow.checks.box.LocalBox`: the visible tests at home, the hidden
   tests under plain nbgrader) or in the grader's jail (:class:`autograder.sandbox.Box`). Each
   sample submission's cells are checked both ways with the same probes: the verdicts must be
   equal, sub-check by sub-check.
2. **Plain nbgrader and the course's grader.** In a standard course directory
   (``python -m autograder course``), plain ``nbgrader autograde`` runs the hidden tests it restored
   into the notebooks; its score for every grade cell must be the one the hardened grader gives
   (``samples_expected.json``, which ``tests/test_grader_samples.py`` holds the grader to), for both
   assignments.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest

from arflow.checks import protocol
from autograder.assignment import load
from autograder.course import init_course, nbgrader_env
from autograder.extract import extract_cells
from autograder.sandbox import Box

pytestmark = pytest.mark.slow
AR = load("10_ar")
SAMPLES = sorted(p.name for p in AR.samples.iterdir() if p.is_dir())


def _verdicts(checks: dict, box) -> dict[str, list[bool]]:
    return {gid: [s.passed for s in check(box, seed=17).subchecks] for gid, check in checks.items()}


@pytest.mark.parametrize("sample", SAMPLES)
def test_the_kernel_and_the_box_give_the_same_verdicts(sample):
    folder = AR.samples / sample / AR.name
    cells, _ = extract_cells(folder / f"{AR.notebook}.ipynb", AR)
    weights = folder / AR.weights
    weights = str(weights) if weights.exists() else None
    checks = dict(AR.checks.CHECKS)
    # The trained model on 100 grader-only digits (the same digits and splices both ways).
    checks["hidden_trained_model"] = functools.partial(checks["hidden_trained_model"], limit=100)
    namespace = {"__name__": "__main__"}
    errors = protocol.run_cells(cells, namespace)
    in_kernel = _verdicts(checks, AR.local_box(namespace, weights, errors))
    with Box(cells, AR.probes, weights) as box:
        in_box = _verdicts(checks, box)
    assert in_kernel == in_box
    expected_total = AR.expected[sample]["total"]
    points = {gid: [p for _, p in AR.plan[gid][1]] if gid in AR.plan else [AR.visible[gid][1]] for gid in checks}
    assert sum(p for gid, passed in in_box.items() for p, ok in zip(points[gid], passed) if ok) == expected_total


PLAIN = {"10_ar": ["reference", "generate_shared", "partial"], "11_maf": ["reference", "logdet_sign"]}


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_plain_nbgrader_runs_the_hidden_tests_and_agrees_with_the_grader(name, tmp_path):
    from nbgrader.api import Gradebook

    assignment = load(name)
    course = init_course(tmp_path / "course", [name])
    for student in PLAIN[name]:
        target = course / "submitted" / student / name
        target.mkdir(parents=True)
        for path in (assignment.samples / student / name).iterdir():
            target.joinpath(path.name).write_bytes(path.read_bytes())
    done = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", name], cwd=course, env=nbgrader_env(),
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        plain = {s.student.id: {g.name: g.score for g in s.notebooks[0].grades}
                 for s in gb.assignment_submissions(name)}
    for student in PLAIN[name]:
        assert plain[student] == assignment.expected[student]["scores"], student
    # The hidden tests' code is not in the release; the weights reached the autograded folder.
    assert "run_hidden" not in (course / "release" / name / assignment.source.name).read_text()
    assert Path(course / "autograded" / "reference" / name / assignment.weights).exists()
    if name == "10_ar":  # a hidden test's own report, in the student's autograded notebook
        text = (course / "autograded" / "generate_shared" / name / assignment.source.name).read_text()
        assert "images of one call repeat" in text
