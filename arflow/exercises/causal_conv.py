"""Exercise of lecture 01: a causal, dilated 1-D convolution written with ``F.conv1d``.

The student writes ``causal_conv1d(x, weight, dilation)``: x (B, C_in, T), weight (C_out, C_in, k) ->
(B, C_out, T), output t reading inputs t - (k-1)d, ..., t - d, t. Checked by gradients against the
analytic field (:func:`arflow.analysis.fields.causal_field_1d`) and against the library's
:class:`~arflow.models.causal_conv.CausalConv1d` on random inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from arflow.analysis.fields import causal_field_1d
from arflow.analysis.gradients import gradient_field
from arflow.exercises.core import Wrong, call, evaluate, expect_tensor, report, worst
from arflow.models.causal_conv import CausalConv1d

NAME = "causal_conv"
CASES = ((2, 1), (3, 2), (2, 4))  # (kernel size k, dilation d)
LENGTH = 16


def _positions(mask: torch.Tensor) -> list[int]:
    return mask.nonzero().flatten().tolist()


def _field_problem(fields: list[list[int]], k: int, d: int) -> str | None:
    """The most telling mismatch between the fields found by gradients (one list of inputs per output t) and the
    right ones: a future input first, then an output missing x_t, then any other, late outputs first (they have
    a whole window, no padding)."""
    T = len(fields)
    want = [_positions(causal_field_1d(T, t, k, [d])) for t in range(T)]
    for t, got in enumerate(fields):
        later = [s for s in got if s > t]
        if later:
            return (f"output t={t} depends on input s={later[0]}, which comes after it (k={k}, d={d}): it reads "
                    f"{got}, it should read {want[t]}. Pad (k-1)·d = {(k - 1) * d} zeros on the left only, none on "
                    "the right.")
    for t in reversed(range(T)):
        if t not in fields[t]:
            return (f"output t={t} does not depend on x_t itself: it reads {fields[t]}, it should read {want[t]} "
                    f"(k={k}, d={d}). The window is shifted too far into the past: pad (k-1)·d zeros, no more.")
    for t in reversed(range(T)):
        if fields[t] != want[t]:
            return (f"output t={t} reads inputs {fields[t]}, it should read {want[t]} (k={k}, d={d}): the taps must "
                    "be d steps apart (pass dilation=d to F.conv1d) and reach back (k-1)·d steps.")
    return None


def verify(fn: Callable) -> str:
    """Raise :class:`Wrong` with an explanation, or return what was verified."""
    g = torch.Generator().manual_seed(0)
    B, c_in, c_out, T = 2, 3, 4, LENGTH
    x = torch.randn(B, c_in, T, generator=g, dtype=torch.float64)
    w = torch.randn(c_out, c_in, 3, generator=g, dtype=torch.float64)
    y = call(fn, x, w, 2, what="causal_conv1d(x, weight, dilation=2)")
    expect_tensor(y, (B, c_out, T), "causal_conv1d(x, weight, dilation=2) with x (2, 3, 16) and weight (4, 3, 3)")

    for k, d in CASES:  # causality and reach, output by output, by gradients
        w1 = torch.randn(1, 1, k, generator=g, dtype=torch.float64)

        def one_channel(x, w1=w1, d=d):
            return call(fn, x, w1, d, what=f"causal_conv1d(x, weight, dilation={d})")

        fields = [_positions(gradient_field(one_channel, (1, 1, T), (0, 0, t))[0, 0]) for t in range(T)]
        problem = _field_problem(fields, k, d)
        if problem:
            raise Wrong(problem)

    for k, d in CASES:  # values against the library's layer
        layer = CausalConv1d(c_in, c_out, k, d, bias=False).double()
        w = torch.randn(c_out, c_in, k, generator=g, dtype=torch.float64)
        with torch.no_grad():
            layer.conv.weight.copy_(w)
            expected = layer(x)
        got = call(fn, x, w, d, what=f"causal_conv1d(x, weight, dilation={d})")
        expect_tensor(got, expected.shape, f"causal_conv1d(x, weight, dilation={d})")
        error, (b, o, t) = worst((got.detach() - expected).abs())
        if error > 1e-6:
            raise Wrong(f"the outputs differ from arflow's CausalConv1d by up to {error:.3g} (k={k}, d={d}, example "
                        f"{b}, channel {o}, output t={t}), although every output reads the right inputs. Check the "
                        "order of the taps: F.conv1d computes a cross-correlation, weight[..., k-1] multiplies x_t "
                        "(do not flip the kernel).")
    return (f"output shape (B, C_out, T); for (k, d) in {list(CASES)} every output t depends on exactly the inputs "
            f"t, t-d, ..., t-(k-1)d (by gradients, all {T} outputs); values equal arflow's CausalConv1d to 1e-6.")


def check_causal_conv(fn: Callable) -> None:
    """Check the student's ``causal_conv1d(x, weight, dilation)`` and print the verdict."""
    report(evaluate(NAME, verify, fn))
