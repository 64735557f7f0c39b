"""Grade every submission: nbgrader autograde, the hidden checks, the gradebook, grades.csv, feedback.

``python -m autograder grade --submitted DIR --out DIR [--jobs N] [--db URL] [--limit N]``

Layout of OUT (an nbgrader course directory of its own)::

    OUT/source/10_ar/pixelcnn.ipynb            the source notebook (copied from solutions/)
    OUT/release/10_ar/pixelcnn.ipynb           regenerated here (registers the assignment in the gradebook)
    OUT/submitted/<student>/10_ar/...          a copy of the submissions
    OUT/autograded/<student>/10_ar/...         nbgrader autograde's output (+ the hidden checks' reports)
    OUT/feedback/<student>/10_ar/pixelcnn.html feedback to return to each student
    OUT/gradebook.db                           nbgrader's gradebook (unless --db points elsewhere)
    OUT/grades.csv                             one row per student
    OUT/hidden.json                            the hidden checks' results, with reasons

nbgrader runs the notebook (visible tests and placeholder cells for the hidden ones); the
hidden checks run in a separate black-box process per submission (see ``checks.py``) and
their points are then written into the gradebook for the placeholder cells, whatever the
placeholder cells did in the student's kernel.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from . import checks, jail, sandbox
from .extract import SOURCE, extract_cells

ASSIGNMENT, NOTEBOOK = "10_ar", "pixelcnn"


def _nbgrader_api(out: Path, db_url: str):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = Config()
    cd = config.CourseDirectory
    cd.root = str(out)
    cd.course_id = "arflow"
    cd.source_directory, cd.release_directory = "source", "release"
    cd.submitted_directory, cd.autograded_directory, cd.feedback_directory = "submitted", "autograded", "feedback"
    cd.db_url = db_url
    cd.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]
    cd.max_file_size = 100_000  # kB: weights files are copied into autograded/ (the grader limits them itself)
    config.Execute.timeout = 180  # loading weights and the visible tests; training is skipped under autograding
    config.Execute.startup_timeout = 120
    if jail.jail_available():  # the student's notebook runs in the jail too, not with the grader's rights
        from .jailed_kernel import JailedKernelManager

        config.Execute.kernel_manager_class = JailedKernelManager
    return NbGraderAPI(CourseDirectory(config=config), config=config)


def gradebook_url(db_url: str | None, out: Path) -> str:
    """The gradebook's SQLAlchemy URL: SQLite in OUT by default; a plain ``postgresql://`` URL uses
    psycopg2, the driver the course installs (SQLAlchemy 2.1 would otherwise look for psycopg 3)."""
    if not db_url:
        return f"sqlite:///{out / 'gradebook.db'}"
    if db_url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg2://" + db_url.split("://", 1)[1]
    return db_url


def student_ids(submitted: Path) -> list[str]:
    return sorted(p.name for p in submitted.iterdir() if p.is_dir() and not p.name.startswith("."))


def hidden_for(submitted: Path, student: str, seed: int | None, limit: int | None) -> dict:
    folder = submitted / student / ASSIGNMENT
    cells, notes = extract_cells(folder / f"{NOTEBOOK}.ipynb", SOURCE)
    if not any(c["name"] in ("masked_conv", "pixelcnn", "loss_fn", "generate") for c in cells):
        reason = "; ".join(notes) or "no solution cell found"
        results = {gid: checks.failed_result(gid, reason) for gid in checks.HIDDEN_IDS}
    else:
        results = checks.run_hidden_checks(cells, folder / f"{NOTEBOOK}.pth", seed=seed, limit=limit)
    for result in results.values():
        if notes and not result.error:
            result.error = "; ".join(notes)
    return results


def _annotate(autograded_nb: Path, results: dict) -> None:
    """Put each hidden check's report as the output of its placeholder cell (shown in the feedback)."""
    if not autograded_nb.exists():
        return
    nb = nbformat.read(str(autograded_nb), as_version=4)
    for cell in nb.cells:
        gid = (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")
        if cell.cell_type == "code" and gid in results:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=results[gid].report() + "\n")]
    nbformat.write(nb, str(autograded_nb))


