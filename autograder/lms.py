"""Grade exports for learning-management systems: a Canvas gradebook CSV and a Moodle grade-import CSV.

``python -m autograder export --db URL --format canvas|moodle --out FILE [--assignment NAME ...]
[--roster CSV] [--canvas-id NAME=ID ...] [--moodle-id email|idnumber|username] [--feedback]
[--allow-missing]``

The grades are read from an nbgrader gradebook (``sqlite:///path/gradebook.db`` or
``postgresql://...``) through nbgrader's own :class:`nbgrader.api.Gradebook` API, never with SQL.
A student's score on an assignment is exactly what ``nbgrader export`` writes in its ``score``
column: the submission's score (per grade cell the manual score if there is one, else the
automatic one, plus extra credit) minus the late-submission penalty, at least 0; a student with
no submission gets 0, as in nbgrader's export. Scores are written with at most two decimals (both
LMSs show two; Canvas's importer compares scores at that precision).

**Canvas** (what its gradebook importer, ``GradebookImporter`` in canvas-lms, reads, and what its
gradebook export writes): a header row ``Student, ID, SIS User ID, SIS Login ID, Section``, then
one column per assignment named ``<title> (<canvas assignment id>)`` (Canvas takes the id in
parentheses; without one, it matches the title or offers to create a new assignment), then a
``Points Possible`` row (first cell ``    Points Possible``, as Canvas's export writes it: the
importer recognises the row by that text and takes each assignment's maximum from it), then one
row per student. ``Student`` is ``Last, First`` (Canvas's sortable name), ``ID`` Canvas's user id
(nbgrader's ``lms_user_id``, which nbgrader's LTI sync fills, or a roster's ``ID`` column).
Canvas finds a row's student by ``ID``, else by ``SIS User ID``, else by ``SIS Login ID``; so every
student needs at least one of the three (a roster may give ``SIS User ID``, ``SIS Login ID`` and
``Section``).

**Moodle** (its CSV grade import, Grades > Import > CSV file): the importer takes any header and
lets the instructor map one column to a user field ("Map from" a column, "Map to" ``useremail``,
``useridnumber`` or ``username``) and each other column to a grade item or to a grade item's
feedback. The file has the identifier column (``Email address``, ``ID number`` or ``Username``, the
names of Moodle's own export, chosen with ``--moodle-id``), then one column per assignment named
after it, and with ``--feedback`` a ``<assignment> feedback`` column after each (Moodle's docs:
import a feedback column together with its grade column). Moodle compares email addresses case
sensitively, so they are written as they are. The ``Email address`` comes from nbgrader's
``email`` (or the roster's ``email``), ``ID number`` from the roster, ``Username`` from the roster
or else nbgrader's student id (which is the login JupyterHub got from the LMS in the usual setup).

**Roster** (optional CSV, UTF-8): a ``student_id`` column (nbgrader's student id) and any of
``first_name``, ``last_name``, ``email``, ``lms_user_id`` (or ``ID``), ``SIS User ID``,
``SIS Login ID``, ``Section``, ``ID number``, ``Username``. It only fills what the gradebook lacks.

A student without the needed identifier is never dropped silently: :class:`MissingIdentifiers`
names them (the CLI exits with status 2 and writes nothing); with ``allow_missing=True``
(``--allow-missing``) the file is written without them and the warning names them.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

CANVAS_STUDENT_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_POINTS_POSSIBLE = "    Points Possible"  # as Canvas's own export writes it
MOODLE_IDENTIFIERS = {"email": "Email address", "idnumber": "ID number", "username": "Username"}
ROSTER_FIELDS = ["first_name", "last_name", "email", "lms_user_id", "SIS User ID", "SIS Login ID", "Section",
                 "ID number", "Username"]
ROSTER_ALIASES = {"ID": "lms_user_id"}  # Canvas's name for its user id


class LmsExportError(Exception):
    """Bad input (no gradebook, an unknown assignment, a roster without the needed column...)."""


class MissingIdentifierWarning(UserWarning):
    """Students left out of an export (allow_missing=True) because the LMS could not recognise them."""


class MissingIdentifiers(LmsExportError):
    """Students that the LMS could not recognise: no identifier in the gradebook nor in the roster."""

    def __init__(self, students: list[str], needed: str):
        self.students, self.needed = students, needed
        super().__init__(f"{len(students)} student(s) have no {needed}: {'; '.join(students)}. "
                         "Fill it in the gradebook (nbgrader db student add ... ) or give it in a roster CSV "
                         "(--roster, a student_id column and the identifier's column), or pass --allow-missing "
                         "to export the others")


@dataclass
class StudentRow:
    """One student as the LMS sees them: nbgrader's fields, completed from the roster."""

    id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    lms_user_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # roster-only fields (SIS ids, Section, ...)

    @property
    def display(self) -> str:
        """How a person reads this student in a message: name and nbgrader id."""
        name = " ".join(part for part in (self.first_name, self.last_name) if part)
        return f"{name} ({self.id})" if name else self.id

    @property
    def sortable_name(self) -> str:
        if self.last_name and self.first_name:
            return f"{self.last_name}, {self.first_name}"
        return self.last_name or self.first_name or self.id


