"""``python -m autograder.bench`` (``make bench-grader``): grading throughput and CPU per submission.

Grades the same submissions (the 8 public samples plus copies, 12 by default) four ways, one
after another, and prints one table (submissions per minute, CPU-s per submission):

1. plain ``nbgrader autograde 10_ar`` (serial, the student's code unjailed; the notebook runs in
   the student's kernel with its hidden tests, which run the grader's checks there: what nbgrader
   alone does),
2. ``python -m autograder grade --jobs 1`` (a worker per slot: every check in a jailed black box;
   the feedback shows the notebook as submitted),
3. the same with ``--jobs 2``,
4. ``--executor celery`` with two local Celery workers of one slot each, on a Redis server started
   here on loopback (skipped, saying why, where ``redis-server`` or celery is missing).

CPU-s are counted per process, so other load on the machine does not count (wall times do
depend on it; the load average is printed): for plain nbgrader, ``getrusage`` of its process and
everything it waited for; for the grader, its own process, each grading worker process from its
start (imports included), every submission's jailed processes (its cgroup's CPU accounting) and,
for Celery, the Celery worker processes themselves. From the measured
CPU per submission and the queue's overhead per task it projects the wall time of 5,000
submissions on N worker machines of 2 cores, and checks that every way gave the same grades.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .assignment import load
from .grade import grade

SOURCE = load("10_ar").source

SAMPLES = Path(__file__).resolve().parent / "assignments" / "10_ar" / "samples"


def make_submissions(folder: Path, n: int) -> list[str]:
    """``n`` submissions: the samples, then copies of them under other student ids."""
    names = sorted(p.name for p in SAMPLES.iterdir() if p.is_dir())
    students = []
    for i in range(n):
        name = names[i % len(names)]
        student = name if i < len(names) else f"{name}_{i // len(names)}"
        shutil.copytree(SAMPLES / name, folder / student)
        students.append(student)
    return students


def plain_nbgrader(submitted: Path, course: Path) -> float:
    """Seconds for plain `nbgrader autograde 10_ar` over every submission (serial), in its own course folder."""
    (course / "source" / "10_ar").mkdir(parents=True)
    shutil.copy(SOURCE, course / "source" / "10_ar" / "pixelcnn.ipynb")
    shutil.copytree(submitted, course / "submitted")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'bench'\nc.Execute.timeout = 180\n")
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""), OMP_NUM_THREADS="1")
    nbgrader = [sys.executable, "-m", "nbgrader"]
    subprocess.run([*nbgrader, "generate_assignment", "10_ar", "--force", "--create"], cwd=course, env=env,
                   check=True, capture_output=True)
    began = time.perf_counter()
    subprocess.run([*nbgrader, "autograde", "10_ar", "--force", "--create"], cwd=course, env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - began


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its children that ended and were waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def grader_cpu(summary: dict, extra: float = 0.0) -> float:
    """CPU seconds of a grading run: the grader's process, each grading worker process (all it used
    since it started), and every submission's jailed processes (cgroup accounting)."""
    results = [r for s, r in summary["results"].items() if s in summary["graded_now"] and "cpu" in r]
    processes: dict[str, float] = {}
    for r in results:
        pid = r["cpu"]["process_id"]
        processes[pid] = max(processes.get(pid, 0.0), r["cpu"]["process"])
    jailed = sum(r["cpu"]["jailed"] or 0.0 for r in results)
    return summary["grader_cpu"] + sum(processes.values()) + jailed + extra


def task_cpu(summary: dict, n: int) -> float:
    """CPU seconds of one task once the workers run: its grading process and jailed processes, the
    grader's share and the Celery workers' own (their start included: an upper bound)."""
    graded = [r["cpu"] for s, r in summary["results"].items() if s in summary["graded_now"] and "cpu" in r]
    own = sum(c["worker"] + (c["jailed"] or 0.0) for c in graded) / max(len(graded), 1)
    return own + (summary["grader_cpu"] + summary.get("celery_cpu", 0.0)) / n


def celery_run(submitted: Path, out: Path, seed: int) -> tuple[dict | None, str]:
    """Grade with two local Celery workers on a Redis of its own; (summary, "") or (None, why not)."""
    from .local_cluster import CeleryWorkers, RedisServer, find_binary

    try:
        import celery  # noqa: F401
    except ImportError as err:
        return None, f"not run: {err}"
    binary = find_binary()
    if binary is None:
        return None, "not run: redis-server not found (make system-deps installs it)"
    server = RedisServer(binary)
    broker = server.start()
    workers = CeleryWorkers(broker, n=2, slot_base=4)  # jail slots of their own (the local runs use 0 and 1)
    try:
        began = time.perf_counter()
        workers.start()
        started = time.perf_counter()
        summary = grade(submitted, out, executor="celery", broker=broker, seed=seed, log=lambda *a: None)
        summary["celery_cpu"] = workers.cpu_seconds()  # the Celery worker processes' own threads
        # The workers' start is paid once per machine, not per task: the wall time is the grading's alone.
        summary["celery_start_seconds"], summary["celery_wall"] = started - began, time.perf_counter() - started
        return summary, ""
    finally:
        workers.stop()  # waited for: their CPU counts in RUSAGE_CHILDREN
        server.stop()


