"""Committed notebooks: valid, no outputs, the conventions of the first cell, and nothing secret for students."""

from __future__ import annotations

import subprocess
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tracked_notebooks() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        listed = []
    found = {ROOT / p for p in listed} | set(ROOT.glob("lectures/*.ipynb")) | set(ROOT.glob("assignments/*/*.ipynb")) \
        | set(ROOT.glob("solutions/*/*.ipynb"))
    return sorted(p for p in found if p.exists() and "samples" not in p.parts and "fixtures" not in p.parts)


NOTEBOOKS = _tracked_notebooks()
LECTURES = [p for p in NOTEBOOKS if p.parts[-2] == "lectures"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_valid_and_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name}: cell {index} has outputs committed"
            assert cell.execution_count is None, f"{path.name}: cell {index} has an execution count"


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.name)
def test_lecture_conventions(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown", "a lecture opens with narrative"
    first_code = next(c for c in nb.cells if c.cell_type == "code").source
    assert "TRAIN = False" in first_code and "setup(" in first_code, "first code cell: setup() and TRAIN = False"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown").lower()
    assert "what to remember" in text and "exercise" in text
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "MaskedConv2d" not in code, "lectures must not contain the assignment's answer"


def test_there_are_lectures():
    assert LECTURES, "lectures/ holds no notebook"
