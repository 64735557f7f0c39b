"""Late submissions (autograder/late.py): the policy by hand, then a real plain-nbgrader run.

The nbgrader run uses the repository's own ``nbgrader_config.py`` (copied into a temporary
course folder), so the late-policy lines an instructor edits are what is tested.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import lms
from autograder.late import LatePenaltyPlugin, LatePolicy, late_penalty

ROOT = Path(__file__).resolve().parents[1]
HOUR, DAY = 3600.0, 86400.0
POLICY = LatePolicy(grace_minutes=15, percent_per_day=10, zero_after_days=7)


@pytest.mark.parametrize("seconds_late, expected", [
    (-500.0, 0.0),  # early
    (0.0, 0.0),  # on time
    (10 * 60, 0.0),  # within the 15-minute grace
    (15 * 60, 0.0),  # the grace period's last second
    (15 * 60 + 1, 2.3),  # just past it: one started day, 10 % of 23
    (HOUR, 2.3),  # 1 h late: one started day
    (DAY, 2.3),  # exactly one day
    (1.5 * DAY, 4.6),  # 1.5 days: two started days, 20 % of 23
    (7 * DAY, 16.1),  # 7 days: 70 % of 23, not yet zero
    (7 * DAY + 1, 20.0),  # past the zero limit: the whole score
])
def test_penalty_by_hand(seconds_late, expected):
    assert late_penalty(20.0, 23.0, seconds_late, POLICY) == pytest.approx(expected)


def test_penalty_never_above_the_score():
    assert late_penalty(1.5, 23.0, 3 * DAY, POLICY) == 1.5  # 30 % of 23 = 6.9 > 1.5
    assert late_penalty(0.0, 23.0, 3 * DAY, POLICY) == 0.0
    assert late_penalty(-2.0, 23.0, 3 * DAY, POLICY) == 0.0  # nothing to take
    assert late_penalty(23.0, 23.0, 30 * DAY, LatePolicy(percent_per_day=50)) == 23.0  # no zero limit, capped
    assert late_penalty(23.0, 23.0, 30 * DAY, LatePolicy(percent_per_day=0)) == 0.0  # penalties off


def test_bad_policy_and_inputs():
    with pytest.raises(ValueError, match="percent_per_day must be a number >= 0"):
        LatePolicy(percent_per_day=-5)
    with pytest.raises(ValueError, match="max_score must be >= 0"):
        late_penalty(1, -1, HOUR, POLICY)
    with pytest.raises(ValueError, match="seconds_late must be a number"):
        late_penalty(1, 1, float("nan"), POLICY)
    with pytest.raises(Exception, match="must be >= 0"):
        LatePenaltyPlugin(grace_minutes=-1)


def _toy_notebook(answer: str) -> nbformat.NotebookNode:
    """One solution cell and one 10-point grade cell (any assignment works: nothing here is 10_ar's)."""
    meta = {"schema_version": 3, "locked": False, "task": False}
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(answer, metadata={"nbgrader": {**meta, "grade_id": "answer", "solution": True,
                                                                 "grade": False}}),
        nbformat.v4.new_code_cell("assert double(21) == 42", metadata={"nbgrader": {
            **meta, "grade_id": "test_answer", "solution": False, "grade": True, "points": 10, "locked": True}}),
    ]
    return nb


@pytest.mark.slow
def test_plain_nbgrader_autograde_applies_the_policy(tmp_path):
    course = tmp_path / "course"
    (course / "solutions" / "toy").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")  # the repo's own configuration
    solution = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    nbformat.write(_toy_notebook(solution), course / "solutions" / "toy" / "toy.ipynb")
    # The due date 2030-01-10 12:00 UTC; ada submits an hour early, alan exactly two days late.
    for student, stamp in (("ada", "2030-01-10 11:00:00.000000 UTC"), ("alan", "2030-01-12 12:00:00.000000 UTC")):
        folder = course / "submitted" / student / "toy"
        folder.mkdir(parents=True)
        nbformat.write(_toy_notebook("def double(x):\n    return x + x\n"), folder / "toy.ipynb")
        (folder / "timestamp.txt").write_text(stamp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARFLOW_") or k == "ARFLOW_FAST"}
    # nbgrader runs the `alembic` script, and the plugin is imported from this checkout.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT)
    nbgrader = str(Path(sys.executable).parent / "nbgrader")

    def run(*args):
        done = subprocess.run([nbgrader, *args], cwd=course, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done

    run("db", "assignment", "add", "toy", "--duedate=2030-01-10 12:00:00 UTC")
    run("generate_assignment", "toy", "--force")
    done = run("autograde", "toy")
    assert "late" in done.stderr.lower()  # nbgrader logs the late submission and the penalty

    db_url = f"sqlite:///{course / 'graded' / 'gradebook.db'}"
    from nbgrader.api import Gradebook

    with Gradebook(db_url, course_id="arflow") as gb:
        on_time, late = gb.find_submission("toy", "ada"), gb.find_submission("toy", "alan")
        assert on_time.total_seconds_late == 0 and late.total_seconds_late == 2 * DAY
        assert on_time.score == late.score == 10.0  # both answers are right
        stored_on_time = gb.find_submission_notebook("toy", "toy", "ada").late_submission_penalty
        stored_late = gb.find_submission_notebook("toy", "toy", "alan").late_submission_penalty
    assert stored_on_time is None  # nbgrader stores None when there is no penalty
    # Two started days at 10 % of the max score 10 (the repo's policy): 2 points.
    assert stored_late == pytest.approx(2.0)
    assert stored_late == late_penalty(10.0, 10.0, 2 * DAY, POLICY)

    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,SIS Login ID\nada,ada01\nalan,alan02\n", encoding="utf-8")
    out = tmp_path / "canvas.csv"
    lms.export_canvas(db_url, out, roster=roster)
    with open(out, newline="", encoding="utf-8-sig") as fh:
        table = list(csv.reader(fh))
    assert table[0][5:] == ["toy"] and table[1][5:] == ["10"]
    assert {row[3]: row[5] for row in table[2:]} == {"ada01": "10", "alan02": "8"}
