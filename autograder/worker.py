"""Grade ONE submission in a process of its own: ``python -m autograder.worker SPEC.json RESULT.json``
(or many, one after another: ``python -m autograder.worker --serve``, as ``autograder.grade`` does).

``autograder.grade`` starts one worker per submission (``--jobs N`` of them at once) and is
the only writer of the class gradebook; a worker never touches it. Each worker works in a
private nbgrader course folder (``OUT/work/<student>/``, with its own SQLite gradebook copied
from a template where the assignment is registered), so that workers never contend:

1. **intake**: the submission's files are copied in under the limits (file size, count, no
   links); a renamed notebook is taken when it is the only one; a notebook that is not valid
   JSON, or whose grade cells were deleted, edited, duplicated, retyped or re-identified, is
   noted (the grader restores grade cells; no score depends on them);
2. **checks** (in a thread): every grade cell's verdict, visible and hidden, decided in this
   process from the answers of the jailed black box (``verdicts.run_checks``);
3. **nbgrader autograde** (at the same time): the notebook runs in a jailed kernel, for the
   feedback only, under a per-cell and a whole-notebook time limit and an output cap;
4. the verdicts are written into the private gradebook, each grade cell's report is shown
   under it, and nbgrader's ``generate_feedback`` renders the HTML (a plain page when the
   notebook could not run at all).

The result (scores, reports, reasons, timings, where the files are) goes to RESULT.json,
written last and atomically: no file, no grade.
"""

from __future__ import annotations

import json
import os
import re
import resource
import secrets
import shutil
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from html import escape
from pathlib import Path

import nbformat

from . import jail
from .cgroups import CgroupLimits, SubmissionCgroup
from .extract import grade_id

PROCESS_ID = secrets.token_hex(6)  # this worker process (PIDs repeat: each worker is PID 1 of its namespace)


@dataclass(frozen=True)
class GradingLimits:
    """Per-submission limits (autograder/README.md says why these values)."""

    probe_seconds: float = 120.0  # one answer of the black box (a generate on 28 x 28 takes seconds)
    checks_seconds: float = 900.0  # all the checks of one submission, restarts included
    cell_seconds: int = 180  # one notebook cell under nbgrader (loading weights, the visible tests)
    notebook_seconds: float = 900.0  # the whole notebook under nbgrader
    submission_seconds: float = 2400.0  # the whole worker: a safety net above the others
    output_bytes: int = 8 * 2**20  # what the notebook may print (the rest is dropped)
    file_bytes: int = 20 * 2**20  # the weights file (the default model's are 0.45 MB)
    memory_bytes: int = 3 * 2**30  # address space of each jailed process
    submission_memory_bytes: int = 4 * 2**30  # everything one submission runs, together (cgroup)
    submission_processes: int = 128  # processes of one submission, together (cgroup)
    submission_cpus: float | None = None  # a hard CPU cap per submission, in cores (None: equal shares)
    bpd_limit: int | None = None  # grader-only digits for bits/dim (None: all 500)
    # Run the notebook again in a jailed kernel for the feedback (the verdicts never come from it). Off:
    # the feedback shows the notebook as submitted, with the grader's verdicts; the solution cells then
    # run once per submission, in the black box, which halves the CPU a submission costs.
    run_notebook: bool = False


