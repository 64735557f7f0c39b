"""The course's one nbgrader configuration, for every nbgrader run, plain or the grader's.

``nbgrader_config.py`` at the repository root holds the course's settings: its id, what is
released, plain nbgrader's time limits, the late-penalty policy. Everything that runs nbgrader
starts from that file and changes only where the course lives:

- plain nbgrader at the repository root reads it as it is (``solutions/`` is the source folder);
- a course directory's ``nbgrader_config.py`` (written by ``python -m autograder course``) loads it,
  then :func:`apply_course_layout` (nbgrader's standard folders under that directory);
- the grader's own nbgrader runs (``release``, each worker's ``autograde``, the late policy) use
  :func:`course_config`, the same two steps in memory; the hardened worker then adds only what
  makes it hardened (its limits, its preprocessors, the jailed kernel: ``autograder.worker``).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

from .paths import REPO

REPO_CONFIG = REPO / "nbgrader_config.py"
#: What nbgrader leaves out when it copies a course folder. Unlike the repository's own layout, a
#: course directory keeps ``*.pth``: a submission's weights file must reach ``autograded/``.
COURSE_IGNORE = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]


@functools.cache
def _repo_config():
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader(REPO_CONFIG.name, path=str(REPO_CONFIG.parent)).load_config()


def repo_config():
    """The course's settings as ``nbgrader_config.py`` gives them (a fresh copy: callers may change it)."""
    return copy.deepcopy(_repo_config())


def course_id() -> str:
    """The course id every gradebook of this course carries."""
    return str(_repo_config().CourseDirectory.course_id)


def apply_course_layout(config, root: str | Path, db_url: str | None = None) -> None:
    """Point ``config`` at a course directory ``root`` in nbgrader's standard layout (``source/``,
    ``release/``, ``submitted/``, ``autograded/``, ``feedback/``) with its gradebook (by default
    ``root/gradebook.db``)."""
    cd = config.CourseDirectory
    cd.root = str(root)
    cd.source_directory, cd.release_directory = "source", "release"
    cd.submitted_directory, cd.autograded_directory, cd.feedback_directory = "submitted", "autograded", "feedback"
    cd.db_url = db_url or "sqlite:///" + str(Path(root) / "gradebook.db")
    cd.ignore = list(COURSE_IGNORE)


def course_config(root: str | Path, db_url: str | None = None):
    """The course's configuration for the course directory ``root`` (see :func:`apply_course_layout`)."""
    config = repo_config()
    apply_course_layout(config, root, db_url)
    return config
