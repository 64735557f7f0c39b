"""The jailed kernel nbgrader runs a submission in: its whole-notebook clock ends with the notebook.

A grading worker serves one submission after another in one process, so nothing of one
notebook's kernel (its timer, its jail, its events) may reach the next one, also when the
student's code killed the kernel (``os._exit``, a signal, the memory limit): nbclient then skips
the kernel's shutdown and only cleans up.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from autograder import jail
from autograder.jail import Limits

pytestmark = pytest.mark.skipif(not jail.jail_available(), reason="the jailed kernel needs root and bubblewrap")


@pytest.fixture
def manager():
    from autograder.jailed_kernel import JailedKernelManager

    class Recording(JailedKernelManager):
        """Remembers its socket folders: other graders on the machine make and remove their own."""

        folders: list[str] = []

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            Recording.folders.append(self._ipc_dir)

    saved = JailedKernelManager.limits, JailedKernelManager.events
    JailedKernelManager.limits = Limits(wall_seconds=4, memory_bytes=3 * 2**30)
    JailedKernelManager.events = []
    yield Recording
    JailedKernelManager.limits, JailedKernelManager.events = saved


def _run(manager, folder: Path, *sources: str) -> str:
    """Run the cells in a jailed kernel; returns how the run ended ("" or the error's name)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    client = NotebookClient(nb, timeout=60, allow_errors=True, kernel_manager_class=manager,
                            resources={"metadata": {"path": str(folder)}})
    try:
        client.execute()
    except DeadKernelError as err:
        return type(err).__name__
    return ""


def _timers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive()]


def _left_behind(folders: list[str]) -> list[str]:
    """Those of the kernels' socket folders (tmpfs mounts) that still exist or are still mounted."""
    mounts = {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}
    return [f for f in folders if Path(f).exists() or f in mounts]


def test_a_kernel_killed_by_its_notebook_leaves_no_clock_or_jail_behind(manager, tmp_path):
    before_timers = _timers()
    assert _run(manager, tmp_path, "import os\nos._exit(3)") == "DeadKernelError"
    assert _timers() == before_timers, "the whole-notebook timer of a dead kernel is still running"
    assert manager.folders and _left_behind(manager.folders) == [], "the dead kernel's socket folder was left behind"
    # Past the limit, nothing may be recorded: the next submission a served worker grades would get it.
    time.sleep(manager.limits.wall_seconds + 1)
    assert manager.events == []


def test_a_notebook_run_to_its_end_stops_its_clock(manager, tmp_path):
    assert _run(manager, tmp_path, "x = 6 * 7", "print(x)") == ""
    assert _timers() == []
    time.sleep(manager.limits.wall_seconds + 1)
    assert manager.events == []


def test_the_whole_notebook_limit_stops_a_hanging_kernel(manager, tmp_path):
    began = time.monotonic()
    assert _run(manager, tmp_path, "import time\ntime.sleep(120)") == "DeadKernelError"
    assert time.monotonic() - began < 45, "the kernel was not stopped at the whole-notebook limit"
    assert [e for e in manager.events if "ran past its time limit (4 s)" in e], manager.events
    assert _timers() == []
