"""Grading is resumable and idempotent: kill -9 loses no finished grade, and unchanged submissions are kept."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder import grade

SAMPLES = Path(__file__).resolve().parents[1] / "autograder" / "assignments" / "10_ar" / "samples"
EXPECTED = json.loads((SAMPLES.parent / "samples_expected.json").read_text())
STUDENTS = ("blank", "loss_truncated", "partial")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_killed_half_way_then_resumed_then_idempotent(tmp_path):
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    for student in STUDENTS:
        shutil.copytree(SAMPLES / student, submitted / student)
    command = [sys.executable, "-m", "autograder", "grade", "--submitted", str(submitted), "--out", str(out),
               "--limit", "50", "--jobs", "2"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    states = out / "state"
    deadline = time.monotonic() + 600
    while not list(states.glob("*.json")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)  # kill -9 of the grader, half way: one student is done, the rest is not
    process.wait()
    done = {p.stem: p.stat().st_mtime_ns for p in states.glob("*.json")}
    assert done and len(done) < len(STUDENTS)
    # Its workers, and every process they started, die with it.
    time.sleep(5)
    leftovers = [proc.name for proc in Path("/proc").iterdir() if proc.name.isdigit() and _mentions(proc, out)]
    assert leftovers == [], "processes of the killed grader are still running"

    summary = grade.grade(submitted, out, limit=50, log=lambda *a: None)
    assert set(summary["graded_now"]) == set(STUDENTS) - set(done)
    assert {s: (states / f"{s}.json").stat().st_mtime_ns for s in done} == done  # finished grades untouched
    totals = {row["student_id"]: float(row["total"]) for row in summary["rows"]}
    assert totals == {s: EXPECTED[s]["total"] for s in STUDENTS}
    for student in STUDENTS:
        assert (out / "feedback" / student / "10_ar" / "pixelcnn.html").exists()

    again = grade.grade(submitted, out, limit=50, log=lambda *a: None)
    assert again["graded_now"] == []
    assert {row["student_id"]: float(row["total"]) for row in again["rows"]} == totals

    # A changed submission, and only it, is graded again.
    path = submitted / "blank" / "10_ar" / "pixelcnn.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("a late note"))
    nbformat.write(nb, path)
    changed = grade.grade(submitted, out, limit=50, log=lambda *a: None)
    assert changed["graded_now"] == ["blank"]
    assert {row["student_id"]: float(row["total"]) for row in changed["rows"]} == totals


def _mentions(proc: Path, text: Path) -> bool:
    try:
        return str(text).encode() in (proc / "cmdline").read_bytes()
    except OSError:
        return False
