"""Regenerate the student releases ``assignments/<name>`` from ``solutions/<name>`` with nbgrader.

``python -m autograder release [--assignment NAME ...]`` (``make release``; every assignment by
default). nbgrader's own GenerateAssignment app does the work (solutions replaced by stubs,
hidden tests removed, grade cells locked and checksummed), in a temporary course directory with
a throw-away gradebook; only the notebook is copied into ``assignments/<name>/``. A test
regenerates each release and compares (:func:`normalized`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from .assignment import REPO, load, names


def generate(name: str, dest_dir: str | Path) -> Path:
    """Generate the release notebook of assignment ``name`` into ``dest_dir``; returns its path."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from .nbconfig import course_config

    assignment = load(name)
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    dest_dir = Path(dest_dir)
    with tempfile.TemporaryDirectory(prefix="arflow-release-") as tmp:
        root = Path(tmp)
        (root / "source" / name).mkdir(parents=True)
        shutil.copy(assignment.source, root / "source" / name / assignment.source.name)
        config = course_config(root)  # the course's configuration, rooted at this scratch folder
        api = NbGraderAPI(CourseDirectory(config=config), config=config)
        result = api.generate_assignment(name, force=True, create=True)
        if not result["success"]:
            raise RuntimeError("nbgrader generate_assignment failed:\n"
                               + result.get("error", "") + result.get("log", ""))
        dest_dir.mkdir(parents=True, exist_ok=True)
        target = dest_dir / assignment.source.name
        shutil.copy(root / "release" / name / assignment.source.name, target)
    return target


def normalized(path: str | Path) -> str:
    """The notebook as canonical JSON without volatile metadata (for comparing two releases)."""
    nb = nbformat.read(str(path), as_version=4)
    nb.metadata.pop("language_info", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return json.dumps(nb, sort_keys=True, indent=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder release", description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", action="append", choices=names(),
                        help="the assignment to release (repeatable; default: every one)")
    args = parser.parse_args(argv)
    for name in args.assignment or names():
        target = generate(name, load(name).release.parent)
        print(f"release written: {target.relative_to(REPO)}")
    return 0
