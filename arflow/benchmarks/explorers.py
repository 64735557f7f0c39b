"""Explorers: the redraw time of every explorer of the course, from a control change to the new PNG bytes.

Each case builds an explorer as its lecture does (the expensive part, such as sampling at a few
temperatures, happens once here and is not timed), then moves one control through successive values,
as a reader drags a slider, and times each change: the drawing function, the PNG rendering and the
replacement of the image's bytes, all of which happen in the control's observer. The table gives the
median against the target of 0.2 s. (The browser's own time to show the new PNG comes on top.)
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from unittest import mock

import torch

TARGET_SECONDS = 0.2


@dataclass
class Case:
    """One explorer of the course: ``build()`` returns its box, ``control`` is moved through ``values``."""

    lecture: str
    name: str
    build: Callable[[], object]
    control: str
    values: list
    setup: dict | None = None  # control values set (untimed) before the timed moves


def _checkpoint(name: str):
    from arflow.train.checkpoints import load_checkpoint

    return load_checkpoint(name)


def _attention_explorer():
    from arflow.data import text_corpus
    from arflow.viz.attention import attention_explorer, byte_labels

    gpt = _checkpoint("gpt_bytes")
    generated = gpt.sample(text_corpus.encode("    def wrap(self, text):\n        ")[None], 36, temperature=0.8,
                           generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, maps = gpt(generated, return_attention=True)
    return attention_explorer(maps, byte_labels(generated[0].tolist()))


def _change_of_variables_explorer():
    import ipywidgets as widgets

    from arflow.viz.explorer import explorer
    from arflow.viz.flows import plot_change_of_variables_1d

    return explorer(lambda a: plot_change_of_variables_1d(a),  # as lecture 06 calls it
                    a=widgets.FloatSlider(value=1.0, min=0.1, max=2.5, step=0.1, description="a"))


def cases(small: bool = False) -> list[Case]:
    """Every explorer of the lectures. ``small``: fewer samples for the temperature explorers (tests)."""
    from arflow.data import mnist, to_float
    from arflow.viz import attention, coupling_masks, receptive_fields, temperature, vq

    rows = list(range(2, 15))
    return [
        Case("01", "causal stack (WaveNet)", receptive_fields.causal_stack_explorer, "output", list(range(20, 47))),
        Case("02", "receptive field, masked stack, gradient check",
             lambda: receptive_fields.receptive_field_explorer((16, 16)), "row", rows),
        Case("02", "receptive field, gated, gradient check",
             lambda: receptive_fields.receptive_field_explorer((16, 16)), "row", rows,
             setup={"kind": "gated", "n_layers": 5, "kernel_size": 5}),
        Case("02", "PixelCNN samples, temperature",
             lambda: temperature.pixelcnn_temperature_explorer(_checkpoint("gated_pixelcnn_mnist"),
                                                                n=1 if small else 8,
                                                                temperatures=(0.8, 1.0) if small else
                                                                temperature.PIXELCNN_TEMPERATURES),
             "temperature", None),
        Case("03", "VQ-VAE code edit",
             lambda: vq.code_edit_explorer(_checkpoint("vqvae_mnist"), to_float(mnist("test", limit=20)[0])),
             "code", list(range(1, 30))),
        Case("04", "GPT samples, temperature",
             lambda: temperature.gpt_temperature_explorer(_checkpoint("gpt_bytes"), "def ", 40 if small else 300,
                                                          temperatures=(0.5, 1.0) if small else
                                                          temperature.GPT_TEMPERATURES),
             "temperature", None),
        Case("04", "GPT attention maps", _attention_explorer, "head", None),
        Case("05", "Sparse Transformer patterns", lambda: attention.sparse_explorer(side=12), "row",
             list(range(0, 12))),
        Case("06", "change of variables 1-D", _change_of_variables_explorer, "a", [0.5, 0.7, 0.9, 1.1, 1.3, 1.5]),
        Case("07", "RealNVP coupling masks",
             lambda: coupling_masks.coupling_mask_explorer(_checkpoint("realnvp_mnist")), "coupling", None),
        Case("07", "Glow samples, temperature",
             lambda: temperature.flow_temperature_explorer(_checkpoint("glow_mnist"), n=8 if small else 16),
             "temperature", None),
    ]


def control_values(box, case: Case) -> list:
    """The values the case moves its control through: its own list, or every option / step of the control."""
    if case.values is not None:
        return case.values
    control = box.controls[case.control]
    if hasattr(control, "options"):
        return [value for _, value in control.options] if isinstance(control.options[0], tuple) \
            else list(control.options)
    return list(range(control.min, control.max + 1, getattr(control, "step", 1) or 1))


def build(case: Case):
    """The case's explorer, built without a notebook (display is a no-op), its setup applied."""
    with mock.patch("IPython.display.display"):
        box = case.build()
    for name, value in (case.setup or {}).items():
        box.controls[name].value = value
    return box


def redraw_seconds(box, case: Case, repeat: int = 7) -> list[tuple[float, float]]:
    """(wall-clock, CPU) seconds of each of ``repeat`` changes of the case's control to a new value
    (cycling through its values). CPU time is this process's: what the redraw costs, without the time
    spent waiting for a core on a shared machine."""
    control = box.controls[case.control]
    values = [v for v in control_values(box, case) if v != control.value] or [control.value]
    times = []
    for value in itertools.islice(itertools.cycle(values), repeat):
        if value == control.value:  # a cycle of one value: step away untimed, then back
            control.value = next(v for v in control_values(box, case) if v != value)
        box.cache.clear()  # time the drawing: an explorer shows a state it has drawn before from its cache
        began, began_cpu = time.perf_counter(), time.process_time()
        control.value = value
        times.append((time.perf_counter() - began, time.process_time() - began_cpu))
        if box.error:
            raise RuntimeError(f"{case.name}: drawing failed: {box.error}")
    return times


def _load() -> str:
    try:
        import os

        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except (AttributeError, OSError):
        return "load average unknown"


def run() -> list[str]:
    import matplotlib.pyplot as plt

    torch.set_num_threads(1)
    lines = [f"{'lecture':7s}  {'explorer':48s} {'control':12s} {'wall (s)':>8s} {'max':>6s} {'CPU (s)':>8s} "
             f"{'target (s)':>10s}  ok (CPU)",
             f"(medians of 7 changes to values not drawn before; {_load()})"]
    for case in cases():
        try:
            box = build(case)
        except FileNotFoundError as err:  # a checkpoint that is not there: say so, measure the rest
            lines.append(f"{case.lecture:7s}  {case.name:48s} not measured: {err}")
            continue
        times = redraw_seconds(box, case)
        wall, cpu = (statistics.median(t[k] for t in times) for k in (0, 1))
        lines.append(f"{case.lecture:7s}  {case.name:48s} {case.control:12s} {wall:8.3f} "
                     f"{max(t[0] for t in times):6.3f} {cpu:8.3f} {TARGET_SECONDS:10.1f}  "
                     f"{'yes' if cpu <= TARGET_SECONDS else 'NO'}")
        plt.close("all")
    return lines
