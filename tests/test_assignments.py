"""Every assignment folder is a valid spec of its notebook, its release is current, and a bad spec
is refused before anything is graded."""

from __future__ import annotations

import dataclasses

import pytest

from autograder.assignment import SpecError, load, names, validate
from autograder.release import generate, normalized


def test_the_engine_knows_both_assignments():
    assert {"10_ar", "11_maf"} <= set(names())


@pytest.mark.parametrize("name", names())
def test_each_assignment_matches_its_notebook_and_its_release_is_current(name, tmp_path):
    assignment = load(name)  # validated against solutions/<name>/
    assert assignment.samples.is_dir() and set(assignment.expected)
    for student, expected in assignment.expected.items():  # the expected scores add up
        assert sum(expected["scores"].values()) == expected["total"], student
        assert set(expected["scores"]) == set(assignment.grade_ids()), student
    assert normalized(generate(name, tmp_path)) == normalized(assignment.release), (
        f"run `python -m autograder release --assignment {name}`")


def test_an_inconsistent_spec_is_refused_naming_the_grade_cell():
    good = load("10_ar")
    plan = dict(good.plan)
    title, parts = plan["hidden_loss_fn"]
    plan["hidden_loss_fn"] = (title, [*parts, ("an extra sub-check", 1)])  # 3 points; the notebook says 2
    with pytest.raises(SpecError, match=r"hidden_loss_fn: the notebook gives 2 points, the plan 3"):
        validate(dataclasses.replace(good, plan=plan))
    plan = {**good.plan, "hidden_missing": ("missing", [("a check of a cell that does not exist", 1)])}
    with pytest.raises(SpecError, match=r"hidden_missing is in the plan but is no grade cell"):
        validate(dataclasses.replace(good, plan=plan))


def test_an_unknown_assignment_is_refused_before_grading(tmp_path):
    from autograder.grade import main

    (tmp_path / "submitted").mkdir()
    assert main(["--assignment", "12_nope", "--submitted", str(tmp_path / "submitted"),
                 "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()  # nothing was written


@pytest.mark.slow
def test_validate_exits_non_zero_when_validation_fails(tmp_path, capsys):
    """`nbgrader validate` exits 0 even when tests fail; `python -m autograder validate` says it with its status."""
    from autograder.validate import main

    release = tmp_path / "pixelcnn.ipynb"
    release.write_bytes(load("10_ar").release.read_bytes())  # the stubs raise NotImplementedError
    assert main([str(release)]) == 1
    assert "NOT VALID" in capsys.readouterr().out
    assert main([str(tmp_path / "missing.ipynb")]) == 2
