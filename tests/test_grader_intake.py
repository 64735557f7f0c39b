"""Intake (autograder/intake.py): what is taken from a submissions folder, and that nothing in it
can steer or crash the grader; the escaping of what reaches the instructor; the cgroup ceilings.

The whole-run behaviour (every entry in grades.csv, refused entries flagged) is checked by the
corpus (tests/test_grader_corpus.py); these tests pin each rule down, fast.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.grade import csv_safe
from autograder.intake import (
    Entry,
    IntakeError,
    IntakeLimits,
    list_entries,
    shown,
    student_key,
    take,
)
from autograder.summary import md_text

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "autograder" / "assignments" / "10_ar" / "samples" / "reference" / "10_ar"


def _student(submitted: Path, name: str = "alice") -> Path:
    folder = submitted / name / "10_ar"
    folder.mkdir(parents=True)
    return folder


def _take(submitted: Path, name: str, tmp_path: Path, **limits):
    entry = next(e for e in list_entries(submitted) if e.name == name)
    return take(submitted, entry, "10_ar", "pixelcnn", tmp_path / "staged" / entry.key, IntakeLimits(**limits))


# --------------------------------------------------------------------------- student ids
@pytest.mark.parametrize("name", ["alice", "s123456", "jane.doe", "a-b_c@x+y"])
def test_plain_ids_are_their_own_keys(name):
    assert student_key(name) == name


@pytest.mark.parametrize("name", ["_template", ".hidden", "=cmd|' /C calc'!A0", "tab\there", "new\nline",
                                  "s" * 251, "ünïcödé", "x/../y", "-rf", " spaced ", "\udcff"])
def test_odd_ids_get_safe_distinct_keys(name):
    key = student_key(name)
    assert key.startswith("_") and len(key) <= 42 and all(c.isalnum() or c in "_-" for c in key), key
    assert key != name and student_key(name) == key  # stable
    assert key not in {student_key(other) for other in ("_template", "tab\there2", "s" * 250) if other != name}


def test_shown_makes_control_characters_visible_and_cuts_long_ids():
    assert shown("a\tb\nc") == "a\\tb\\nc"
    assert len(shown("s" * 251)) == 80


# --------------------------------------------------------------------------- listing
def test_every_entry_is_listed_and_links_files_and_hidden_ones_are_refused(tmp_path):
    submitted = tmp_path / "submitted"
    _student(submitted, "alice")
    (submitted / "notes.txt").write_text("x")
    (submitted / ".DS_Store").write_text("x")
    os.symlink(REFERENCE.parent, submitted / "mallory")
    os.symlink("/nonexistent", submitted / "dangling")
    problems = {e.name: e.problem for e in list_entries(submitted)}
    assert problems["alice"] == ""
    assert "symbolic link" in problems["mallory"] and "symbolic link" in problems["dangling"]
    assert "not a folder" in problems["notes.txt"] and "hidden" in problems[".DS_Store"]


# --------------------------------------------------------------------------- taking files
def test_only_the_notebook_and_the_weights_are_taken_by_name(tmp_path):
    submitted = tmp_path / "submitted"
    folder = _student(submitted)
    (folder / "pixelcnn.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    (folder / "pixelcnn.pth").write_bytes(b"weights")
    (folder / "figures").mkdir()
    for i in range(60):
        (folder / f"a{i:02d}.png").write_bytes(b"png")
    taken = _take(submitted, "alice", tmp_path)
    assert sorted(taken.files) == ["pixelcnn.ipynb", "pixelcnn.pth"]
    assert any("61 other" in n for n in taken.notes), taken.notes


def test_links_at_any_level_are_refused(tmp_path):
    submitted = tmp_path / "submitted"
    (submitted / "bob").mkdir(parents=True)
    os.symlink(REFERENCE, submitted / "bob" / "10_ar")
    with pytest.raises(IntakeError, match="symbolic link"):
        _take(submitted, "bob", tmp_path)
    folder = _student(submitted, "carol")
    os.symlink(REFERENCE / "pixelcnn.ipynb", folder / "pixelcnn.ipynb")
    os.symlink("/proc/self/mem", folder / "pixelcnn.pth")
    taken = _take(submitted, "carol", tmp_path)
    assert taken.files == {} and sum("symbolic link" in n for n in taken.notes) == 2, taken.notes


def test_a_sparse_terabyte_a_fifo_and_deep_folders_are_never_read(tmp_path):
    submitted = tmp_path / "submitted"
    folder = _student(submitted)
    with open(folder / "pixelcnn.pth", "wb") as handle:
        handle.truncate(2**40)
    os.mkfifo(folder / "pixelcnn.ipynb")  # opening it for reading would block forever
    deep = folder / "deep"
    for _ in range(11):
        deep = deep / os.path.join(*["d"] * 100)
        os.makedirs(deep)
    try:
        taken = _take(submitted, "alice", tmp_path)
    finally:  # pytest's own cleanup of tmp_path recurses: it must never meet 1,100 levels
        subprocess.run(["rm", "-rf", str(folder / "deep")], check=True)
    assert taken.files == {}
    assert any("larger than the 20.0 MB limit" in n for n in taken.notes), taken.notes
    assert any("pixelcnn.ipynb is not a regular file" in n for n in taken.notes), taken.notes


def test_stored_outputs_do_not_count_and_are_dropped(tmp_path):
    submitted = tmp_path / "submitted"
    folder = _student(submitted)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", outputs=[nbformat.v4.new_output(
        "stream", name="stdout", text="y" * (21 * 2**20))])]
    (folder / "pixelcnn.ipynb").write_text(nbformat.writes(nb))
    taken = _take(submitted, "alice", tmp_path)
    staged = json.loads(taken.files["pixelcnn.ipynb"].read_text())
    assert staged["cells"][0]["outputs"] == [] and "".join(staged["cells"][0]["source"]) == "x = 1"
    nb.cells[0].source = "z = 0\n" * 400_000  # 2.4 MB of code: over the limit on sources
    nb.cells[0].outputs = []
    (folder / "pixelcnn.ipynb").write_text(nbformat.writes(nb))
    taken = _take(submitted, "alice", tmp_path)
    assert "pixelcnn.ipynb" not in taken.files and any("of code and text" in n for n in taken.notes)


def test_a_renamed_notebook_is_taken_when_it_is_the_only_one(tmp_path):
    submitted = tmp_path / "submitted"
    folder = _student(submitted)
    (folder / "x\n# heading.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    taken = _take(submitted, "alice", tmp_path)
    assert "pixelcnn.ipynb" in taken.files
    assert any("renamed" in n and "\n" not in n for n in taken.notes), taken.notes


def test_a_missing_assignment_folder_is_an_intake_error(tmp_path):
    (tmp_path / "submitted" / "dave").mkdir(parents=True)
    with pytest.raises(IntakeError, match="no 10_ar/ folder"):
        _take(tmp_path / "submitted", "dave", tmp_path)
    with pytest.raises(IntakeError, match="could not be opened"):
        take(tmp_path / "submitted", Entry("gone", "gone"), "10_ar", "pixelcnn", tmp_path / "staged")


# --------------------------------------------------------------------------- what reaches the instructor
@pytest.mark.parametrize("value", ["=1+2", "+A1", "-2+3", "@SUM(A1)", "\t=x", "\r=x"])
def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(value):
    assert csv_safe(value) == "'" + value and csv_safe("alice") == "alice" and csv_safe(3.0) == 3.0


def test_markdown_from_a_submission_cannot_forge_structure():
    text = md_text("x\n# Heading\n<script>alert(1)</script> [a](javascript:x) ![i](y) | cell")
    assert "\n" not in text and not text.startswith("#")
    for forged in ("<script>", "](", "!["):
        assert forged not in text, (forged, text)
    assert "\\| cell" in text  # a table cell separator, escaped


# --------------------------------------------------------------------------- memorising the shipped digits
def test_memorising_the_shipped_test_digits_gains_nothing_on_the_graders_digits():
    """The corpus's memorise_test model: near 0 bits/dim on the test digits students have, far
    above the threshold on the grader-only digits (which is where the grader measures)."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from grading_corpus import MEMORISE

    from arflow.data import mnist, to_float
    from autograder.heldout import grader_digits

    spec = importlib.import_module("autograder.assignments.10_ar.spec")
    reference = importlib.import_module("autograder.assignments.10_ar.reference")
    good = importlib.import_module("autograder.assignments.10_ar.make_samples").solution_sources()
    namespace: dict = {}
    prelude = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
    exec(compile(prelude + good["masked_conv"] + "\n" + good["pixelcnn"] + "\n" + MEMORISE, "cheat", "exec"),
         namespace)
    torch.manual_seed(0)
    model = namespace["PixelCNN"]().eval()

    def bpd(images) -> float:
        x = to_float(images)
        with torch.no_grad():
            return float(reference.loss_fn(model(x), x)) / math.log(2)

    shipped, held_out = bpd(mnist("test", source="embedded", limit=40)[0]), bpd(grader_digits(40)[0])
    assert shipped < spec.BPD_THRESHOLD / 4, shipped  # would have earned the 5 points
    assert held_out > 2 * spec.BPD_THRESHOLD, held_out


def test_the_grader_only_digits_are_not_shipped_with_the_course():
    import numpy as np

    from arflow.data import mnist
    from autograder.heldout import grader_digits

    held, labels = grader_digits()
    assert held.shape == (500, 1, 28, 28) and np.bincount(labels).tolist() == [50] * 10
    shipped = {x.tobytes() for split in ("train", "test") for x in mnist(split, source="embedded")[0]}
    assert not any(x.tobytes() in shipped for x in held)
