"""Regenerate the student release ``assignments/10_ar`` from ``solutions/10_ar`` with nbgrader.

``python -m autograder release`` (``make release``). nbgrader's own GenerateAssignment app does
the work (solutions replaced by ``raise NotImplementedError()`` stubs, grade cells locked and
checksummed), in a temporary course directory with a throw-away gradebook; only the notebook is
copied into ``assignments/10_ar/``. A test regenerates it and compares (:func:`normalized`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from .extract import SOURCE

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "assignments" / "10_ar" / "pixelcnn.ipynb"


def generate(dest_dir: str | Path) -> Path:
    """Generate the release notebook into ``dest_dir``; returns its path."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    dest_dir = Path(dest_dir)
    with tempfile.TemporaryDirectory(prefix="arflow-release-") as tmp:
        root = Path(tmp)
        (root / "source" / "10_ar").mkdir(parents=True)
        shutil.copy(SOURCE, root / "source" / "10_ar" / "pixelcnn.ipynb")
        config = Config()
        config.CourseDirectory.root = str(root)
        config.CourseDirectory.source_directory = "source"
        config.CourseDirectory.release_directory = "release"
        config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
        api = NbGraderAPI(CourseDirectory(config=config), config=config)
        result = api.generate_assignment("10_ar", force=True, create=True)
        if not result["success"]:
            raise RuntimeError("nbgrader generate_assignment failed:\n"
                               + result.get("error", "") + result.get("log", ""))
        dest_dir.mkdir(parents=True, exist_ok=True)
        target = dest_dir / "pixelcnn.ipynb"
        shutil.copy(root / "release" / "10_ar" / "pixelcnn.ipynb", target)
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
    target = generate(RELEASE.parent)
    print(f"release written: {target.relative_to(REPO)}")
    return 0