# --------------------------------------------------------------------------- intake
def intake(staged: Path, dest: Path) -> None:
    """Copy the files the grader took (``autograder.intake``: the notebook, the weights) into the
    private course folder. The staging folder is the grader's own, made from plain files only."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(staged.iterdir()) if staged.is_dir() else []:
        if path.is_file() and not path.is_symlink():
            shutil.copyfile(path, dest / path.name)


def notebook_problems(path: Path, source: Path) -> tuple[bool, list[str]]:
    """(readable, notes): whether ``path`` is a notebook at all, and how its grade cells differ from ``source``."""
    if not path.exists():
        return False, []
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as err:
        return False, [f"{path.name} is not a valid notebook ({type(err).__name__}: {str(err)[:200]}): "
                       "nothing in it could be graded"]
    src = nbformat.read(str(source), as_version=4)
    theirs: dict[str, list] = {}
    for cell in nb.cells:
        if gid := grade_id(cell):
            theirs.setdefault(gid, []).append(cell)
    changes: dict[str, list[str]] = {}
    for cell in src.cells:
        meta = cell.get("metadata", {}).get("nbgrader") or {}
        if not meta.get("grade"):
            continue
        gid = meta["grade_id"]
        found = theirs.get(gid, [])
        if not found:
            changes.setdefault("deleted or re-identified", []).append(gid)
            continue
        if len(found) > 1:
            changes.setdefault("duplicated", []).append(gid)
        mine = found[0]
        if mine.cell_type != cell.cell_type:
            changes.setdefault("changed in type", []).append(gid)
        elif without_hidden_tests(mine.source) != without_hidden_tests(cell.source):
            changes.setdefault("edited", []).append(gid)
        if ((mine.get("metadata") or {}).get("nbgrader") or {}).get("points") != meta.get("points"):
            changes.setdefault("points changed", []).append(gid)
    order = [gid for gid in theirs if gid in {grade_id(c) for c in src.cells}]
    expected_order = [gid for c in src.cells if (gid := grade_id(c)) in theirs]
    if order != expected_order:
        changes.setdefault("reordered", []).append("cells")
    if not changes:
        return True, []
    what = "; ".join(f"{kind}: {', '.join(ids[:6])}" for kind, ids in changes.items())
    return True, [f"grade cells were changed in the notebook ({what}); the grader restores them and decides every "
                  "score itself, so they count for nothing"]


HIDDEN_TESTS = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.M | re.S)


def without_hidden_tests(source: str) -> str:
    """A cell's source without its hidden-test block (the release has none; the source, and a notebook
    nbgrader restored, have it): what a student's copy of a grade cell is compared by."""
    return HIDDEN_TESTS.sub("", source).strip()


# --------------------------------------------------------------------------- nbgrader
def nbgrader_api(root: Path, db_url: str, limits: GradingLimits = GradingLimits()):
    """An NbGraderAPI over the course folder ``root`` (source/, release/, submitted/, autograded/, feedback/).

    The course's one configuration (:func:`autograder.nbconfig.course_config`: ``nbgrader_config.py``
    pointed at ``root``), plus what makes this run hardened: the grader's limits, its preprocessors,
    sanitized feedback and the jailed kernel.
    """
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    from .limited_execute import LimitedExecute
    from .nbconfig import course_config

    config = course_config(root, db_url)
    config.CourseDirectory.max_file_size = limits.file_bytes // 1000  # kB, as nbgrader counts
    config.Execute.timeout = limits.cell_seconds  # training is skipped under autograding
    config.Execute.startup_timeout = 120
    config.LimitedExecute.max_output_bytes = limits.output_bytes
    # Feedback is opened by students and instructors in a browser: a submission's HTML (outputs and
    # markdown) is cleaned by nbconvert (bleach): no scripts, no event handlers, no javascript: links.
    config.HTMLExporter.sanitize_html = True
    config.Autograde.autograde_preprocessors = [LimitedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                                SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    if not limits.run_notebook:  # keep the submitted outputs, run nothing: the feedback shows the notebook as sent
        from nbgrader.preprocessors import DeduplicateIds, OverwriteCells, OverwriteKernelspec

        config.Autograde.sanitize_preprocessors = [DeduplicateIds, OverwriteKernelspec, OverwriteCells,
                                                   CheckCellMetadata]
        config.Autograde.autograde_preprocessors = config.Autograde.autograde_preprocessors[1:]
    if jail.jail_available():  # the student's notebook runs in the jail too, not with the grader's rights
        from .jailed_kernel import JailedKernelManager

        config.Execute.kernel_manager_class = JailedKernelManager
    return NbGraderAPI(CourseDirectory(config=config), config=config)


def write_scores(db_url: str, student: str, scores: dict[str, float], assignment: str, notebook: str) -> bool:
    """Set every grade cell's automatic score in a gradebook (the verdicts from outside the kernel); False
    if the gradebook holds no submission of this student. An instructor's manual score (formgrader) is
    kept: nbgrader counts it instead of the automatic one, through any regrade."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            gb.find_submission_notebook(notebook, assignment, student)
        except MissingEntry:
            return False
        for gid, score in scores.items():
            grade = gb.find_grade(gid, notebook, assignment, student)
            grade.auto_score = score
            grade.needs_manual_grade = False
        gb.db.commit()
    return True


#: outputs that would run code in the browser of whoever opens the feedback
ACTIVE_MIMETYPES = ("application/javascript", "text/javascript", "application/x-javascript")
#: HTML or markdown that could run code or load a page (scripts, frames, event handlers, script links)
ACTIVE_HTML = re.compile(r"<\s*/?\s*(script|iframe|frame|object|embed|svg|math|style|link|meta|base|form)\b"
                         r"|<[^>]*\son\w+\s*=|javascript:|vbscript:|data:\s*text/html", re.I)


def _inert_markdown(source: str) -> str:
    """A markdown cell's text shown as a code block: read, never rendered as HTML."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", source)), default=0))
    return f"{fence}text\n{source}\n{fence}"


def disarm(nb) -> int:
    """Make a notebook safe to render for a browser; returns how many elements were disarmed.

    JavaScript outputs are removed; a markdown cell with active HTML (a script, an event handler,
    a ``javascript:`` link) is shown as plain text; the active HTML of outputs is counted here and
    stripped by nbconvert's sanitizer (``HTMLExporter.sanitize_html``) when the page is rendered."""
    found = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown" and ACTIVE_HTML.search(cell.source):
            cell.source = _inert_markdown(cell.source)
            cell.pop("attachments", None)
            found += 1
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data") or {}
            for mime in [m for m in data if m in ACTIVE_MIMETYPES]:
                del data[mime]
                found += 1
            html = data.get("text/html", "")
            if ACTIVE_HTML.search(html if isinstance(html, str) else "".join(html)):
                found += 1
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if o.get("output_type") not in ("display_data", "execute_result")
                            or o.get("data")]
    if found:
        note = nbformat.v4.new_markdown_cell(f"**[grader]** {found} active element(s) of this notebook (scripts, "
                                             "JavaScript outputs, event handlers, script links) were removed from "
                                             "this page or shown as plain text, for safety.")
        nb.cells.insert(0, note)
    return found


