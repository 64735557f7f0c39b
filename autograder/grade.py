"""Grade every submission: nbgrader autograde, the grader's checks, the gradebook, grades.csv, feedback.

``python -m autograder grade --submitted DIR --out DIR [--jobs N] [--db URL] [--limit N]
[--executor celery --broker redis://HOST:PORT/DB]``

Layout of OUT (an nbgrader course directory of its own)::

    OUT/source/10_ar/pixelcnn.ipynb            the source notebook (copied from solutions/)
    OUT/release/10_ar/pixelcnn.ipynb           regenerated here (registers the assignment in the gradebook)
    OUT/autograded/<student>/10_ar/...         the executed notebook, each grade cell's verdict under it
    OUT/feedback/<student>/10_ar/pixelcnn.html feedback to return to each student
    OUT/gradebook.db                           nbgrader's gradebook (unless --db points elsewhere)
    OUT/grades.csv                             one row per student
    OUT/hidden.json                            every check's result, with reasons
    OUT/summary.md, OUT/summary.png            for the instructor: scores per part, failures by reason, who needs a look
    OUT/state/<student>.json                   marks a committed grade (resuming skips it)
    OUT/work/                                  the workers' private course folders (removed when committed)

Each submission is graded by a worker process of its own (``autograder/worker.py``), ``--jobs``
of them at once, each in a private course folder with a private gradebook; this process is the
only writer of the class gradebook and commits one finished student at a time. Every score,
visible and hidden, is decided outside the student's kernel (``checks.py``, ``visible.py``).
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import hashlib
import json
import os
import queue
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from . import cgroups, jail
from .assignment import REPO, Assignment, load
from .intake import Entry, IntakeError, IntakeLimits, Taken, list_entries, shown, take
from .intake import fingerprint as intake_fingerprint
from .nbconfig import course_id, repo_config
from .worker import GradingLimits, nbgrader_api, write_scores


def gradebook_url(db_url: str | None, out: Path) -> str:
    """The gradebook's SQLAlchemy URL: SQLite in OUT by default; a plain ``postgresql://`` URL uses
    psycopg2, the driver the course installs (SQLAlchemy 2.1 would otherwise look for psycopg 3)."""
    if not db_url:
        return f"sqlite:///{out / 'gradebook.db'}"
    if db_url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg2://" + db_url.split("://", 1)[1]
    return db_url


def _grade_table(db_url: str, entries: list[Entry], flags: dict[str, str],
                 a: Assignment) -> tuple[list[str], list[dict]]:
    """One row per entry of the submissions folder: its scores from the gradebook (0 where it has
    none), and a flag where it could not be graded."""
    from nbgrader.api import Gradebook, MissingEntry

    source = nbformat.read(str(a.source), as_version=4)
    grade_ids, maxima = [], {}
    for cell in source.cells:
        meta = cell.get("metadata", {}).get("nbgrader") or {}
        if meta.get("grade") and cell.cell_type == "code":
            grade_ids.append(meta["grade_id"])
            maxima[meta["grade_id"]] = float(meta["points"])
    rows = []
    with Gradebook(db_url) as gb:
        for entry in entries:
            row = {"student_id": entry.name, "key": entry.key, "flag": flags.get(entry.key, "")}
            for gid in grade_ids:
                try:
                    row[gid] = float(gb.find_grade(gid, a.notebook, a.name, entry.key).score)
                except MissingEntry:
                    row[gid] = 0.0
            try:
                penalty = gb.find_submission_notebook(a.notebook, a.name, entry.key).late_submission_penalty
            except MissingEntry:
                penalty = None
            row["late_penalty"] = float(penalty or 0.0)
            # as nbgrader's own export: the cells' points minus the late penalty, never below 0
            row["total"] = max(0.0, sum(row[g] for g in grade_ids) - row["late_penalty"])
            row["max_total"] = sum(maxima.values())
            rows.append(row)
    return ["student_id", "flag", *grade_ids, "late_penalty", "total", "max_total"], rows


def course_late_policy():
    """The late-penalty policy of ``nbgrader_config.py`` (``LatePenaltyPlugin``: the one plain nbgrader applies)."""
    from .late import LatePenaltyPlugin

    return LatePenaltyPlugin(config=repo_config()).policy()


def _apply_late_penalties(db_url: str, a: Assignment, timestamps: dict[str, str | None]) -> dict[str, float]:
    """Each graded submission's late penalty, as plain nbgrader stores it: its ``timestamp.txt`` against
    the assignment's due date in the gradebook (``nbgrader db assignment add A --duedate=...``), the
    course's policy (:func:`course_late_policy`). Recomputed on every run: the due date may change."""
    from datetime import datetime

    from nbgrader.api import Gradebook, MissingEntry

    from .late import late_penalty

    policy, penalties = course_late_policy(), {}
    with Gradebook(db_url) as gb:
        try:
            due = gb.find_assignment(a.name).duedate
        except MissingEntry:
            return {}
        for student, stamp in timestamps.items():
            try:
                submission = gb.find_submission(a.name, student)
                notebook = gb.find_submission_notebook(a.notebook, a.name, student)
            except MissingEntry:
                continue
            when = datetime.fromisoformat(stamp) if stamp else None
            submission.timestamp = when
            late = (when - due).total_seconds() if when is not None and due is not None else 0.0
            notebook.late_submission_penalty = (late_penalty(notebook.score, notebook.max_score, late, policy)
                                                if late > 0 else None)
            penalties[student] = float(notebook.late_submission_penalty or 0.0)
        gb.db.commit()
    return penalties


