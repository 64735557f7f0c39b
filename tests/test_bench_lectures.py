"""The lecture timer of ``python -m arflow.bench lectures``: per-cell CPU of the kernel, and the mode it runs in."""

from __future__ import annotations

import os

import nbformat

from arflow.benchmarks.lectures import time_lecture


def test_time_lecture_measures_the_kernels_cpu_per_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# a tiny lecture"),
        nbformat.v4.new_code_cell("import os, time\nprint(os.environ.get('ARFLOW_FAST'))"),
        nbformat.v4.new_code_cell("end = time.process_time() + 0.6\nwhile time.process_time() < end:\n    pass"),
        nbformat.v4.new_code_cell("time.sleep(0.3)"),
    ]
    path = tmp_path / "99_tiny.ipynb"
    nbformat.write(nb, path)
    before = os.environ.get("ARFLOW_FAST")
    timed = time_lecture(path, fast=False)
    assert os.environ.get("ARFLOW_FAST") == before  # the caller's environment is restored
    assert [c.index for c in timed.cells] == [1, 2, 3]  # code cells only, by their notebook index
    busy, sleep = timed.cells[1], timed.cells[2]
    assert busy.cpu >= 0.5  # the busy loop's CPU is the kernel's, not ours
    assert sleep.cpu < 0.25 and sleep.wall >= 0.3  # sleeping costs wall time, not CPU
    assert timed.slowest(1)[0].index == 2
    assert timed.cpu >= busy.cpu
