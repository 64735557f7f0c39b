"""The gradebook on a real PostgreSQL server (started on loopback by the test suite)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from autograder import grade

SAMPLES = Path(__file__).resolve().parents[1] / "autograder" / "assignments" / "10_ar" / "samples"
EXPECTED = json.loads((SAMPLES.parent / "samples_expected.json").read_text())


def test_gradebook_url_defaults_and_driver(tmp_path):
    assert grade.gradebook_url(None, tmp_path) == f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert grade.gradebook_url("postgresql://u@h:5/db", tmp_path) == "postgresql+psycopg2://u@h:5/db"
    assert grade.gradebook_url("sqlite:///x.db", tmp_path) == "sqlite:///x.db"


@pytest.mark.slow
def test_grading_into_a_postgresql_gradebook(postgres_server, tmp_path):
    from nbgrader.api import Gradebook

    url = postgres_server.create_database("gradebook_test")
    submitted = tmp_path / "submitted"
    for student in ("blank", "partial"):
        shutil.copytree(SAMPLES / student, submitted / student)
    summary = grade.grade(submitted, tmp_path / "out", jobs=2, db_url=url.replace("+psycopg2", ""), limit=50,
                          log=lambda *a: None)
    totals = {row["student_id"]: float(row["total"]) for row in summary["rows"]}
    assert totals == {s: EXPECTED[s]["total"] for s in ("blank", "partial")}
    assert not (tmp_path / "out" / "gradebook.db").exists()  # nothing went to SQLite
    with Gradebook(url) as gb:  # the grades live in PostgreSQL, hidden points included
        scores = {s.student.id: s.score for s in gb.assignment_submissions("10_ar")}
        assert scores == totals