def projection(cpu: float, queue_overhead: float, commit: float, n: int = 5000, cores: int = 2) -> str:
    """Wall time of ``n`` submissions on N machines of ``cores`` cores, each running ``cores`` slots:
    the CPU of a submission (``cpu``, CPU-s) spread over the cores, plus the queue's overhead per task
    (``queue_overhead`` s of a slot), and never faster than the single writer (``commit`` s each)."""
    rows = []
    for machines in (1, 10, 50, 100, 200):
        per_task = cpu / cores + queue_overhead / cores
        seconds = max(n * per_task / machines, n * commit)
        rows.append(f"| {machines} | {seconds / 3600:.2f} h | {n / seconds * 60:.0f} |")
    return "\n".join([f"| 2-core workers | wall time for {n} submissions | submissions/min |", "|---|---|---|", *rows])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=12, help="submissions (default 12)")
    args = parser.parse_args(argv)
    table = ["| how | wall s | submissions/min | CPU-s per submission | x plain throughput |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="arflow-gradebench-") as tmp:
        tmp = Path(tmp)
        submitted = tmp / "submitted"
        submitted.mkdir()
        students = make_submissions(submitted, args.n)
        n = len(students)
        print(f"{n} submissions ({', '.join(students)}); load average at start {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} cores (other load slows the wall times, not the CPU-s)", flush=True)
        cpu0 = cpu_seconds()  # nbgrader's process and its kernels: all waited for
        plain = plain_nbgrader(submitted, tmp / "plain")
        plain_cpu = (cpu_seconds() - cpu0) / n
        table.append(f"| plain nbgrader autograde, serial | {plain:.0f} | {60 * n / plain:.2f} | {plain_cpu:.1f} "
                     "| x1.00 |")
        print(table[-1], flush=True)
        runs, measured = {}, {}
        for how in ("--jobs 1", "--jobs 2", "celery, 2 workers"):
            began = time.perf_counter()
            if how.startswith("celery"):
                summary, why = celery_run(submitted, tmp / "celery", seed=7)
                if summary is None:
                    table.append(f"| {how} | {why} | | | |")
                    print(table[-1], flush=True)
                    continue
            else:
                summary = grade(submitted, tmp / how[-1], jobs=int(how[-1]), seed=7, log=lambda *a: None)
            wall = summary.get("celery_wall", time.perf_counter() - began)
            cpu = grader_cpu(summary, summary.get("celery_cpu", 0.0)) / n
            runs[how], measured[how] = summary, (wall, cpu)
            seconds = summary["worker_seconds"].values()
            table.append(f"| `{how}` | {wall:.0f} | {60 * n / wall:.2f} | {cpu:.1f} | x{plain / wall:.2f} |")
            print(table[-1], flush=True)
            print(f"  per submission: worker {statistics.mean(s['total'] for s in seconds):.1f} s = nbgrader "
                  f"autograde {statistics.mean(s['autograde'] for s in seconds):.1f} s (jailed kernel) in parallel "
                  f"with the checks {statistics.mean(s['checks'] for s in seconds):.1f} s; the single writer's "
                  f"commit {summary['commit_seconds'] / n:.2f} s", flush=True)
            if "celery_start_seconds" in summary:
                print(f"  the two Celery workers took {summary['celery_start_seconds']:.0f} s to start (not counted in "
                      "the wall time: paid once per machine)", flush=True)
            graded = [r["cpu"] for r in summary["results"].values() if "cpu" in r]
            if graded:
                jailed = [c["jailed"] for c in graded if c["jailed"] is not None]
                jailed_mean = statistics.mean(jailed) if jailed else float("nan")
                print(f"  CPU-s per submission: grading process {statistics.mean(c['worker'] for c in graded):.1f} "
                      f"(judging, nbgrader, feedback) + jailed {jailed_mean:.1f} "
                      f"(kernel and black box) + the grader's {summary['grader_cpu'] / n:.1f}; the rest is the "
                      "workers' start (imports, once per slot)", flush=True)
        print("\n" + "\n".join(table))
        rows = {how: [r["total"] for r in summary["rows"]] for how, summary in runs.items()}
        same = len({tuple(r) for r in rows.values()}) == 1
        print(f"every way gave the same grades: {same}")
        if "celery, 2 workers" in measured and "--jobs 2" in measured:
            (celery_wall, _), (local_wall, _) = measured["celery, 2 workers"], measured["--jobs 2"]
            celery = runs["celery, 2 workers"]
            per_task = task_cpu(celery, n)
            overhead = max(0.0, 2 * (celery_wall - local_wall) / n)  # slot-seconds per task beyond the local pool
            commit = celery["commit_seconds"] / n
            print(f"\nprojection from the Celery run: {per_task:.1f} CPU-s per task (the workers' start, paid once "
                  f"per machine, left out), queue overhead {overhead:.1f} slot-s per task (Celery's wall beyond "
                  f"--jobs 2's), the single writer's commit {commit:.2f} s per submission:\n")
            print(projection(per_task, overhead, commit))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