def _write_scores(db_url: str, student: str, results: dict) -> str:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, student)
        except MissingEntry:
            return "no autograded submission in the gradebook"
        for gid, result in results.items():
            grade = gb.find_grade(gid, NOTEBOOK, ASSIGNMENT, student)
            grade.auto_score = result.score  # the verdict from outside the kernel, never the cell's own
            grade.manual_score = None
            grade.needs_manual_grade = False
        gb.db.commit()
    return ""


def _grade_table(db_url: str, students: list[str]) -> tuple[list[str], list[dict]]:
    from nbgrader.api import Gradebook, MissingEntry

    source = nbformat.read(str(SOURCE), as_version=4)
    grade_ids, maxima = [], {}
    for cell in source.cells:
        meta = cell.get("metadata", {}).get("nbgrader") or {}
        if meta.get("grade") and cell.cell_type == "code":
            grade_ids.append(meta["grade_id"])
            maxima[meta["grade_id"]] = float(meta["points"])
    rows = []
    with Gradebook(db_url) as gb:
        for student in students:
            row = {"student_id": student}
            for gid in grade_ids:
                try:
                    row[gid] = float(gb.find_grade(gid, NOTEBOOK, ASSIGNMENT, student).score)
                except MissingEntry:
                    row[gid] = 0.0
            row["total"] = sum(row[g] for g in grade_ids)
            row["max_total"] = sum(maxima.values())
            rows.append(row)
    return ["student_id", *grade_ids, "total", "max_total"], rows


def fingerprint(folder: Path) -> str:
    """sha256 of a submission folder (names and contents) and of the grader itself."""
    digest = hashlib.sha256()
    grader = [SOURCE, *sorted(Path(__file__).parent.glob("*.py"))]
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    for path in [*grader, *files]:
        digest.update(str(path.relative_to(folder) if path in files else path.name).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _read_state(path: Path, expected: str) -> dict | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if state.get("fingerprint") == expected else None


def _write_state(path: Path, fingerprint_: str, hidden: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint_, "hidden": hidden}))
    os.replace(tmp, path)


