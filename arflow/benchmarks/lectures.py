"""How long each lecture takes, top to bottom: ``python -m arflow.bench lectures``.

Every notebook in ``lectures/`` is executed in a fresh kernel (default mode: the environment's
``ARFLOW_FAST`` is removed unless ``ARFLOW_BENCH_FAST=1``), cell by cell, and the kernel process's
CPU seconds (user + system, threads included) and the wall time are measured per cell. One line per
lecture: CPU, wall, and the three slowest cells by CPU. Targets (issue on generation quality): at
most 2 CPU minutes per lecture and 10 for the whole course. CPU seconds are the number to compare:
wall time depends on what else the machine runs.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

LECTURES = Path(__file__).resolve().parents[2] / "lectures"
TARGET_LECTURE_CPU, TARGET_COURSE_CPU = 120.0, 600.0


@dataclass
class CellTime:
    index: int
    first_line: str
    cpu: float
    wall: float


@dataclass
class LectureTime:
    name: str
    cells: list[CellTime] = field(default_factory=list)

    @property
    def cpu(self) -> float:
        return sum(c.cpu for c in self.cells)

    @property
    def wall(self) -> float:
        return sum(c.wall for c in self.cells)

    def slowest(self, k: int = 3) -> list[CellTime]:
        return sorted(self.cells, key=lambda c: c.cpu, reverse=True)[:k]


@contextmanager
def _environment(fast: bool):
    saved = os.environ.get("ARFLOW_FAST")
    if fast:
        os.environ["ARFLOW_FAST"] = "1"
    else:
        os.environ.pop("ARFLOW_FAST", None)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("ARFLOW_FAST", None)
        else:
            os.environ["ARFLOW_FAST"] = saved


def time_lecture(path: Path, fast: bool = False, timeout: int = 3600) -> LectureTime:
    """Execute one notebook cell by cell in a fresh kernel; CPU and wall seconds of every code cell."""
    import nbformat
    import psutil
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    result = LectureTime(path.stem)
    with _environment(fast):
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        with client.setup_kernel():
            kernel = psutil.Process(client.km.provisioner.pid)

            def cpu() -> float:
                times = kernel.cpu_times()
                return times.user + times.system + times.children_user + times.children_system

            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                cpu0, wall0 = cpu(), time.perf_counter()
                client.execute_cell(cell, index)
                first = next((line for line in cell.source.splitlines() if line.strip()), "")
                result.cells.append(CellTime(index, first[:60], cpu() - cpu0, time.perf_counter() - wall0))
    return result


def run(fast: bool | None = None):
    fast = os.environ.get("ARFLOW_BENCH_FAST") == "1" if fast is None else fast
    from tqdm.auto import tqdm

    yield (f"mode: {'CI (ARFLOW_FAST=1)' if fast else 'default'}; targets: {TARGET_LECTURE_CPU:.0f} CPU-s per "
           f"lecture, {TARGET_COURSE_CPU:.0f} for the course")
    yield f"{'lecture':40s} {'CPU (s)':>8s} {'wall (s)':>9s}  slowest cells by CPU (index: s, first line)"
    total_cpu = total_wall = 0.0
    for path in tqdm(sorted(LECTURES.glob("[0-9][0-9]_*.ipynb")), desc="lectures", leave=False):
        timed = time_lecture(path, fast)
        total_cpu, total_wall = total_cpu + timed.cpu, total_wall + timed.wall
        flag = "" if timed.cpu <= TARGET_LECTURE_CPU else "  (over target)"
        yield f"{timed.name:40s} {timed.cpu:>8.1f} {timed.wall:>9.1f}{flag}"
        for cell in timed.slowest():
            yield f"{'':40s} {cell.cpu:>8.1f} {cell.wall:>9.1f}    cell {cell.index}: {cell.first_line}"
    flag = "" if total_cpu <= TARGET_COURSE_CPU else "  (over target)"
    yield f"{'whole course':40s} {total_cpu:>8.1f} {total_wall:>9.1f}{flag}"
