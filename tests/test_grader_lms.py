"""LMS exports (autograder/lms.py): Canvas and Moodle CSVs from an nbgrader gradebook.

The gradebook is built with nbgrader's own API: two assignments, students with and without
LMS identifiers, automatic and manual scores, extra credit, a late penalty, a missing submission.
The scores are checked by hand and against ``nbgrader export`` run on the same gradebook.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from autograder import lms

# (student id, first, last, email, lms_user_id)
STUDENTS = [
    ("ada", "Ada", "Lovelace", "ada@uni.example", "101"),
    ("alan", "Alan", "Turing", "alan@uni.example", "102"),
    ("grace", "Grace", "Hopper", "grace@uni.example", ""),  # no Canvas id in the gradebook
    ("kurt", "Kurt", "Gödel", "", "104"),  # no email: Moodle by email cannot find him
]
# Hand-computed final scores: 10_ar is out of 23 (cells of 7 and 16 points), 11_maf out of 10.
EXPECTED = {
    ("ada", "10_ar"): 20.7,  # auto 7 + 16, late penalty 2.3 (10 % of 23)
    ("alan", "10_ar"): 14.5,  # auto 7 + manual 6.5 (overrides auto 4) + extra credit 1
    ("grace", "10_ar"): 0.0,  # submitted nothing
    ("kurt", "10_ar"): 0.0,  # auto 3 + 0, late penalty 5 clamped by nbgrader's export to 0
    ("ada", "11_maf"): 10.0,
    ("alan", "11_maf"): 2.5,
    ("grace", "11_maf"): 7.0,
    ("kurt", "11_maf"): 0.0,
}


def _grade(gb, cell, nb, assignment, student, **scores):
    grade = gb.find_grade(cell, nb, assignment, student)
    for key, value in scores.items():
        setattr(grade, key, value)


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("lms")
    url = f"sqlite:///{folder / 'gradebook.db'}"
    # nbgrader runs the `alembic` script to create a gradebook: the venv's scripts must be findable.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        _fill(url)
    return url


def _fill(url: str) -> None:
    with Gradebook(url) as gb:
        gb.add_assignment("10_ar")
        gb.add_notebook("pixelcnn", "10_ar")
        gb.add_grade_cell("visible", "pixelcnn", "10_ar", max_score=7, cell_type="code")
        gb.add_grade_cell("hidden", "pixelcnn", "10_ar", max_score=16, cell_type="code")
        gb.add_assignment("11_maf")
        gb.add_notebook("maf", "11_maf")
        gb.add_grade_cell("flow", "maf", "11_maf", max_score=10, cell_type="code")
        for sid, first, last, email, lms_id in STUDENTS:
            gb.add_student(sid, first_name=first, last_name=last, email=email or None, lms_user_id=lms_id or None)
        for sid in ("ada", "alan", "kurt"):
            gb.add_submission("10_ar", sid)
        for sid, _, _, _, _ in STUDENTS:
            gb.add_submission("11_maf", sid)
        _grade(gb, "visible", "pixelcnn", "10_ar", "ada", auto_score=7)
        _grade(gb, "hidden", "pixelcnn", "10_ar", "ada", auto_score=16)
        gb.find_submission_notebook("pixelcnn", "10_ar", "ada").late_submission_penalty = 2.3
        _grade(gb, "visible", "pixelcnn", "10_ar", "alan", auto_score=7)
        _grade(gb, "hidden", "pixelcnn", "10_ar", "alan", auto_score=4, manual_score=6.5, extra_credit=1)
        _grade(gb, "visible", "pixelcnn", "10_ar", "kurt", auto_score=3)
        _grade(gb, "hidden", "pixelcnn", "10_ar", "kurt", auto_score=0)
        gb.find_submission_notebook("pixelcnn", "10_ar", "kurt").late_submission_penalty = 5
        for sid, score in (("ada", 10), ("alan", 2.5), ("grace", 7), ("kurt", 0)):
            _grade(gb, "flow", "maf", "11_maf", sid, auto_score=score)
        gb.db.commit()


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.reader(fh))


def test_scores_equal_nbgrader_export_and_hand_computed(gradebook, tmp_path):
    nbgrader_csv = tmp_path / "nbgrader.csv"
    # In an empty folder, so that no nbgrader_config.py is read.
    done = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "export", f"--db={gradebook}",
                           f"--to={nbgrader_csv}"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with open(nbgrader_csv, newline="") as fh:
        theirs = {(r["student_id"], r["assignment"]): float(r["score"]) for r in csv.DictReader(fh)}
    grades = lms.read_grades(gradebook)
    assert set(theirs) == set(grades.scores) == set(EXPECTED)
    for key, expected in EXPECTED.items():
        assert grades.scores[key] == pytest.approx(theirs[key], abs=1e-9), key
        assert grades.scores[key] == pytest.approx(expected, abs=1e-9), key
    assert grades.max_scores == {"10_ar": 23.0, "11_maf": 10.0}


def test_canvas_csv_follows_canvas_import_conventions(gradebook, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,SIS User ID,SIS Login ID,Section\n"
                      "grace,S0003,ghopper,Lab B\nada,S0001,alovelace,Lab A\n", encoding="utf-8")
    out = tmp_path / "canvas.csv"
    rows = lms.export_canvas(gradebook, out, roster=roster, canvas_ids={"10_ar": "5501"})
    assert len(rows) == 4
    table = _rows(out)
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "10_ar (5501)", "11_maf"]
    assert table[1] == ["    Points Possible", "", "", "", "", "23", "10"]
    by_name = {r[0]: r for r in table[2:]}
    assert by_name["Lovelace, Ada"] == ["Lovelace, Ada", "101", "S0001", "alovelace", "Lab A", "20.7", "10"]
    assert by_name["Turing, Alan"] == ["Turing, Alan", "102", "", "", "", "14.5", "2.5"]
    # No Canvas id in the gradebook: the roster's SIS ids identify her.
    assert by_name["Hopper, Grace"] == ["Hopper, Grace", "", "S0003", "ghopper", "Lab B", "0", "7"]
    assert by_name["Gödel, Kurt"][1] == "104"
    for row in table[2:]:  # the same scores as nbgrader's, at Canvas's two decimals
        sid = {"Lovelace, Ada": "ada", "Turing, Alan": "alan", "Hopper, Grace": "grace", "Gödel, Kurt": "kurt"}[row[0]]
        assert float(row[5]) == pytest.approx(round(EXPECTED[sid, "10_ar"], 2))
        assert float(row[6]) == pytest.approx(round(EXPECTED[sid, "11_maf"], 2))


def test_canvas_student_without_identifier_is_named(gradebook, tmp_path):
    out = tmp_path / "canvas.csv"
    with pytest.raises(lms.MissingIdentifiers) as err:
        lms.export_canvas(gradebook, out)
    assert err.value.students == ["Grace Hopper (grace)"]
    assert "Grace Hopper (grace)" in str(err.value) and "--roster" in str(err.value)
    assert not out.exists()
    with pytest.warns(lms.MissingIdentifierWarning, match=r"Grace Hopper \(grace\)"):
        rows = lms.export_canvas(gradebook, out, assignments=["10_ar"], allow_missing=True)
    assert sorted(r["Student"] for r in rows) == ["Gödel, Kurt", "Lovelace, Ada", "Turing, Alan"]
    assert _rows(out)[0][5:] == ["10_ar"]


def test_moodle_csv_by_email_with_feedback(gradebook, tmp_path):
    out = tmp_path / "moodle.csv"
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,email\nkurt,Kurt.Goedel@uni.example\nada,other@uni.example\n", encoding="utf-8")
    lms.export_moodle(gradebook, out, roster=roster, feedback=True)
    table = _rows(out)
    assert table[0] == ["Email address", "10_ar", "10_ar feedback", "11_maf", "11_maf feedback"]
    rows = {r[0]: r for r in table[1:]}
    # The gradebook's email wins over the roster's; the roster fills Kurt's (case kept: Moodle compares exactly).
    assert set(rows) == {"ada@uni.example", "alan@uni.example", "grace@uni.example", "Kurt.Goedel@uni.example"}
    assert rows["ada@uni.example"][1:] == ["20.7", "20.7 of 23 points (late penalty 2.3 points)", "10",
                                           "10 of 10 points"]
    assert rows["grace@uni.example"][1:3] == ["0", "no submission"]
    assert rows["alan@uni.example"][3] == "2.5"


def test_moodle_missing_email_and_username_fallback(gradebook, tmp_path):
    with pytest.raises(lms.MissingIdentifiers, match=r"Kurt Gödel \(kurt\)"):
        lms.export_moodle(gradebook, tmp_path / "m.csv")
    lms.export_moodle(gradebook, tmp_path / "m.csv", identifier="username", assignments=["11_maf"])
    table = _rows(tmp_path / "m.csv")
    assert table[0] == ["Username", "11_maf"]
    assert sorted(table[1:]) == [["ada", "10"], ["alan", "2.5"], ["grace", "7"], ["kurt", "0"]]


def test_bad_input_gives_clear_errors(gradebook, tmp_path):
    with pytest.raises(lms.LmsExportError, match="no gradebook at .*missing.db"):
        lms.read_grades(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()  # nbgrader's Gradebook would have created it
    with pytest.raises(lms.LmsExportError, match=r"'12_vae' not in the gradebook.*it has: 10_ar, 11_maf"):
        lms.read_grades(gradebook, ["12_vae"])
    roster = tmp_path / "roster.csv"
    roster.write_text("name,email\nada,a@b\n", encoding="utf-8")
    with pytest.raises(lms.LmsExportError, match="no 'student_id' column.*its columns: name, email"):
        lms.export_moodle(gradebook, tmp_path / "m.csv", roster=roster)
    roster.write_text("student_id,email\nada,a@b\n", encoding="utf-8")
    with pytest.raises(lms.LmsExportError, match="none of the columns that identify a student in Canvas"):
        lms.export_canvas(gradebook, tmp_path / "c.csv", roster=roster)
    with pytest.raises(lms.LmsExportError, match="'ID number' column"):
        lms.export_moodle(gradebook, tmp_path / "m.csv", roster=roster, identifier="idnumber")
    with pytest.raises(lms.LmsExportError, match="not a database URL"):
        lms.read_grades("gradebook.db")


def test_cli(gradebook, tmp_path, capsys):
    from autograder.__main__ import main

    out = tmp_path / "c.csv"
    base = ["export", "--db", gradebook, "--out", str(out)]
    assert main(base + ["--format", "canvas", "--canvas-id", "11_maf=77", "--assignment", "11_maf"]) == 2
    assert "Grace Hopper (grace)" in capsys.readouterr().err and not out.exists()
    assert main(base + ["--format", "moodle", "--assignment", "nope"]) == 2
    assert "'nope' not in the gradebook" in capsys.readouterr().err
    assert main(base + ["--format", "canvas", "--canvas-id", "11_maf", "--allow-missing"]) == 2
    assert "expected ASSIGNMENT=NUMBER" in capsys.readouterr().err
    # `python -m autograder export` is this function (the similarity tests run the module itself once).
    assert main(base + ["--format", "canvas", "--canvas-id", "11_maf=77", "--assignment", "11_maf",
                        "--allow-missing"]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err and "Grace Hopper (grace)" in captured.err
    assert "3 student(s) written" in captured.out
    assert _rows(out)[0][5:] == ["11_maf (77)"] and len(_rows(out)) == 2 + 3


def test_unreachable_postgresql_is_said():
    with pytest.raises(lms.LmsExportError, match=r"gradebook postgresql://grader:\*\*\*@127.0.0.1:1/gb cannot be read"):
        lms.read_grades("postgresql://grader:secret@127.0.0.1:1/gb")


def test_postgresql_gradebook_gives_the_same_export(postgres_server, gradebook, tmp_path, monkeypatch):
    url = postgres_server.create_database("lms_export")
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    _fill(url)
    for db, name in ((gradebook, "sqlite.csv"), (url, "postgres.csv")):
        lms.export_moodle(db, tmp_path / name, identifier="username", feedback=True)
    assert sorted(_rows(tmp_path / "postgres.csv")) == sorted(_rows(tmp_path / "sqlite.csv"))
    assert len(_rows(tmp_path / "postgres.csv")) == 5