AS_SUBMITTED = ("**[grader]** This page shows your notebook as you submitted it, with its own outputs; the "
                "grader did not run it again. Every score is the grader's: it ran your solution cells in a "
                "separate process and wrote its verdict under each grade cell.")


def annotate(autograded_nb: Path, reports: dict[str, str], as_submitted: bool = False) -> int:
    """Show each grade cell's verdict under it: replaces a hidden test cell's output, follows a visible
    test's; active content disarmed (:func:`disarm`). ``as_submitted``: the outputs are the student's
    own (the notebook was not run again), said at the top. Returns how many elements were disarmed."""
    nb = nbformat.read(str(autograded_nb), as_version=4)
    disarmed = disarm(nb)
    if as_submitted:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(AS_SUBMITTED))
    for cell in nb.cells:
        gid = grade_id(cell)
        if cell.cell_type == "code" and gid in reports:
            verdict = nbformat.v4.new_output("stream", name="stdout", text="[grader] " + reports[gid] + "\n")
            cell.outputs = [verdict] if gid.startswith("hidden_") else [*cell.outputs, verdict]
    nbformat.write(nb, str(autograded_nb))
    return disarmed


def plain_feedback(path: Path, student: str, reports: dict[str, str], notes: list[str], total: float,
                   max_total: float, assignment: str) -> None:
    """A feedback page without the notebook (when it could not be run or read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    items = "".join(f"<li>{escape(n)}</li>" for n in notes)
    blocks = "".join(f"<pre>{escape(r)}</pre>" for r in reports.values())
    path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(assignment)} feedback: "
                    f"{escape(student)}</title></head><body><h1>{escape(assignment)}: {total:g} / {max_total:g}</h1>"
                    f"<p>Your notebook could not be shown here.</p><ul>{items}</ul>{blocks}</body></html>")


# --------------------------------------------------------------------------- one submission
def grade_one(spec: dict) -> dict:
    """Grade the submission ``spec`` describes, in a cgroup of its own; its memory is measured."""
    began = time.perf_counter()
    limits = GradingLimits(**spec["limits"])
    student, root = spec["student"], Path(spec["root"])
    reset_peak_memory()
    # One cgroup for everything this submission runs (the kernel, the black box, what they fork).
    # Named after the grader's (host) PID: the grader removes the cgroups of dead graders.
    owner = os.environ.get("ARFLOW_GRADER_PID", str(os.getpid()))
    cgroup = SubmissionCgroup.create(f"{owner}-{student[:32]}-{secrets.token_hex(4)}", CgroupLimits(
        limits.submission_memory_bytes, limits.submission_processes, limits.submission_cpus))
    jail.use_cgroup(cgroup)
    own = resource.getrusage(resource.RUSAGE_SELF)
    try:
        result = _grade_one(spec, limits, student, root)
    finally:
        jail.use_cgroup(None)
        peak = cgroup.peak_memory() if cgroup else None
        killed = cgroup.oom_kills() if cgroup else 0
        jailed_cpu = cgroup.cpu_seconds() if cgroup else None
        if cgroup:
            cgroup.remove()
    now = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds of this submission: the worker's own (the checks' judging, nbgrader, the feedback) and
    # those of everything it ran in the jails (the kernel, the black box), counted by the cgroup.
    # "process": all this worker process has used since it started (its imports included), by "process_id".
    result["cpu"] = {"worker": now.ru_utime + now.ru_stime - own.ru_utime - own.ru_stime, "jailed": jailed_cpu,
                     "process": now.ru_utime + now.ru_stime, "process_id": PROCESS_ID}
    if killed:
        result["notes"].append(f"the submission's processes together reached the "
                               f"{limits.submission_memory_bytes / 2**30:g} GiB memory limit: one was stopped")
    result["memory"] = {"worker_peak_bytes": peak_memory(), "submission_peak_bytes": peak,
                        "cgroup": cgroup.flavour if cgroup else None}
    result["seconds"]["total"] = time.perf_counter() - began
    return result


def reset_peak_memory() -> None:
    """Start this process's peak-RSS count afresh (Linux: VmHWM), so each submission is measured alone."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def peak_memory() -> int | None:
    """This process's peak resident memory (bytes) since the last reset."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _grade_one(spec: dict, limits: GradingLimits, student: str, root: Path) -> dict:
    from . import verdicts
    from .assignment import load
    from .extract import extract_cells
    from .jail import Limits
    from .jailed_kernel import JailedKernelManager
    from .limited_execute import LimitedExecute

    began = time.perf_counter()

    JailedKernelManager.limits = Limits(wall_seconds=limits.notebook_seconds, memory_bytes=limits.memory_bytes)
    # A serving worker grades one submission after another: fresh lists, so that nothing recorded
    # for an earlier submission (by a callback still running) can reach this one's feedback.
    JailedKernelManager.events, LimitedExecute.events = [], []
    assignment = load(spec.get("assignment", "10_ar"))
    ASSIGNMENT, NOTEBOOK = assignment.name, assignment.notebook
    folder = root / "submitted" / student / ASSIGNMENT
    intake(Path(spec["submission"]), folder)
    notes = list(spec.get("intake_notes", []))
    notebook = folder / f"{NOTEBOOK}.ipynb"
    readable, problems = notebook_problems(notebook, Path(spec["source"]))
    notes += problems

    # 2. the checks, in a thread, while nbgrader runs the notebook
    outcome: dict = {}

    def run_checks():
        t0 = time.perf_counter()
        try:
            if readable:
                cells, cell_notes = extract_cells(notebook, assignment)
                outcome["notes"] = cell_notes
                weights = folder / assignment.weights if assignment.weights else None
                outcome["results"] = verdicts.run_checks(
                    assignment, cells, weights, seed=spec.get("seed"), limit=limits.bpd_limit,
                    timeout=limits.probe_seconds, total_timeout=limits.checks_seconds,
                    max_weights_bytes=limits.file_bytes)
            else:
                reason = "; ".join(notes) or f"no readable {NOTEBOOK}.ipynb"
                outcome["results"] = {gid: verdicts.failed_result(assignment, gid, reason)
                                      for gid in assignment.grade_ids()}
        except Exception as err:  # never lose the submission: zero with the reason, flagged for a look
            traceback.print_exc()
            outcome["results"] = {gid: verdicts.failed_result(assignment, gid, f"the grader failed: {err}")
                                  for gid in assignment.grade_ids()}
            outcome["grader_error"] = f"{type(err).__name__}: {err}"
        outcome["seconds"] = time.perf_counter() - t0

    thread = threading.Thread(target=run_checks, daemon=True)
    thread.start()

    # 3. nbgrader autograde, for the feedback
    db_url = f"sqlite:///{root / 'gradebook.db'}"
    api = nbgrader_api(root, db_url, limits)
    t0 = time.perf_counter()
    autograded = root / "autograded" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    nbgrader_ok = False
    if readable:
        res = api.autograde(ASSIGNMENT, student, force=True, create=True)
        nbgrader_ok = bool(res["success"]) and autograded.exists()
        if not nbgrader_ok:
            notes.append(_why_nbgrader_failed(res))
    autograde_seconds = time.perf_counter() - t0
    notes += JailedKernelManager.events + LimitedExecute.events
    thread.join()
    results = outcome["results"]
    notes += outcome.get("notes", [])
    scores = {gid: r.score for gid, r in results.items()}
    reports = {gid: r.report() for gid, r in results.items()}

    # 4. the verdicts into the private gradebook and the feedback
    feedback = root / "feedback" / student / ASSIGNMENT / f"{NOTEBOOK}.html"
    total, max_total = sum(scores.values()), sum(r.max_points for r in results.values())
    if nbgrader_ok and write_scores(db_url, student, scores, ASSIGNMENT, NOTEBOOK):
        if disarmed := annotate(autograded, reports, as_submitted=not limits.run_notebook):
            notes.append(f"{disarmed} active element(s) of the notebook (scripts, JavaScript outputs, event "
                         "handlers, script links) were removed from this page for safety")
        res = api.generate_feedback(ASSIGNMENT, student, force=True)
        for extra in feedback.parent.iterdir() if feedback.parent.is_dir() else []:
            if extra != feedback and extra.is_file():  # nbgrader copies the weights too: feedback is one page
                extra.unlink()
        if not res["success"] or not feedback.exists():
            notes.append("nbgrader could not render the feedback; a plain page was written")
            plain_feedback(feedback, student, reports, notes, total, max_total, ASSIGNMENT)
    else:
        plain_feedback(feedback, student, reports, notes, total, max_total, ASSIGNMENT)
    reasons = [n for n in dict.fromkeys(notes) if n]
    return {"student": student, "scores": scores, "max": {gid: r.max_points for gid, r in results.items()},
            "reports": reports, "errors": {gid: r.error or "; ".join(s.message for s in r.subchecks if not s.passed)
                                           for gid, r in results.items() if r.score < r.max_points},
            "bits_per_dim": getattr(results.get("hidden_trained_model"), "bits_per_dim", None),
            "notes": reasons, "grader_error": outcome.get("grader_error"),
            "autograded": str(autograded) if nbgrader_ok else None, "feedback": str(feedback),
            "seconds": {"autograde": autograde_seconds, "checks": outcome.get("seconds", 0.0),
                        "total": time.perf_counter() - began}}


def _why_nbgrader_failed(res: dict) -> str:
    """One sentence from nbgrader's log on why the notebook did not run to its end."""
    text = f"{res.get('log') or ''}\n{res.get('error') or ''}"
    for pattern, says in ((r"DeadKernelError|Kernel died", "its kernel died (an exit, a signal or the memory limit)"),
                          (r"Timeout waiting for execute reply|CellTimeoutError", "a cell ran past its time limit"),
                          (r"Kernel didn't respond|UnresponsiveKernelError", "its kernel did not respond")):
        if re.search(pattern, text):
            return f"the notebook could not be run to its end for the feedback: {says}"
    last = [line for line in text.strip().splitlines() if line.strip()][-1:]
    return "the notebook could not be run to its end for the feedback" + (f" ({last[0][:200]})" if last else "")


