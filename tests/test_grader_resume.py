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

SAMPLES = Path(__file__).resolve().parents[1] / "autograder" / "samples"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())
STUDENTS = ("blank", "loss_truncated", "partial")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_killed_half_way_then_resumed_then_idempotent(tmp_path):
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    for student in STUDENTS:
        shutil.copytree(SAMPLES / student, submitted / student)
    command = [sys.executable, "-m", "autograder", "grade", "--submitted", str(submitted), "--out", str(out),
               "--limit", "50"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first_state = out / "state" / f"{STUDENTS[0]}.json"
    deadline = time.monotonic() + 600
    while not first_state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # kill -9, half way: the first student is done, the rest is not
    process.wait()
    assert first_state.exists()
    kept_mtime = first_state.stat().st_mtime_ns

    summary = grade.grade(submitted, out, limit=50, log=lambda *a: None)
    assert STUDENTS[0] not in summary["graded_now"] and STUDENTS[-1] in summary["graded_now"]
    assert first_state.stat().st_mtime_ns == kept_mtime
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
