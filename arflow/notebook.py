"""The notebooks' own helpers: show library source, the standard first cell, and (re-exported from
:mod:`arflow.viz.explorer`) the explorer that wraps a drawing function in widgets."""

from __future__ import annotations

import inspect
import textwrap

import torch

from arflow.utils import fast_mode, pick_device, seed_everything
from arflow.viz.explorer import explorer

__all__ = ["explorer", "setup", "show_source"]


def show_source(obj, lines: tuple[int, int] | None = None):
    """Display the source of a class or function of ``arflow`` with syntax highlighting.

    Notebooks show the real model code this way instead of pasting a copy of it.
    ``lines``: (first, last) line numbers within the object's source, 1-based, inclusive.
    """
    from IPython.display import Code

    source = textwrap.dedent(inspect.getsource(obj))
    if lines is not None:
        first, last = lines
        source = "\n".join(source.splitlines()[first - 1:last])
    return Code(source, language="python")


def setup(seed: int = 0, threads: int | None = None) -> tuple[torch.device, bool]:
    """Seed everything, pick the device, and report the mode. Returns ``(device, fast)``."""
    seed_everything(seed)
    if threads is not None:
        torch.set_num_threads(threads)
    device, fast = pick_device(), fast_mode()
    print(f"device: {device}; fast mode (ARFLOW_FAST): {fast}; torch threads: {torch.get_num_threads()}")
    return device, fast


def show_training(trained, title: str = "training", ylabel: str = "loss (nats per dimension)",
                  eval_label: str = "test", window: int = 20, train_scale: float = 1.0,
                  eval_ylabel: str | None = None):
    """Print a model's one-line summary and draw its training curve from its saved history.

    ``trained`` is what :func:`arflow.train.checkpoints.load_or_train` returns, shipped or trained
    now: the same call in both cases. A checkpoint saved without a history says so instead of a curve.
    Units as in :func:`arflow.viz.primitives.plot_history`: the training loss times ``train_scale``
    is drawn in the unit ``ylabel`` names; a test metric of another quantity gets its own axis
    (``eval_ylabel``).
    """
    import matplotlib.pyplot as plt

    from arflow.viz.primitives import plot_history

    print(trained.summary())
    if not trained.history.train and not trained.history.eval:
        print(f"(no training curve saved with this checkpoint; `{trained.manifest['command']}` saves one)")
        return None
    figure = plot_history(trained.history, title=title, ylabel=ylabel, eval_label=eval_label, window=window,
                          train_scale=train_scale, eval_ylabel=eval_ylabel)
    plt.show()
    return figure


def judge_digits(images: torch.Tensor, labels=None, show: bool = True):
    """Score generated digits (N, 1, 28, 28) in [0, 1] with the shipped digit classifier and print one line.

    ``labels`` (N,): the class or caption each image was generated from, if any. With ``show`` the
    line is printed under the figure above it and nothing is returned (so that a cell ending with
    this call shows the line only); with ``show=False`` it returns the
    :class:`~arflow.evaluate.samples.SampleScore`.
    """
    from arflow.evaluate.samples import score_digits
    from arflow.train.checkpoints import digit_classifier

    score = score_digits(digit_classifier(), images.cpu(), labels)
    if not show:
        return score
    print(score.summary())
    return None