def csv_safe(value):
    """A text cell that a spreadsheet shows as text: one starting with ``= + - @`` or a control
    character (a formula, in Excel or LibreOffice) gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r", "\n"):
        return "'" + value
    return value


def write_grades_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: csv_safe(v) for k, v in row.items()} for row in rows)


def grader_files() -> list[Path]:
    """What the grader's verdicts depend on (a change regrades everyone)."""
    here = Path(__file__).parent
    return [*sorted(REPO.glob("solutions/*/*.ipynb")), *sorted(here.glob("*.py")),
            *sorted(here.glob("assignments/**/*.py")), *sorted((REPO / "arflow" / "checks").glob("*.py")),
            *sorted((here / "heldout").glob("*"))]


def _read_state(path: Path, expected: str) -> dict | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if state.get("fingerprint") == expected else None


def _write_state(path: Path, fingerprint_: str, result: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint_, "result": result}))
    os.replace(tmp, path)


def _prepare(out: Path, db_url: str, a: Assignment, local: bool = True) -> Path | None:
    """Register the assignment in the class gradebook and build the workers' template course folder
    (``local``: the workers are this machine's; Celery workers build their own)."""
    (out / "source" / a.name).mkdir(parents=True, exist_ok=True)
    shutil.copy(a.source, out / "source" / a.name / a.source.name)
    result = nbgrader_api(out, db_url).generate_assignment(a.name, force=True, create=True)
    if not result["success"]:
        raise RuntimeError("nbgrader generate_assignment failed:\n" + result.get("error", "") + result.get("log", ""))
    return make_template(out, a) if local else None


def make_template(folder: Path, a: Assignment) -> Path:
    """``folder/template``: the course folder every submission's private one is copied from (the
    source, the release and a private SQLite gradebook where the assignment is registered)."""
    template = folder / "template" / a.name  # never under work/: no student's key can name it
    shutil.rmtree(template, ignore_errors=True)
    (template / "source" / a.name).mkdir(parents=True)
    shutil.copy(a.source, template / "source" / a.name / a.source.name)
    result = nbgrader_api(template, f"sqlite:///{template / 'gradebook.db'}").generate_assignment(
        a.name, force=True, create=True)
    if not result["success"]:
        raise RuntimeError("nbgrader generate_assignment failed for the template:\n" + result.get("error", ""))
    return template


