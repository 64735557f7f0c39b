"""Helpers for notebooks: show library source, a standard first cell, explorers."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable

import torch

from arflow.utils import fast_mode, pick_device, seed_everything


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


def explorer(draw: Callable[..., object], static: bool = True, **controls):
    """An interactive explorer over ``draw(**values) -> matplotlib Figure``.

    ``controls`` maps each keyword of ``draw`` to an ipywidgets control. The drawing function
    is called once statically with the controls' initial values and its figure displayed, so
    the notebook reads well where no kernel runs; then the widgets are displayed, and every
    change redraws into an output area.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    initial = {name: control.value for name, control in controls.items()}
    if static:
        figure = draw(**initial)
        display(figure)
        plt.close(figure)
    output = widgets.Output()

    def redraw(**values):
        with output:
            output.clear_output(wait=True)
            figure = draw(**values)
            display(figure)
            plt.close(figure)

    widgets.interactive_output(redraw, controls)
    box = widgets.VBox([widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap")),
                        output])
    display(box)
    return box
