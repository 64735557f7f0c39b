"""arflow.notebook: show_source, setup and the explorer work headless (no browser, no kernel)."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from arflow import notebook
from arflow.viz.primitives import smooth


def test_show_source_shows_the_real_code():
    code = notebook.show_source(smooth)
    assert "def smooth" in code.data and "running" in code.data.lower()
    assert notebook.show_source(smooth, lines=(1, 1)).data.strip().startswith("def smooth")


def test_setup_seeds_and_reports(capsys, monkeypatch):
    monkeypatch.setenv("ARFLOW_FAST", "1")
    device, fast = notebook.setup(seed=5)
    a = torch.rand(2)
    notebook.setup(seed=5)
    assert torch.equal(a, torch.rand(2)) and fast is True and device.type in ("cpu", "cuda")
    assert "fast mode" in capsys.readouterr().out


def test_explorer_draws_at_once_then_on_every_change(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kwargs: shown.append(objs))
    calls = []

    def draw(size, label):
        calls.append((size, label))
        fig, ax = plt.subplots()
        ax.set_title(f"{label} {size}")
        return fig

    size = widgets.IntSlider(value=3, min=1, max=9)
    label = widgets.Dropdown(options=["a", "b"], value="a")
    box = notebook.explorer(draw, size=size, label=label)
    assert calls[0] == (3, "a")  # the first state, drawn at once
    assert isinstance(box, widgets.VBox) and len(shown) == 1  # one box displayed: one picture
    size.value = 7
    assert calls[-1] == (7, "a")
    label.value = "b"
    assert calls[-1] == (7, "b")


def test_judge_digits_prints_one_line_or_returns_the_score(capsys):
    """Real test digits score high on the shipped classifier; the line names what is measured."""
    from arflow.data import mnist, to_float

    images, labels = mnist("test", source="embedded", limit=40)
    assert notebook.judge_digits(to_float(images), labels=labels) is None
    line = capsys.readouterr().out.strip()
    assert line.startswith("digit classifier on 40 images") and "classified as their label" in line
    score = notebook.judge_digits(to_float(images), labels=labels, show=False)
    assert score.n == 40 and score.as_labelled >= 0.9 and score.confident >= 0.8
    noise = notebook.judge_digits(torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(0)), show=False)
    assert noise.confident < 0.2 and noise.as_labelled is None
