"""Grading the public sample submissions end to end gives their expected scores (one grading run for all)."""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import pytest

from autograder.grade import grade

SAMPLES = Path(__file__).resolve().parent.parent / "autograder" / "assignments" / "10_ar" / "samples"
EXPECTED = json.loads((SAMPLES.parent / "samples_expected.json").read_text())

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("graded")
    summary = grade(SAMPLES, out, jobs=1, seed=1234, log=lambda *a: None)  # serial; the corpus test grades with 2 jobs
    return out, summary


def test_every_sample_gets_its_expected_total(graded):
    _, summary = graded
    totals = {row["student_id"]: row["total"] for row in summary["rows"]}
    assert set(totals) == set(EXPECTED)
    wrong = {s: (totals[s], EXPECTED[s]["total"]) for s in totals if totals[s] != EXPECTED[s]["total"]}
    assert not wrong, (wrong, {s: summary["hidden"][s] for s in wrong})
    # ... and every grade cell its expected score (plain nbgrader is held to the same: test_grader_parity.py)
    for student, cells in summary["hidden"].items():
        assert {gid: r["score"] for gid, r in cells.items()} == EXPECTED[student]["scores"], student


def test_the_same_engine_grades_the_second_assignment(tmp_path):
    """11_maf through the same engine (nothing of it in the engine's files): every sample's every grade cell."""
    from autograder.assignment import load

    maf = load("11_maf")
    summary = grade(maf.samples, tmp_path / "maf", jobs=2, seed=7, log=lambda *a: None, assignment="11_maf")
    assert set(summary["hidden"]) == set(maf.expected)
    for student, cells in summary["hidden"].items():
        assert {gid: r["score"] for gid, r in cells.items()} == maf.expected[student]["scores"], student
    assert (tmp_path / "maf" / "feedback" / "reference" / "11_maf" / "maf.html").exists()


def test_grades_csv_has_one_row_per_student_and_a_column_per_grade_cell(graded):
    out, summary = graded
    with open(out / "grades.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["student_id"] for r in rows] == sorted(EXPECTED)
    assert list(rows[0])[:2] == ["student_id", "flag"] and list(rows[0])[-2:] == ["total", "max_total"]
    assert all(r["flag"] == "" for r in rows)  # every sample was graded
    assert {"test_masked_conv", "hidden_masked_conv", "hidden_trained_model"} <= set(rows[0])
    for row in rows:
        cells = [float(v) for k, v in row.items()
                 if k not in ("student_id", "flag", "late_penalty", "total", "max_total")]
        assert float(row["late_penalty"]) == 0  # no sample has a timestamp.txt
        assert abs(sum(cells) - float(row["total"])) < 1e-9 and float(row["max_total"]) == 23


def test_feedback_explains_hidden_failures_without_showing_hidden_code(graded):
    out, _ = graded
    html = (out / "feedback" / "mask_centre" / "10_ar" / "pixelcnn.html").read_text()
    assert "not causal" in html and "hidden tests, run by the grader" in html
    assert "_perturbation_field" not in html and "check_pixelcnn(box" not in html
    blank = (out / "feedback" / "blank" / "10_ar" / "pixelcnn.html").read_text()
    assert "pixelcnn.pth was not submitted" in blank


def test_the_reference_sample_passes_the_bits_per_dim_threshold(graded):
    _, summary = graded
    spec = importlib.import_module("autograder.assignments.10_ar.spec")

    bpd = summary["hidden"]["reference"]["hidden_trained_model"]["bits_per_dim"]
    assert abs(bpd - spec.REFERENCE_BPD) < 0.01 and bpd < spec.BPD_THRESHOLD
    assert summary["hidden"]["mask_centre"]["hidden_trained_model"]["score"] == 0


def test_the_gradebook_holds_the_hidden_scores(graded):
    out, summary = graded
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        for student in ("reference", "blank"):
            grade_ = gb.find_grade("hidden_trained_model", "pixelcnn", "10_ar", student)
            assert grade_.score == summary["hidden"][student]["hidden_trained_model"]["score"]
