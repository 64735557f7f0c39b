"""The library's layers: every import of ``arflow`` points downwards, and lectures use only public names.

From the bottom up (a module may import its own package and any lower layer, nothing else):

0. ``arflow.units``, ``arflow.utils``: plain helpers;
1. ``arflow.data``: data sets, generated or shipped;
2. ``arflow.models``: one concept per file;
3. ``arflow.analysis`` (what a model can see, computed from its code), ``arflow.evaluate``
   (metrics): side by side, neither imports the other;
4. ``arflow.viz``: figures and explorers;
5. ``arflow.train``: the loop, callbacks, schedules, checkpoints and their recipes;
6. the top: ``arflow.notebook``, ``arflow.assignment_checks``, ``arflow.bench``,
   ``arflow.benchmarks``, ``arflow.exercises`` (the lectures' write-and-check exercises) and the two
   compatibility modules ``arflow.plotting``, ``arflow.training``.

The imports are read with ``ast`` (also those inside functions), so a lazy import cannot hide an
upward dependency.
"""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "arflow"

LAYERS = {
    "arflow.units": 0, "arflow.utils": 0,
    "arflow.data": 1,
    "arflow.models": 2,
    "arflow.analysis": 3, "arflow.evaluate": 3,
    "arflow.viz": 4, "arflow.checks": 4,
    "arflow.train": 5,
    "arflow.notebook": 6, "arflow.assignment_checks": 6, "arflow.bench": 6, "arflow.benchmarks": 6,
    "arflow.exercises": 6, "arflow.plotting": 6, "arflow.training": 6,
}
TOP = 6


def unit_of(module: str) -> str:
    """The layer unit a dotted module belongs to (its entry in LAYERS)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return ".".join(parts[:n])
    raise KeyError(f"{module} belongs to no layer of tests/test_layering.py; add its package to LAYERS")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted name) of every ``arflow`` module imported anywhere in the tree."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("arflow")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("arflow"):
            if node.module == "arflow":  # from arflow import x: x is a module
                found += [(node.lineno, f"arflow.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def upward_imports(path: Path) -> list[str]:
    here = unit_of(module_name(path))
    problems = []
    for line, target in imported_modules(ast.parse(path.read_text(), filename=str(path))):
        there = unit_of(target)
        if there == here:
            continue
        if LAYERS[there] > LAYERS[here] or (LAYERS[there] == LAYERS[here] and here != "arflow" and LAYERS[here] < TOP):
            problems.append(f"{path.relative_to(ROOT)}:{line}: {here} (layer {LAYERS[here]}) imports "
                            f"{target} (layer {LAYERS[there]})")
    return problems


LIBRARY_FILES = sorted(p for p in PACKAGE.rglob("*.py") if module_name(p) != "arflow")


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_downwards(path):
    assert upward_imports(path) == []


def test_the_checker_sees_an_upward_import(tmp_path):
    tree = ast.parse("def f():\n    from arflow.viz.primitives import image_grid\n")
    assert imported_modules(tree) == [(2, "arflow.viz.primitives")]
    fake = PACKAGE / "models" / "_layering_probe.py"
    try:
        fake.write_text("from arflow.train.loop import fit\nfrom arflow.data import mnist\n")
        assert len(upward_imports(fake)) == 1
        fake.write_text("from arflow import analysis\n")
        assert len(upward_imports(fake)) == 1
    finally:
        fake.unlink()


def test_nothing_sets_the_matplotlib_backend_at_import():
    """``matplotlib.use`` at module level would change the backend of every notebook importing it."""
    offenders = []
    for path in LIBRARY_FILES:
        for node in ast.parse(path.read_text()).body:
            call = node.value if isinstance(node, ast.Expr) else None
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "use":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] == "code":
            lines += [line for line in "".join(cell["source"]).splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


@pytest.mark.parametrize("path", sorted((ROOT / "lectures").glob("*.ipynb")), ids=lambda p: p.name)
def test_lectures_use_only_public_names_of_arflow(path):
    tree = ast.parse(notebook_code(path))
    modules = {}  # local alias -> arflow module
    private = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("arflow"):
            if any(part.startswith("_") for part in node.module.split(".")):
                private.append(node.module)
            for alias in node.names:
                if alias.name.startswith("_"):
                    private.append(f"{node.module}.{alias.name}")
                modules[alias.asname or alias.name] = node.module
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            private.append(f"<expr>.{node.attr} (line {node.lineno})")
    assert private == [], f"{path.name} uses private names of arflow (or of its objects): {private}"


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_imports(path):
    """Also the modules only tools run (benchmarks, recipes): a moved name fails here, not at `make bench`."""
    importlib.import_module(module_name(path))
