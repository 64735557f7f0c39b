"""Find a submission's solution cells, robustly, using the assignment's source notebook as the map.

A cell is matched by its nbgrader ``grade_id`` (as released), else by its cell id, else by
its content: the last code cell that defines the expected class or function at top level.
A student who changed or deleted cell metadata, moved cells or broke the JSON still gets a
result (possibly with fewer cells) and a note saying what was not found; this never raises.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

SETUP_ID = "setup"
PRELUDE = "import math\nimport numpy as np\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


def grade_id(cell) -> str | None:
    """A cell's nbgrader grade id, if it is a string (a submission may put anything there)."""
    metadata = cell.get("metadata")
    meta = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    gid = meta.get("grade_id") if isinstance(meta, dict) else None
    return gid if isinstance(gid, str) else None


def _defines(source: str) -> set[str]:
    try:
        tree = ast.parse(_strip_magics(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # a 3,500-term sum is too deep for ast
        # Fall back to a regular expression so that a cell with a syntax error is still run
        # (and fails there, with its own error message).
        return set(re.findall(r"^(?:class|def)\s+(\w+)", source, flags=re.M))
    return {node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))}


def _strip_magics(source: str) -> str:
    """IPython magics and shell lines (``%time``, ``!ls``) are not Python: drop them."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def setup_source(source_nb: str | Path) -> str:
    """The setup code cell of the source notebook: trusted imports, run before the student's cells."""
    nb = nbformat.read(str(source_nb), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and grade_id(cell) == SETUP_ID:
            return cell.source
    return ""


def extract_cells(submitted_nb: str | Path, assignment) -> tuple[list[dict], list[str]]:
    """The cells the black box runs: the prelude and setup (from the source of ``assignment``, an
    :class:`autograder.assignment.Assignment`), then the student's solutions.

    Returns ``(cells, notes)``; each cell is ``{"name": ..., "source": ...}``.
    """
    SOLUTIONS, source_nb = assignment.solution_names, assignment.source  # noqa: N806 - grade id -> name it defines
    notes: list[str] = []
    source = nbformat.read(str(source_nb), as_version=4)
    source_ids = {grade_id(c): c.get("id") for c in source.cells if grade_id(c) in SOLUTIONS}
    cells = [{"name": "prelude", "source": PRELUDE}, {"name": "setup", "source": setup_source(source_nb)}]
    try:
        nb = nbformat.read(str(submitted_nb), as_version=4)
        code_cells = [c for c in nb.cells if c.get("cell_type") == "code" and isinstance(c.get("source"), str)]
    except Exception as err:  # missing file, broken JSON, ...: every hidden check scores 0 with this note
        return cells, [f"the notebook could not be read ({type(err).__name__}: {err})"]
    chosen: dict[int, str] = {}
    for gid, name in SOLUTIONS.items():
        match = next((i for i, c in enumerate(code_cells) if grade_id(c) == gid), None)
        if match is None and source_ids.get(gid):
            match = next((i for i, c in enumerate(code_cells) if c.get("id") == source_ids[gid]), None)
        if match is None or name not in _defines(code_cells[match].source):
            defining = [i for i, c in enumerate(code_cells) if name in _defines(c.source)
                        and grade_id(c) not in {g for g in SOLUTIONS if g != gid}]
            if defining:
                if match is not None:
                    notes.append(f"{name} was found outside its solution cell")
                match = defining[-1]
        if match is None:
            notes.append(f"no cell defines {name}")
            continue
        chosen.setdefault(match, gid)
    for i in sorted(chosen):
        cells.append({"name": chosen[i], "source": _strip_magics(code_cells[i].source)})
    return cells, notes