def run_spec(spec_path: Path, result_path: Path) -> None:
    """Grade the submission described in ``spec_path``; write RESULT last and atomically."""
    result = grade_one(json.loads(Path(spec_path).read_text()))
    tmp = Path(result_path).with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, result_path)  # written last: a result file means a finished grade


def serve() -> int:
    """Grade one submission after another: each stdin line is ``SPEC RESULT``; answers ``done`` on
    stdout. Saves the interpreter's start and imports (torch, nbgrader: seconds) per submission."""
    channel = os.fdopen(os.dup(1), "w")  # the answers; anything else printed goes to the log (stderr)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin:
        if not line.strip():
            continue
        spec_path, result_path = line.rstrip("\n").split("\t")
        try:
            run_spec(Path(spec_path), Path(result_path))
        except Exception:  # no result file: the grader flags this student and the next run retries
            traceback.print_exc()
        channel.write("done\n")
        channel.flush()
    return 0


def quiet_nbgrader_warnings() -> None:
    """nbgrader's gradebook triggers SQLAlchemy autoflush warnings (harmless: the objects are added a
    line later) on every submission: they would fill the workers' logs and hide what matters."""
    import warnings

    from sqlalchemy.exc import SAWarning

    warnings.filterwarnings("ignore", category=SAWarning, module=r"nbgrader\.")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    quiet_nbgrader_warnings()
    if argv == ["--serve"]:
        return serve()
    run_spec(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