def grade(submitted: str | Path, out: str | Path, jobs: int = 1, db_url: str | None = None,
          seed: int | None = None, limit: int | None = None, log=print, progress: bool = False) -> dict:
    """Grade every ``submitted/<student>/10_ar/`` into ``out``. Returns a summary dict."""
    submitted, out = Path(submitted).resolve(), Path(out).resolve()
    if not submitted.is_dir():
        raise FileNotFoundError(f"no submissions folder {submitted} (expected <student>/{ASSIGNMENT}/{NOTEBOOK}.ipynb)")
    out.mkdir(parents=True, exist_ok=True)
    sandbox.hide_also(submitted, out)  # no submission's process sees the others, the gradebook or the reports
    db_url = gradebook_url(db_url, out)
    # nbgrader runs `alembic` to create the gradebook: make the venv's scripts findable.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    began = time.perf_counter()
    (out / "source" / ASSIGNMENT).mkdir(parents=True, exist_ok=True)
    shutil.copy(SOURCE, out / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    if (out / "submitted").resolve() != submitted:
        shutil.rmtree(out / "submitted", ignore_errors=True)
        shutil.copytree(submitted, out / "submitted")
    students = student_ids(submitted)
    api = _nbgrader_api(out, db_url)
    result = api.generate_assignment(ASSIGNMENT, force=True, create=True)
    if not result["success"]:
        raise RuntimeError("nbgrader generate_assignment failed:\n" + result.get("error", "") + result.get("log", ""))

    # The hidden checks run in their own processes, in parallel with nbgrader's autograde.
    timings: dict[str, float] = {}

    def hidden(student):
        t0 = time.perf_counter()
        res = hidden_for(submitted, student, seed, limit)
        timings[student] = time.perf_counter() - t0
        return res

    # Resumable and idempotent: a student whose submission (and the grader) did not change since
    # their grade was committed is not graded again; one killed half way is graded from scratch.
    state = out / "state"
    state.mkdir(exist_ok=True)
    prints = {s: fingerprint(submitted / s) for s in students}
    finished = {s: _read_state(state / f"{s}.json", prints[s]) for s in students}
    todo = [s for s in students if finished[s] is None]
    if len(todo) < len(students):
        log(f"{len(students) - len(todo)} submission(s) unchanged since they were graded: kept")
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    futures = {s: pool.submit(hidden, s) for s in todo}
    problems: dict[str, list[str]] = {s: [] for s in students}
    autograde_seconds = {}
    hidden_summary = {s: finished[s]["hidden"] for s in students if finished[s] is not None}
    for student in tqdm(todo, desc="grading", unit="submission", disable=not progress):
        t0 = time.perf_counter()
        res = api.autograde(ASSIGNMENT, student, force=True, create=True)
        autograde_seconds[student] = time.perf_counter() - t0
        if not res["success"]:
            problems[student].append("nbgrader autograde failed: " + (res.get("error") or "")[-500:])
        try:
            results = futures[student].result()
        except Exception as err:  # fail-safe: never crash, score 0 with the reason
            results = {gid: checks.failed_result(gid, f"the hidden checks could not run: {err}")
                       for gid in checks.HIDDEN_IDS}
        log(f"{student}: autograded in {autograde_seconds[student]:.0f} s; hidden checks "
            f"{sum(r.score for r in results.values()):g} points in {timings.get(student, 0):.0f} s")
        why = _write_scores(db_url, student, results)
        if why:
            problems[student].append(why)
        _annotate(out / "autograded" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb", results)
        res = api.generate_feedback(ASSIGNMENT, student, force=True)
        if not res["success"]:
            problems[student].append("nbgrader generate_feedback failed")
        hidden_summary[student] = {gid: {"score": r.score, "max": r.max_points, "report": r.report(),
                                         **({"bits_per_dim": r.bits_per_dim} if hasattr(r, "bits_per_dim") else {})}
                                   for gid, r in results.items()}
        # Written last and atomically: it marks this student's grade as committed.
        _write_state(state / f"{student}.json", prints[student], hidden_summary[student])
    pool.shutdown()
    header, rows = _grade_table(db_url, students)
    with open(out / "grades.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    summary = {"students": students, "rows": rows, "header": header, "problems": problems,
               "autograde_seconds": autograde_seconds, "hidden_seconds": timings,
               "seconds": time.perf_counter() - began, "feedback": str(out / "feedback"),
               "hidden": {s: hidden_summary[s] for s in students}, "graded_now": todo}
    (out / "hidden.json").write_text(json.dumps(summary["hidden"], indent=1))
    return summary


def print_table(summary: dict, log=print) -> None:
    header = summary["header"]
    short = {h: h.replace("hidden_", "h:").replace("test_", "v:") for h in header}
    widths = {h: max(len(short[h]), 5) for h in header}
    widths["student_id"] = max([10, *(len(r["student_id"]) for r in summary["rows"])])
    log("  ".join(short[h].ljust(widths[h]) for h in header))
    for row in summary["rows"]:
        log("  ".join((row[h] if h == "student_id" else f"{row[h]:g}").ljust(widths[h]) for h in header))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submitted", default="submitted")
    parser.add_argument("--out", default="graded")
    parser.add_argument("--jobs", type=int, default=1, help="hidden checks of N submissions at once")
    parser.add_argument("--db", default=None, help="gradebook URL (default: sqlite:///OUT/gradebook.db)")
    parser.add_argument("--seed", type=int, default=None, help="fix the probes' seed (default: secret, random)")
    parser.add_argument("--limit", type=int, default=None, help="test digits for bits/dim (default: all 1,000)")
    args = parser.parse_args(argv)
    summary = grade(args.submitted, args.out, jobs=args.jobs, db_url=args.db, seed=args.seed, limit=args.limit,
                    progress=True)
    print_table(summary)
    for student, items in summary["problems"].items():
        for item in items:
            print(f"  note {student}: {item}")
    print(f"grades: {Path(args.out) / 'grades.csv'}; feedback: {summary['feedback']}/<student>/{ASSIGNMENT}/; "
          f"{summary['seconds']:.0f} s")
    return 0