def check_gradebook(db_url: str, timeout: int = 5) -> None:
    """Raise ConnectionError naming the gradebook when its database server cannot be reached
    within about ``timeout`` seconds (SQLite files are created as needed)."""
    if db_url.startswith("sqlite"):
        return
    from sqlalchemy import create_engine, text

    args = {"connect_timeout": timeout} if db_url.startswith("postgresql") else {}
    try:
        engine = create_engine(db_url, connect_args=args)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as err:  # noqa: BLE001 - the driver's own errors, said in one sentence
        raise ConnectionError(f"the gradebook {db_url} cannot be reached ({type(err).__name__}: "
                              f"{str(err).strip().splitlines()[0][:300] if str(err).strip() else ''})") from err


def check_course(out: Path, db_url: str) -> None:
    """Refuse, before anything is written, to grade into a course directory that has no gradebook, or
    into a gradebook of another course (ValueError naming it)."""
    if (out / "nbgrader_config.py").is_file() and db_url == f"sqlite:///{out / 'gradebook.db'}" \
            and not (out / "gradebook.db").is_file():
        raise ValueError(f"{out} is an nbgrader course directory without its gradebook (expected {out / 'gradebook.db'}"
                         f"): make it with `python -m autograder course {out}` or give the gradebook with --db")
    if db_url.startswith("sqlite:///") and not Path(db_url[len("sqlite:///"):]).is_file():
        return  # a new gradebook
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(db_url)  # read only: opening nbgrader's Gradebook would add a course row
    try:
        with engine.connect() as connection:
            ids = ([row[0] for row in connection.execute(text("SELECT id FROM course"))]
                   if inspect(connection).has_table("course") else [])
    finally:
        engine.dispose()
    others = sorted(i for i in ids if i not in (course_id(), "default_course"))
    if others:
        raise ValueError(f"the gradebook {db_url} belongs to another course ({', '.join(others)}; this one is "
                         f"{course_id()!r}): nothing was written")


def _worker_command() -> list[str]:
    argv = [sys.executable, "-m", "autograder.worker", "--serve"]
    if jail.jail_available():
        # The worker is the first process of a PID namespace of its own: when it ends (or is killed
        # at a time limit) every process it started dies with it, jailed kernels and boxes included.
        return ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc", *argv]
    return argv


def _die_with_parent() -> None:
    """In the worker's child, before exec: SIGKILL it if the grader dies (``kill -9`` included), so no
    worker (and, through its PID namespace, nothing it started) outlives the grader."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the worker may outlive a killed grader (autograder/README.md)


class Worker:
    """One job slot's worker process (``python -m autograder.worker --serve``): it grades the
    submissions it is given one after another, so the interpreter and its imports (torch,
    nbgrader: seconds of CPU) are paid once per slot, not once per submission. A worker that
    passes a submission's time limit or dies is killed with all it started, and replaced."""

    def __init__(self, slot: int, logs: Path):
        self.slot, self.log_path = slot, logs / f"worker-{slot}.log"
        self.process: subprocess.Popen | None = None

    def _start(self) -> None:
        env = dict(os.environ, ARFLOW_JAIL_SLOT_BASE=str(100 * self.slot), OMP_NUM_THREADS="1",
                   PYTHONDONTWRITEBYTECODE="1", ARFLOW_GRADER_PID=str(os.getpid()))
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(_worker_command(), cwd=REPO, env=env, stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                                            preexec_fn=_die_with_parent)

    def grade(self, spec: Path, result: Path, timeout: float) -> str:
        """Have the worker grade ``spec``; returns "" when it answered, else why it did not."""
        if self.process is None or self.process.poll() is not None:
            self._start()
        try:
            self.process.stdin.write(f"{spec}\t{result}\n".encode())
            self.process.stdin.flush()
        except OSError as err:
            self.stop()
            return f"the grading worker could not be reached ({err})"
        deadline, buffer = time.monotonic() + timeout, b""
        fd = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    self.stop()
                    return f"grading stopped at the {timeout:.0f} s limit per submission"
                chunk = os.read(fd, 4096)
                if not chunk:
                    code = self.process.wait()
                    self.stop()
                    return f"the grading worker died (exit status {code}); log: {self.log_path}"
                buffer += chunk
        return ""

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=10)  # a served worker ends when its input does
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # and with its PID namespace, all it started
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        self.process.stdout.close()
        self.process = None