@dataclass
class Grades:
    """What an export needs from the gradebook."""

    assignments: list[str]
    max_scores: dict[str, float]
    students: list[StudentRow]
    scores: dict[tuple[str, str], float]  # (student id, assignment) -> final score
    penalties: dict[tuple[str, str], float]  # (student id, assignment) -> late penalty (0 when none)
    submitted: set[tuple[str, str]]


def _describe(db_url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(db_url).render_as_string(hide_password=True)
    except Exception:
        return db_url


def read_grades(db_url: str, assignments: list[str] | None = None) -> Grades:
    """The final score of every student of the gradebook on each assignment (all, or those named)."""
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    label = _describe(db_url)  # as given, without its password
    try:
        url = make_url(db_url)
    except ArgumentError as err:
        raise LmsExportError(f"{db_url!r} is not a database URL (expected sqlite:///path/gradebook.db "
                             f"or postgresql://user@host/db): {err}") from None
    if url.drivername in ("postgresql", "postgres"):
        # SQLAlchemy 2's default PostgreSQL driver is psycopg 3; the course installs psycopg2.
        url = url.set(drivername="postgresql+psycopg2")
        db_url = url.render_as_string(hide_password=False)
    if url.get_backend_name() == "sqlite":
        # nbgrader's Gradebook would create an empty gradebook: a typo must not export nothing.
        if not url.database or url.database == ":memory:" or not Path(url.database).is_file():
            raise LmsExportError(f"no gradebook at {url.database or db_url!r}: expected an nbgrader gradebook "
                                 "file, as in --db sqlite:///path/to/gradebook.db")
    try:
        with Gradebook(db_url) as gb:
            known = [a.name for a in gb.assignments]
            chosen = list(assignments) if assignments else known
            unknown = [a for a in chosen if a not in known]
            if unknown:
                raise LmsExportError(f"assignment(s) {', '.join(map(repr, unknown))} not in the gradebook "
                                     f"{label}; it has: {', '.join(known) or 'no assignments'}")
            if not chosen:
                raise LmsExportError(f"the gradebook {label} has no assignments")
            max_scores = {a: float(gb.find_assignment(a).max_score) for a in chosen}
            students, scores, penalties, submitted = [], {}, {}, set()
            for student in gb.students:
                students.append(StudentRow(id=student.id, first_name=student.first_name or "",
                                           last_name=student.last_name or "", email=student.email or "",
                                           lms_user_id=str(student.lms_user_id or "")))
                for name in chosen:
                    try:
                        submission = gb.find_submission(name, student.id)
                    except MissingEntry:  # nothing submitted: 0, as nbgrader export writes
                        scores[student.id, name], penalties[student.id, name] = 0.0, 0.0
                        continue
                    penalty = submission.late_submission_penalty or 0.0
                    # The same expression as nbgrader's CsvExportPlugin.
                    scores[student.id, name] = max(0.0, submission.score - penalty)
                    penalties[student.id, name] = float(penalty)
                    submitted.add((student.id, name))
    except SQLAlchemyError as err:
        raise LmsExportError(f"the gradebook {label} cannot be read: "
                             f"{type(err).__name__}: {str(err).splitlines()[0]}") from None
    return Grades(chosen, max_scores, students, scores, penalties, submitted)


@dataclass
class Roster:
    """A roster CSV: its columns (aliases resolved) and {nbgrader student id: {field: value}}."""

    path: str
    columns: set[str]
    rows: dict[str, dict[str, str]]


def read_roster(path: str | Path) -> Roster:
    """Read a roster CSV (blank values left out); a clear error when it is unreadable or has no student_id."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from a spreadsheet is fine
    except OSError as err:
        raise LmsExportError(f"cannot read the roster {str(path)!r}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise LmsExportError(f"the roster {str(path)!r} is not UTF-8 text (save it as CSV UTF-8)") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    if "student_id" not in columns:
        raise LmsExportError(f"the roster {str(path)!r} has no 'student_id' column (nbgrader's student id); "
                             f"its columns: {', '.join(columns) or 'none'}; expected student_id and any of "
                             f"{', '.join(ROSTER_FIELDS)}")
    rows: dict[str, dict[str, str]] = {}
    for row in reader:
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        sid = row.pop("student_id", "")
        if not sid:
            continue
        if sid in rows:
            raise LmsExportError(f"the roster {str(path)!r} lists student_id {sid!r} twice")
        rows[sid] = {ROSTER_ALIASES.get(k, k): v for k, v in row.items() if v}
    return Roster(str(path), {ROSTER_ALIASES.get(c, c) for c in columns}, rows)


def complete(students: list[StudentRow], roster: Roster | None) -> list[StudentRow]:
    """The students with what the gradebook lacks taken from the roster (the gradebook wins)."""
    if roster is None:
        return students
    for student in students:
        row = roster.rows.get(student.id, {})
        for name in ("first_name", "last_name", "email", "lms_user_id"):
            if not getattr(student, name) and row.get(name):
                setattr(student, name, row[name])
        student.extra.update({k: v for k, v in row.items() if k not in ("first_name", "last_name", "email",
                                                                          "lms_user_id")})
    return students


def _score(value: float) -> str:
    """At most two decimals, no trailing zeros: 23, 20.7, 0.33."""
    text = f"{round(value, 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _missing(students: list[StudentRow], has_id, needed: str, allow_missing: bool) -> list[StudentRow]:
    """The students that have the identifier; the others raise MissingIdentifiers (or warn, when allowed)."""
    lacking = [s.display for s in students if not has_id(s)]
    if lacking and not allow_missing:
        raise MissingIdentifiers(lacking, needed)
    if lacking:
        warnings.warn(f"{len(lacking)} student(s) have no {needed} and are left out of the export: "
                      f"{'; '.join(lacking)}", MissingIdentifierWarning, stacklevel=3)
    return [s for s in students if has_id(s)]


def _open_out(out: str | Path):
    out = Path(out)
    if out.parent and not out.parent.is_dir():
        raise LmsExportError(f"cannot write {str(out)!r}: the folder {str(out.parent)!r} does not exist")
    # utf-8-sig: Excel and both LMSs read accented names right with a BOM.
    return open(out, "w", newline="", encoding="utf-8-sig")


def export_canvas(db_url: str, out: str | Path, assignments: list[str] | None = None,
                  roster: str | Path | None = None, canvas_ids: dict[str, str] | None = None,
                  allow_missing: bool = False) -> list[dict[str, str]]:
    """Write a Canvas gradebook CSV (see the module's docstring); returns the student rows written."""
    grades = read_grades(db_url, assignments)
    canvas_ids = dict(canvas_ids or {})
    unknown = sorted(set(canvas_ids) - set(grades.assignments))
    if unknown:
        raise LmsExportError(f"Canvas ids given for assignment(s) not exported: {', '.join(unknown)}")
    roster_rows = read_roster(roster) if roster else None
    if roster_rows is not None:
        wanted = {"lms_user_id", "SIS User ID", "SIS Login ID"}
        if not wanted & roster_rows.columns:
            raise LmsExportError(f"the roster {roster_rows.path!r} has none of the columns that identify a student "
                                 "in Canvas: ID (or lms_user_id), SIS User ID, SIS Login ID")
    students = complete(grades.students, roster_rows)
    students = _missing(students, lambda s: bool(s.lms_user_id or s.extra.get("SIS User ID")
                                                  or s.extra.get("SIS Login ID")),
                        "Canvas identifier (ID = nbgrader's lms_user_id, SIS User ID or SIS Login ID)", allow_missing)
    headers = [f"{a} ({canvas_ids[a]})" if canvas_ids.get(a) else a for a in grades.assignments]
    rows = []
    for s in students:
        row = {"Student": s.sortable_name, "ID": s.lms_user_id, "SIS User ID": s.extra.get("SIS User ID", ""),
               "SIS Login ID": s.extra.get("SIS Login ID", ""), "Section": s.extra.get("Section", "")}
        row.update({h: _score(grades.scores[s.id, a]) for h, a in zip(headers, grades.assignments)})
        rows.append(row)
    with _open_out(out) as fh:
        writer = csv.writer(fh)
        writer.writerow(CANVAS_STUDENT_COLUMNS + headers)
        writer.writerow([CANVAS_POINTS_POSSIBLE, "", "", "", ""] + [_score(grades.max_scores[a])
                                                                    for a in grades.assignments])
        for row in rows:
            writer.writerow([row[c] for c in CANVAS_STUDENT_COLUMNS + headers])
    return rows


def _feedback(grades: Grades, student: str, assignment: str) -> str:
    if (student, assignment) not in grades.submitted:
        return "no submission"
    penalty = grades.penalties[student, assignment]
    text = f"{_score(grades.scores[student, assignment])} of {_score(grades.max_scores[assignment])} points"
    return text + (f" (late penalty {_score(penalty)} points)" if penalty else "")


def export_moodle(db_url: str, out: str | Path, assignments: list[str] | None = None,
                  roster: str | Path | None = None, identifier: str = "email", feedback: bool = False,
                  allow_missing: bool = False) -> list[dict[str, str]]:
    """Write a Moodle grade-import CSV (see the module's docstring); returns the rows written."""
    if identifier not in MOODLE_IDENTIFIERS:
        raise LmsExportError(f"unknown Moodle identifier {identifier!r}: expected one of "
                             f"{', '.join(MOODLE_IDENTIFIERS)}")
    column = MOODLE_IDENTIFIERS[identifier]
    grades = read_grades(db_url, assignments)
    roster_rows = read_roster(roster) if roster else None
    if identifier == "idnumber" and (roster_rows is None or "ID number" not in roster_rows.columns):
        raise LmsExportError("--moodle-id idnumber needs a roster CSV with an 'ID number' column (nbgrader's "
                             "gradebook has no such field)" + (f"; {str(roster)!r} has none" if roster else ""))
    students = complete(grades.students, roster_rows)

    def value(s: StudentRow) -> str:
        if identifier == "email":
            return s.email
        if identifier == "idnumber":
            return s.extra.get("ID number", "")
        return s.extra.get("Username", "") or s.id

    students = _missing(students, lambda s: bool(value(s)), f"Moodle {column!r}", allow_missing)
    headers = [column]
    for a in grades.assignments:
        headers += [a, f"{a} feedback"] if feedback else [a]
    rows = []
    for s in students:
        row = {column: value(s)}
        for a in grades.assignments:
            row[a] = _score(grades.scores[s.id, a])
            if feedback:
                row[f"{a} feedback"] = _feedback(grades, s.id, a)
        rows.append(row)
    with _open_out(out) as fh:
        writer = csv.DictWriter(fh, fieldnames=headers)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _canvas_ids(pairs: list[str]) -> dict[str, str]:
    ids = {}
    for pair in pairs:
        name, sep, number = pair.rpartition("=")
        if not sep or not name or not number.strip().isdigit():
            raise LmsExportError(f"--canvas-id {pair!r}: expected ASSIGNMENT=NUMBER, as in 10_ar=12345 "
                                 "(the number in the assignment's Canvas address)")
        ids[name] = number.strip()
    return ids


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="gradebook URL: sqlite:///path/gradebook.db or postgresql://...")
    parser.add_argument("--format", required=True, choices=["canvas", "moodle"])
    parser.add_argument("--out", required=True, help="the CSV file to write")
    parser.add_argument("--assignment", action="append", default=[], help="export only this assignment (repeat)")
    parser.add_argument("--roster", help="CSV with student_id and the LMS identifiers the gradebook lacks")
    parser.add_argument("--canvas-id", action="append", default=[], metavar="NAME=ID",
                        help="Canvas assignment id for an assignment (repeat): column 'NAME (ID)'")
    parser.add_argument("--moodle-id", choices=sorted(MOODLE_IDENTIFIERS), default="email",
                        help="the Moodle user field that identifies students (default: email)")
    parser.add_argument("--feedback", action="store_true", help="Moodle: a feedback column after each grade")
    parser.add_argument("--allow-missing", action="store_true",
                        help="write the file without the students that lack an identifier (they are named)")
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MissingIdentifierWarning)
            if args.format == "canvas":
                rows = export_canvas(args.db, args.out, args.assignment or None, args.roster,
                                     _canvas_ids(args.canvas_id), args.allow_missing)
            else:
                rows = export_moodle(args.db, args.out, args.assignment or None, args.roster, args.moodle_id,
                                     args.feedback, args.allow_missing)
    except LmsExportError as err:
        print(f"export: {err}", file=sys.stderr)
        return 2
    for warning in caught:
        if issubclass(warning.category, MissingIdentifierWarning):
            print(f"export: warning: {warning.message}", file=sys.stderr)
    print(f"{len(rows)} student(s) written to {os.fspath(args.out)} ({args.format})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
