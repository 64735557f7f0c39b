"""``python -m autograder.bench`` (part of ``make bench``): grading throughput.

Grades the same submissions (the 8 public samples plus copies, 12 by default) three ways, one
after another, and prints submissions per minute:

1. plain ``nbgrader autograde 10_ar`` (serial, the student's code unjailed, visible tests only:
   what nbgrader alone does),
2. ``python -m autograder grade --jobs 1`` (a worker per submission: the notebook in a jailed
   kernel and, at the same time, every check in a jailed black box),
3. the same with ``--jobs 2``.

It also prints the overhead per submission beyond executing its notebook (the worker's time
past nbgrader's autograde, and the orchestration around the workers) and checks that 1 and 2
jobs gave the same grades.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .extract import SOURCE
from .grade import grade

SAMPLES = Path(__file__).resolve().parent / "samples"


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
    """CPU seconds the whole machine has spent busy so far (``/proc/stat``): the grader's processes
    are spread over workers, jails and kernels in namespaces of their own, so count them all (the
    bench machine should be otherwise idle; its load average is printed)."""
    with open("/proc/stat") as handle:
        fields = handle.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=12, help="submissions (default 12)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="arflow-gradebench-") as tmp:
        tmp = Path(tmp)
        submitted = tmp / "submitted"
        submitted.mkdir()
        students = make_submissions(submitted, args.n)
        n = len(students)
        print(f"{n} submissions ({', '.join(students)}); load average at start {os.getloadavg()[0]:.1f}", flush=True)
        cores = len(os.sched_getaffinity(0))
        cpu0 = cpu_seconds()
        plain = plain_nbgrader(submitted, tmp / "plain")
        cpu = (cpu_seconds() - cpu0) / n
        print(f"plain nbgrader autograde, serial: {plain:.0f} s, {60 * n / plain:.2f} submissions/min "
              f"({plain / n:.1f} s each; visible tests only, nothing jailed); {cpu:.1f} CPU s per submission",
              flush=True)
        runs = {}
        for jobs in (1, 2):
            began, cpu0 = time.perf_counter(), cpu_seconds()
            summary = grade(submitted, tmp / f"graded{jobs}", jobs=jobs, seed=7, log=lambda *a: None)
            wall = time.perf_counter() - began
            cpu = (cpu_seconds() - cpu0) / n
            runs[jobs] = summary
            seconds = summary["worker_seconds"].values()
            autograde = statistics.mean(s["autograde"] for s in seconds)
            worker = statistics.mean(s["total"] for s in seconds)
            checks = statistics.mean(s["checks"] for s in seconds)
            print(f"autograder grade --jobs {jobs}: {wall:.0f} s, {60 * n / wall:.2f} submissions/min "
                  f"(x{plain / wall:.2f} the plain serial throughput); {cpu:.1f} CPU s per submission, "
                  f"{cpu * n / wall:.2f} of {cores} cores busy (at most {60 * cores / cpu:.2f} submissions/min "
                  f"on {cores} cores)", flush=True)
            print(f"  per submission: worker {worker:.1f} s = nbgrader autograde {autograde:.1f} s (jailed kernel) "
                  f"in parallel with the checks {checks:.1f} s; beyond executing the notebook: "
                  f"{worker - autograde:+.1f} s in the worker, {jobs * wall / n - worker:+.1f} s of orchestration",
                  flush=True)
        same = all(r1 == r2 for r1, r2 in zip(runs[1]["rows"], runs[2]["rows"]))
        print(f"--jobs 1 and --jobs 2 gave the same grades: {same}; "
              f"2 jobs / 1 job throughput: x{runs[1]['seconds'] / runs[2]['seconds']:.2f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
