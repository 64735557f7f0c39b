"""Exercises of lectures 04 and 05: the causal attention mask, and the strided sparse pattern.

- ``causal_attention(q, k, v)``: q, k, v (B, T, D) -> (B, T, D), softmax(q kᵀ / √D) v with position i
  attending to j <= i only. Checked by gradients (:func:`arflow.analysis.gradients.sequence_support`: the
  support of dy_i/dx_j must be the causal triangle) and against the formula with the library's
  :func:`~arflow.models.attention.causal_mask`.
- ``strided_pattern(n, stride)``: the (2, n, n) boolean masks of the Sparse Transformer's strided
  heads. Checked for causality, by gradients through two real decoder blocks (they must connect every
  earlier position), and against :func:`arflow.models.sparse_attention.strided_masks`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from arflow.analysis.gradients import sequence_support
from arflow.exercises.core import Wrong, call, evaluate, expect_tensor, report, worst
from arflow.models.attention import Block, causal_mask
from arflow.models.sparse_attention import strided_masks

B, T, D = 2, 7, 4


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: bool = True,
                        after_softmax: bool = False) -> torch.Tensor:
    """softmax(q kᵀ/√D) v with the causal mask; ``scale`` and ``after_softmax`` give two typical bugs, to name them."""
    scores = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale else 1.0)
    mask = causal_mask(q.shape[-2])
    if after_softmax:
        return (torch.softmax(scores, -1) * mask) @ v
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), -1) @ v


def verify_causal_attention(fn: Callable) -> str:
    """Raise :class:`Wrong` with an explanation, or return what was verified."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, T, D, generator=g, dtype=torch.float64) for _ in range(3))
    what = "causal_attention(q, k, v)"
    y = call(fn, q, k, v, what=what)
    if isinstance(y, torch.Tensor) and tuple(y.shape) == (B, T, D) and torch.isnan(y).any():
        rows = sorted({int(i) for i in torch.isnan(y).nonzero()[:, 1]})
        raise Wrong(f"the output holds NaN at positions {rows}: a row of the softmax whose scores are all -inf. "
                    "Position 0 must still attend to itself: the mask allows j <= i, the diagonal included "
                    "(torch.tril, not torch.tril(..., diagonal=-1)).")
    expect_tensor(y, (B, T, D), f"{what} with q, k, v of shape ({B}, {T}, {D})")

    C = 6
    w_q, w_k, w_v = (torch.randn(C, D, generator=g, dtype=torch.float64) for _ in range(3))
    h = torch.randn(1, T, C, generator=g, dtype=torch.float64)
    support = sequence_support(lambda h: call(fn, h @ w_q, h @ w_k, h @ w_v, what=what), h)
    later = torch.triu(support, diagonal=1).nonzero().tolist()
    if later:
        i, j = later[0]
        hint = "Set the scores of every key j > i to -inf before the softmax."
        if torch.allclose(y.detach(), attention_reference(q, k, v, after_softmax=True)):
            hint = ("You masked the weights after the softmax: later keys get weight 0, but the softmax's "
                    "denominator still sums over their scores (and the rows no longer sum to 1). " + hint)
        raise Wrong(f"output position {i} depends on input position {j}, a later one (by gradients; "
                    f"{len(later)} such pairs). {hint}")
    missing = (causal_mask(T) & ~support).nonzero().tolist()
    if missing:
        i, j = missing[0]
        raise Wrong(f"output position {i} does not depend on input position {j} <= {i} (by gradients; {len(missing)} "
                    "such pairs): position i may attend to every j <= i.")

    expected = attention_reference(q, k, v)
    error, (b, i, c) = worst((y.detach() - expected).abs())
    if error > 1e-6:
        hint = ""
        if torch.allclose(y.detach(), attention_reference(q, k, v, scale=False)):
            hint = " Your output is that of unscaled scores: divide q kᵀ by √D."
        raise Wrong(f"the causality is right, but the output differs from softmax(q kᵀ/√D) v by up to {error:.3g} "
                    f"(example {b}, position {i}, channel {c}).{hint}")
    return (f"output shape (B, T, D); by gradients, output i depends on exactly the inputs j <= i (T={T}); values "
            "equal softmax(q kᵀ/√D) v with the causal mask to 1e-6.")


def check_causal_attention(fn: Callable) -> None:
    """Check the student's ``causal_attention(q, k, v)`` and print the verdict."""
    report(evaluate("causal_attention", verify_causal_attention, fn))


# --------------------------------------------------------------------------- the strided pattern
HEADS = ("local (head 0: the previous l positions, itself included)",
         "strided (head 1: every l-th position back, itself included)")


def _pattern(fn: Callable, n: int, stride: int) -> torch.Tensor:
    what = f"strided_pattern({n}, {stride})"
    masks = call(fn, n, stride, what=what)
    if isinstance(masks, torch.Tensor) and masks.dtype != torch.bool and ((masks == 0) | (masks == 1)).all():
        masks = masks.bool()
    return expect_tensor(masks, (2, n, n), what, dtype_kind="bool")


def verify_strided_pattern(fn: Callable) -> str:
    """Raise :class:`Wrong` with an explanation, or return what was verified."""
    n, stride = 16, 4
    masks = _pattern(fn, n, stride)
    later = torch.triu(masks, diagonal=1).nonzero().tolist()
    if later:
        h, i, j = later[0]
        raise Wrong(f"head {h} lets query {i} attend to key {j}, a later position ({len(later)} such pairs): every "
                    "head must be causal (j <= i), like the dense mask it thins out.")
    empty = (~masks.any(-1)).nonzero().tolist()
    if empty:
        h, i = empty[0]
        raise Wrong(f"query {i} of head {h} attends to nothing: its softmax would be undefined (each head lets a "
                    "position attend to itself).")

    with torch.random.fork_rng(devices=[]):  # the blocks' random weights; the notebook's random state is left alone
        torch.manual_seed(0)
        blocks = torch.nn.Sequential(Block(8, 2, masks), Block(8, 2, masks)).double()
    x = torch.randn(1, n, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    support = sequence_support(blocks, x)
    missing = (causal_mask(n) & ~support).nonzero().tolist()
    if missing:
        i, j = missing[0]
        raise Wrong(f"through two decoder blocks with your two heads (n={n}, l={stride}), output {i} still does not "
                    f"depend on input {j} (by gradients; {len(missing)} such pairs): the two heads together must "
                    "connect every earlier position in two steps (go back l at a time, then step within the last l).")

    for n, stride in ((16, 4), (20, 3), (9, 9)):
        masks = _pattern(fn, n, stride)
        want = strided_masks(n, stride)
        diff = (masks != want).nonzero().tolist()
        if diff:
            h, i, j = diff[0]
            verb = "lets" if masks[h, i, j] else "does not let"
            raise Wrong(f"strided_pattern({n}, {stride}), {HEADS[h]}: it {verb} query {i} attend to key {j} "
                        f"({i - j} steps back, stride l={stride}); {len(diff)} entries differ from arflow's "
                        "strided_masks.")
    return ("both heads are causal; by gradients through two decoder blocks with your masks, every output depends "
            "on every earlier input (n=16, l=4); the masks equal arflow's strided_masks for (n, l) = (16, 4), "
            "(20, 3), (9, 9).")


def check_strided_pattern(fn: Callable) -> None:
    """Check the student's ``strided_pattern(n, stride)`` and print the verdict."""
    report(evaluate("strided_pattern", verify_strided_pattern, fn))
