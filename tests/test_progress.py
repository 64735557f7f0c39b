"""Progress bars of the sampling loops: shown in notebooks (and when asked), never in tests or for short loops."""

from __future__ import annotations

from tqdm.auto import tqdm

from arflow.utils import in_notebook, progress


def test_no_bar_outside_a_notebook():
    assert not in_notebook()
    steps = range(500)
    assert progress(steps, "x") is steps


def test_a_bar_when_asked_and_the_loop_is_long_enough():
    bar = progress(range(500), "sampling", show=True)
    assert isinstance(bar, tqdm) and bar.total == 500 and list(bar) == list(range(500))
    assert progress(range(10), "short", show=True, min_total=50) == range(10)
    assert isinstance(progress(iter(range(5)), "unknown length", show=True), tqdm)  # no len: shown
