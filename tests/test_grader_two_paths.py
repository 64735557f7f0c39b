"""Plain nbgrader and the course's grader share one course directory safely.

Plain ``nbgrader autograde`` writes the automatic scores it computed in the student's kernel into the
same gradebook, and ``generate_feedback`` the same feedback pages, as the course's grader. Whatever
ran in between, a grading run ends with the grader's verdicts in the gradebook and in grades.csv
(written back, and said loudly), flags a feedback page it did not write, and keeps an instructor's
manual scores (formgrader) through every regrade. The other runs are played here through nbgrader's
own Gradebook API, writing what they would write.
"""

from __future__ import annotations

import csv
import shutil

import pytest
from nbgrader.api import Gradebook

from autograder.assignment import load
from autograder.grade import grade

pytestmark = pytest.mark.slow
AR = load("10_ar")
STUDENTS = ("partial", "generate_shared")


def _scores(db: str, student: str) -> dict[str, float]:
    with Gradebook(db) as gb:
        return {g.name: float(g.score) for g in gb.find_submission_notebook(AR.notebook, AR.name, student).grades}


def _csv(out) -> dict[str, dict]:
    with open(out / "grades.csv") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def test_any_sequence_ends_with_the_graders_verdicts_or_a_loud_flag(tmp_path):
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    for student in STUDENTS:
        shutil.copytree(AR.samples / student, submitted / student)
    db = f"sqlite:///{out / 'gradebook.db'}"
    grade(submitted, out, jobs=2, seed=3, log=lambda *a: None)
    for student in STUDENTS:
        assert _scores(db, student) == AR.expected[student]["scores"]

    # 1. plain `nbgrader autograde --force` rescored "partial" in its kernel and rewrote the feedback
    #    of "generate_shared"; 2. the instructor gave "generate_shared" one manual point in formgrader.
    with Gradebook(db) as gb:
        for g in gb.find_submission_notebook(AR.notebook, AR.name, "partial").grades:
            g.auto_score = 0.0
        manual = gb.find_grade("test_generate", AR.notebook, AR.name, "generate_shared")
        manual.manual_score = 1.0
        gb.db.commit()
    page = out / "feedback" / "generate_shared" / AR.name / f"{AR.notebook}.html"
    page.write_text("<html>nbgrader's own feedback</html>")

    lines = []
    summary = grade(submitted, out, jobs=2, seed=3, log=lines.append)
    assert summary["graded_now"] == []  # nothing changed in the submissions: nothing graded again
    assert _scores(db, "partial") == AR.expected["partial"]["scores"]  # written back ...
    said = " ".join(lines)
    assert "partial" in said and "changed outside this grader" in said  # ... and said
    assert any("changed outside this grader" in p for p in summary["problems"]["partial"])
    assert any("feedback page of generate_shared was changed" in p for p in summary["problems"]["generate_shared"])
    assert "changed outside this grader" in (out / "summary.md").read_text()  # under "needs a look"
    # The manual point survives the rerun (nbgrader counts it instead of the automatic 0).
    assert _scores(db, "generate_shared")["test_generate"] == 1.0
    rows = _csv(out)
    assert float(rows["partial"]["total"]) == AR.expected["partial"]["total"]
    assert float(rows["generate_shared"]["total"]) == AR.expected["generate_shared"]["total"] + 1

    # A regrade (the grader's files changed: here, the state of one student is gone) keeps it too.
    (out / "state" / "generate_shared.json").unlink()
    summary = grade(submitted, out, jobs=1, seed=3, log=lambda *a: None)
    assert summary["graded_now"] == ["generate_shared"]
    assert _scores(db, "generate_shared")["test_generate"] == 1.0
    assert page.read_text() != "<html>nbgrader's own feedback</html>"  # the grader's page is back


def test_a_course_directory_without_its_gradebook_or_of_another_course_is_refused(tmp_path):
    from sqlalchemy import create_engine, text

    submitted = tmp_path / "submitted"
    shutil.copytree(AR.samples / "blank", submitted / "blank")
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    with pytest.raises(ValueError, match=r"course directory without its gradebook .*autograder course"):
        grade(submitted, course, log=lambda *a: None)
    assert sorted(p.name for p in course.iterdir()) == ["nbgrader_config.py"]  # nothing written

    other = tmp_path / "other.db"
    engine = create_engine(f"sqlite:///{other}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE course (id VARCHAR(128) PRIMARY KEY)"))
        connection.execute(text("INSERT INTO course (id) VALUES ('stats101')"))
    engine.dispose()
    before = other.read_bytes()
    with pytest.raises(ValueError, match=r"belongs to another course \(stats101"):
        grade(submitted, tmp_path / "out", db_url=f"sqlite:///{other}", log=lambda *a: None)
    assert other.read_bytes() == before


def test_the_grader_applies_the_courses_late_policy_as_plain_nbgrader_does(tmp_path):
    from datetime import datetime, timedelta

    from autograder.grade import course_late_policy
    from autograder.late import late_penalty

    submitted, out = tmp_path / "submitted", tmp_path / "out"
    due = datetime(2030, 5, 1, 23, 59)
    for student, when in (("late", due + timedelta(days=1, hours=12)), ("ontime", due - timedelta(hours=1))):
        shutil.copytree(AR.samples / "partial", submitted / student)
        (submitted / student / AR.name / "timestamp.txt").write_text(when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
    db = f"sqlite:///{out / 'gradebook.db'}"
    grade(submitted, out, jobs=2, seed=1, log=lambda *a: None)
    assert float(_csv(out)["late"]["late_penalty"]) == 0  # no due date yet
    with Gradebook(db) as gb:
        gb.update_or_create_assignment(AR.name, duedate=due)
    summary = grade(submitted, out, jobs=2, seed=1, log=lambda *a: None)
    assert summary["graded_now"] == []  # nothing graded again: the penalty follows the due date
    # 1.5 days late: 2 started days x 10 % of the 23 points (grace 15 min, zero after 7 days)
    assert late_penalty(10, 23, 1.5 * 86400, course_late_policy()) == pytest.approx(4.6)
    rows = _csv(out)
    assert float(rows["late"]["late_penalty"]) == pytest.approx(4.6)
    assert float(rows["late"]["total"]) == pytest.approx(10 - 4.6)
    assert float(rows["ontime"]["late_penalty"]) == 0 and float(rows["ontime"]["total"]) == 10
    with Gradebook(db) as gb:
        assert gb.find_submission_notebook(AR.notebook, AR.name, "late").late_submission_penalty == pytest.approx(4.6)
        assert gb.find_submission(AR.name, "late").timestamp == due + timedelta(days=1, hours=12)
    assert any("submitted late" in p for p in summary["problems"]["late"])