def _grade_in(worker: Worker, student: str, staged: Path, notes: list[str], out: Path, template: Path,
              seed: int | None, limits: GradingLimits, a: Assignment) -> dict:
    """Grade one staged submission with ``worker``; returns its result, or a failure to flag."""
    root = out / "work" / student
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for name in ("source", "release"):
        shutil.copytree(template / name, root / name)
    shutil.copy(template / "gradebook.db", root / "gradebook.db")
    spec = {"student": student, "submission": str(staged), "intake_notes": notes, "root": str(root),
            "assignment": a.name, "source": str(a.source), "seed": seed, "limits": asdict(limits)}
    (root / "spec.json").write_text(json.dumps(spec))
    result_path = root / "result.json"
    why = worker.grade(root / "spec.json", result_path, limits.submission_seconds)
    if result_path.is_file():
        return json.loads(result_path.read_text())
    return {"student": student, "failed": why or f"the grading worker gave no result; log: {worker.log_path}"}


def _commit(out: Path, db_url: str, result: dict, a: Assignment) -> None:
    """Copy a worker's feedback and autograded notebook into OUT and its scores into the class gradebook."""

    student = result["student"]
    for kind, path in (("autograded", result.get("autograded")), ("feedback", result.get("feedback"))):
        target = out / kind / student / a.name
        shutil.rmtree(target, ignore_errors=True)
        if path and Path(path).exists():
            shutil.copytree(Path(path).parent, target)
    _write_to_gradebook(db_url, student, result["scores"], a)
    committed = out / "feedback" / student / a.name / f"{a.notebook}.html"
    result["feedback_sha256"] = hashlib.sha256(committed.read_bytes()).hexdigest() if committed.is_file() else None


def _write_to_gradebook(db_url: str, student: str, scores: dict[str, float], a: Assignment) -> None:
    """The student, their submission and every grade cell's automatic score, into the class gradebook."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    with Gradebook(db_url) as gb, warnings.catch_warnings():
        # nbgrader's add_submission triggers a harmless SQLAlchemy autoflush warning.
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student(student)
        gb.update_or_create_submission(a.name, student)
    if not write_scores(db_url, student, scores, a.name, a.notebook):
        raise RuntimeError(f"the gradebook has no submission of {student} after creating it")


def _stage(submitted: Path, entry: Entry, out: Path, limits: IntakeLimits, a: Assignment) -> Taken:
    """Take one student's files into ``OUT/intake/<key>/`` (see :mod:`autograder.intake`)."""
    staged = out / "intake" / entry.key
    shutil.rmtree(staged, ignore_errors=True)
    try:
        return take(submitted, entry, a.name, a.notebook, staged, limits)
    except IntakeError as err:  # graded all the same: zero, with the reason in the feedback
        staged.mkdir(parents=True, exist_ok=True)
        return Taken(notes=[str(err)])


def _local_results(todo: list[str], jobs: int, out: Path, template: Path, staged: dict[str, Taken],
                   seed: int | None, limits: GradingLimits, a: Assignment):
    """Grade ``todo`` with ``jobs`` local workers; yields ``(student, result)`` as they finish."""
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    workers: queue.Queue[Worker] = queue.Queue()
    for slot in range(jobs):
        workers.put(Worker(slot, logs))

    def work(student: str) -> dict:
        worker = workers.get()
        try:
            return _grade_in(worker, student, out / "intake" / student, staged[student].notes, out, template, seed,
                             limits, a)
        finally:
            workers.put(worker)

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(work, s): s for s in todo}
            for future in as_completed(futures):
                student = futures[future]
                try:
                    yield student, future.result()
                except Exception as err:  # noqa: BLE001 - flagged, never dropped, retried next run
                    yield student, {"student": student, "failed": f"the grader failed: {type(err).__name__}: {err}"}
    finally:
        while not workers.empty():
            workers.get().stop()


def grade(submitted: str | Path, out: str | Path, jobs: int = 1, db_url: str | None = None,
          seed: int | None = None, limit: int | None = None, log=print, progress: bool = False,
          limits: GradingLimits | None = None, executor: str = "local", broker: str | None = None,
          retries: int = 2, transfer: str = "queue", assignment: str = "10_ar") -> dict:
    """Grade every ``submitted/<student>/<assignment>/`` into ``out`` with ``jobs`` workers. Returns a summary dict.

    ``executor="celery"`` sends one task per submission to the Celery workers on ``broker``
    (``python -m autograder worker``) instead, sending a failed or lost one again up to
    ``retries`` times; ``transfer`` says how the files reach them ("queue" or "shared").
    The grades do not depend on ``jobs`` or the executor: each submission is graded alone, in a worker of its own.
    Every entry of ``submitted`` ends in ``grades.csv``: graded, or flagged with zero points and
    the reason; one student's failure, at any step, is that student's alone.
    """
    from .summary import write_summary

    a = load(assignment)  # an unknown or inconsistent assignment is refused here, before anything is graded
    submitted, out = Path(submitted).resolve(), Path(out).resolve()
    if not submitted.is_dir():
        raise FileNotFoundError(f"no submissions folder {submitted} (expected <student>/{a.name}/{a.notebook}.ipynb)")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if executor not in ("local", "celery"):
        raise ValueError(f"executor must be 'local' or 'celery', got {executor!r}")
    limits = limits or GradingLimits()
    if limit is not None:
        limits = GradingLimits(**{**asdict(limits), "bpd_limit": limit})
    intake_limits = IntakeLimits(weights_bytes=limits.file_bytes)
    out.mkdir(parents=True, exist_ok=True)
    db_url = gradebook_url(db_url, out)
    # Before any grading: an unreachable broker or gradebook is said at once, naming which.
    cluster = None
    if executor == "celery":
        from .celery_executor import CeleryExecutor

        if not broker:
            raise ValueError("--executor celery needs --broker redis://HOST:PORT/DB")
        cluster = CeleryExecutor(broker, out, limits, seed=seed, retries=retries, transfer=transfer, log=log,
                                 assignment=a.name)
        cluster.check()
    check_gradebook(db_url)
    check_course(out, db_url)
    # nbgrader runs `alembic` to create the gradebook: make the venv's scripts findable.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    began, own_cpu = time.perf_counter(), _own_cpu()
    cgroups.remove_stale()  # what graders killed with -9 left behind
    template = _prepare(out, db_url, a, local=cluster is None)
    entries = list_entries(submitted)
    students = [e.key for e in entries]
    names = {e.key: e.name for e in entries}
    results: dict[str, dict] = {}
    committed: list[str] = []  # students committed in this run, in order (each once)
    problems: dict[str, list[str]] = {s: [] for s in students}
    flags: dict[str, str] = {}

    # Intake, one student at a time, each in its own handler: nothing a student made can stop the run.
    grader = grader_files()
    staged: dict[str, Taken] = {}
    prints: dict[str, str] = {}
    for entry in entries:
        if entry.problem:
            flags[entry.key] = f"not graded: {entry.problem}"
            continue
        try:
            staged[entry.key] = _stage(submitted, entry, out, intake_limits, a)
            prints[entry.key] = intake_fingerprint(staged[entry.key], grader)
        except Exception as err:  # noqa: BLE001 - flagged, never dropped, retried on the next run
            flags[entry.key] = f"not graded: intake failed ({type(err).__name__}: {err}); run the grader again"

    # Resumable and idempotent: a student whose submission (and the grader) did not change since
    # their grade was committed is not graded again; one killed half way is graded from scratch.
    state = out / "state"
    state.mkdir(exist_ok=True)
    finished = {s: _read_state(state / f"{s}.json", prints[s]) for s in prints}
    todo = [s for s in prints if finished[s] is None]
    if len(todo) < len(prints):
        log(f"{len(prints) - len(todo)} submission(s) unchanged since they were graded: kept")
    results.update({s: f["result"] for s, f in finished.items() if f is not None and "result" in f})
    # The gradebook is checked against the grader's own results, not only its state files: another run
    # (plain `nbgrader autograde`, which scores in the student's kernel) may have rewritten them.
    for student in (s for s, f in finished.items() if f is not None and "result" in f):
        changed = _gradebook_differs(db_url, student, results[student]["scores"], a)
        if changed:
            _write_to_gradebook(db_url, student, results[student]["scores"], a)
            note = (f"the gradebook's automatic scores of {', '.join(changed)} had been changed outside this grader "
                    "(by plain nbgrader autograde?): the grader's verdicts were written back")
            problems[student].append(note)
            log(f"{shown(names[student])}: {note}")
        page = out / "feedback" / student / a.name / f"{a.notebook}.html"
        kept = results[student].get("feedback_sha256")
        if kept and (not page.is_file() or hashlib.sha256(page.read_bytes()).hexdigest() != kept):
            note = (f"the feedback page of {student} was changed outside this grader (by plain nbgrader "
                    f"generate_feedback?): delete {state / (student + '.json')} and grade again to restore it")
            problems[student].append(note)
            log(f"{shown(names[student])}: {note}")
    if cluster is not None:
        produced = cluster.results(todo, {s: (out / "intake" / s, staged[s].files, staged[s].notes) for s in todo})
    else:
        produced = _local_results(todo, jobs, out, template, staged, seed, limits, a)
    bar = tqdm(total=len(todo), desc="grading", unit="submission", disable=not progress)
    commit_seconds = 0.0  # the single writer's time: a bound on the throughput of any number of workers
    for student, result in produced:
        bar.update(1)
        try:
            if "failed" not in result:
                t0 = time.perf_counter()
                _commit(out, db_url, result, a)
                commit_seconds += time.perf_counter() - t0
        except Exception as err:  # never lose a submission: it stays ungraded, flagged, and is retried next run
            result = {**result, "failed": f"the grader failed: {type(err).__name__}: {err}"}
        results[student] = result
        if "failed" in result:
            problems[student].append(result["failed"])
            flags[student] = "NOT GRADED: run the grader again to retry"
            log(f"{shown(names[student])}: NOT GRADED ({result['failed'][:200]}); run the grader again to retry")
            shutil.rmtree(out / "work" / student, ignore_errors=True)
            continue
        log(f"{shown(names[student])}: {sum(result['scores'].values()):g} points in "
            f"{result['seconds']['total']:.0f} s")
        # Written last and atomically: it marks this student's grade as committed.
        _write_state(state / f"{student}.json", prints[student], result)
        committed.append(student)
        shutil.rmtree(out / "work" / student, ignore_errors=True)
    bar.close()
    if cluster is not None:
        from .celery_executor import summary_line

        log(summary_line(cluster.attempts))
    _register_ungraded(db_url, [s for s in students if s not in prints])
    penalties = _apply_late_penalties(db_url, a, {s: staged[s].timestamp for s in prints
                                                  if s in results and "scores" in results[s]})
    for student, penalty in penalties.items():
        if penalty:
            problems[student].append(f"submitted late: {penalty:g} point(s) off (the late policy of "
                                     "nbgrader_config.py)")
    header, rows = _grade_table(db_url, entries, flags, a)
    write_grades_csv(out / "grades.csv", header, rows)
    hidden = {s: {gid: {"score": r["scores"][gid], "max": r["max"][gid], "report": r["reports"][gid],
                        **({"bits_per_dim": r["bits_per_dim"]} if gid == "hidden_trained_model"
                           and r.get("bits_per_dim") is not None else {})}
                  for gid in r["scores"]}
              for s, r in results.items() if "scores" in r}
    for student, r in results.items():
        problems[student] += [n for n in r.get("notes", []) if n not in problems[student]]
    for student, flag in flags.items():
        if flag not in problems[student] and not flag.startswith("NOT GRADED"):
            problems[student].append(flag)
    summary = {"students": students, "names": names, "rows": rows, "header": header, "problems": problems,
               "flags": flags, "seconds": time.perf_counter() - began, "feedback": str(out / "feedback"),
               "hidden": hidden, "graded_now": todo, "results": results, "committed": committed,
               "commit_seconds": commit_seconds, "grader_cpu": _own_cpu() - own_cpu,
               "executor": executor, "assignment": a.name, "parts": a.parts(),
               "worker_seconds": {s: r["seconds"] for s, r in results.items() if "seconds" in r and s in todo},
               "memory": {s: r["memory"] for s, r in results.items() if "memory" in r}}
    (out / "hidden.json").write_text(json.dumps(hidden, indent=1))
    summary["summary"] = write_summary(out, summary)
    return summary


def _own_cpu() -> float:
    """CPU seconds (user + system) this process has used so far, all its threads together."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _gradebook_differs(db_url: str, student: str, scores: dict[str, float], a: Assignment) -> list[str]:
    """The grade cells whose automatic score in the gradebook is not the grader's (all of them when the
    submission is missing there)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        changed = []
        for gid, score in scores.items():
            try:
                auto = gb.find_grade(gid, a.notebook, a.name, student).auto_score
            except MissingEntry:
                return list(scores)
            if auto is None or abs(float(auto) - float(score)) > 1e-9:
                changed.append(gid)
    return changed


def _register_ungraded(db_url: str, keys: list[str]) -> None:
    """Entries that could not be graded are students of the gradebook too (zero, no submission), so
    that the gradebook and ``grades.csv`` list the same people."""
    from nbgrader.api import Gradebook

    if keys:
        with Gradebook(db_url) as gb:
            for key in keys:
                gb.update_or_create_student(key)


def print_table(summary: dict, log=print) -> None:
    header = [h for h in summary["header"] if h != "flag"]
    short = {h: h.replace("hidden_", "h:").replace("test_", "v:") for h in header}
    widths = {h: max(len(short[h]), 5) for h in header}
    widths["student_id"] = max([10, *(len(shown(r["student_id"], 40)) for r in summary["rows"])])
    log("  ".join(short[h].ljust(widths[h]) for h in header))
    for row in summary["rows"]:
        cells = [(shown(row[h], 40) if h == "student_id" else f"{row[h]:g}").ljust(widths[h]) for h in header]
        log("  ".join(cells) + (f"  ({row['flag']})" if row["flag"] else ""))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submitted", default="submitted")
    parser.add_argument("--out", default="graded")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at once (one worker each; "
                                                            "the grades do not depend on it)")
    parser.add_argument("--db", default=None, help="gradebook URL (default: sqlite:///OUT/gradebook.db)")
    parser.add_argument("--seed", type=int, default=None, help="fix the probes' seed (default: secret, random)")
    parser.add_argument("--limit", type=int, default=None, help="grader-only digits for bits/dim (default: all 500)")
    parser.add_argument("--executor", choices=("local", "celery"), default="local",
                        help="local: --jobs worker processes here (default); celery: tasks for the workers of "
                             "--broker (python -m autograder worker, on any machine)")
    parser.add_argument("--broker", default=None, help="the Celery broker and result backend: redis://HOST:PORT/DB")
    parser.add_argument("--retries", type=int, default=2,
                        help="celery: times a failed or lost task is sent again before it is flagged (default 2)")
    parser.add_argument("--transfer", choices=("queue", "shared"), default="queue",
                        help="celery: submissions travel in the tasks (default), or OUT is a shared folder")
    parser.add_argument("--assignment", default="10_ar", help="the assignment to grade (a folder of "
                        "autograder/assignments/; default 10_ar)")
    parser.add_argument("--run-notebooks", action="store_true",
                        help="run each notebook again (jailed) for the feedback's outputs; default: the feedback shows "
                             "the notebook as submitted (the verdicts never depend on it)")
    args = parser.parse_args(argv)
    try:
        summary = grade(args.submitted, args.out, jobs=args.jobs, db_url=args.db, seed=args.seed, limit=args.limit,
                        progress=True, executor=args.executor, broker=args.broker, retries=args.retries,
                        transfer=args.transfer, limits=GradingLimits(run_notebook=args.run_notebooks),
                        assignment=args.assignment)
    except (ConnectionError, FileNotFoundError, ValueError) as err:  # SpecError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    print_table(summary)
    print(summary["summary"]["text"])
    print(f"grades: {Path(args.out) / 'grades.csv'}; feedback: {summary['feedback']}/<student>/{args.assignment}/; "
          f"summary: {summary['summary']['markdown']} and {summary['summary']['figure']}; {summary['seconds']:.0f} s")
    return 0
