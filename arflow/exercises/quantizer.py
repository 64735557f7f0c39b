"""Exercise of lecture 03: a vector quantizer with the straight-through estimator.

The student writes ``quantize(z_e, codebook) -> (z_q, indices)``: z_e (N, D) encoder outputs, codebook
(K, D); indices (N,) the nearest code of each row, z_q (N, D) those codes, with the gradient with
respect to z_e copied from z_q (straight through). Checked against a numpy nearest-neighbour search
(as deepmind/sonnet tests its quantizer) and by the gradient that reaches z_e.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from arflow.exercises.core import Wrong, call, evaluate, expect_tensor, report, worst

NAME = "quantizer"
N, D, K = 50, 4, 12


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder outputs and a codebook whose codes have very different norms (so that the largest inner
    product and the nearest code disagree)."""
    g = torch.Generator().manual_seed(seed)
    norms = torch.linspace(0.2, 3.0, K, dtype=torch.float64)[:, None]
    codebook = torch.randn(K, D, generator=g, dtype=torch.float64) * norms
    z_e = torch.randn(N, D, generator=g, dtype=torch.float64)
    return z_e, codebook


def nearest_numpy(z_e: np.ndarray, codebook: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: the (N,) index of the nearest code of each row and the (N, K) squared distances."""
    distances = ((z_e[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
    return distances.argmin(1), distances


def verify(fn: Callable) -> str:
    """Raise :class:`Wrong` with an explanation, or return what was verified."""
    z_e, codebook = _data()
    z_e.requires_grad_(True)
    what = "quantize(z_e, codebook)"
    out = call(fn, z_e, codebook, what=what)
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise Wrong(f"{what} should return a pair (z_q, indices), received {type(out).__name__}")
    z_q, indices = out
    expect_tensor(z_q, (N, D), f"z_q (with z_e of shape ({N}, {D}) and a codebook of shape ({K}, {D}))")
    expect_tensor(indices, (N,), "indices", dtype_kind="integer")

    want, distances = nearest_numpy(z_e.detach().numpy(), codebook.numpy())
    got = indices.detach().cpu().numpy()
    if got.min() < 0 or got.max() >= K:
        raise Wrong(f"indices should lie in [0, {K}) (one of the K codes), received values in "
                    f"[{got.min()}, {got.max()}]")
    wrong = np.nonzero(got != want)[0]
    if len(wrong):
        n = int(wrong[0])
        hint = ""
        if (got == distances.argmax(1)).all():
            hint = " You chose the farthest code of every row: argmin, not argmax, of the distances."
        elif (got == (z_e.detach().numpy() @ codebook.numpy().T).argmax(1)).all():
            hint = (" You chose the largest inner product z·c, which is not the nearest code: "
                    "||z - c||² = ||z||² - 2 z·c + ||c||², and the ||c||² term differs from code to code.")
        raise Wrong(f"{len(wrong)} of {N} rows get the wrong code. Row {n}: you chose code {got[n]} at squared "
                    f"distance {distances[n, got[n]]:.3f}, the nearest is code {want[n]} at "
                    f"{distances[n, want[n]]:.3f} (numpy brute-force search).{hint}")

    error, (n, c) = worst((z_q.detach() - codebook[want]).abs())
    if error > 1e-6:
        raise Wrong(f"z_q should equal the chosen codes codebook[indices] in the forward pass; it differs by up to "
                    f"{error:.3g} (row {n}, entry {c}).")

    upstream = torch.randn(N, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    if not z_q.requires_grad:
        raise Wrong("no gradient reaches the encoder: z_q does not depend on z_e for autograd (codebook[indices] "
                    "alone has no gradient with respect to z_e). Use the straight-through estimator: "
                    "z_q = z_e + (codebook[indices] - z_e).detach().")
    (grad,) = torch.autograd.grad((z_q * upstream).sum(), z_e, allow_unused=True)
    if grad is None or not grad.abs().max() > 0:
        raise Wrong("no gradient reaches the encoder: the gradient of a loss of z_q with respect to z_e is zero. "
                    "In z_e + (codebook[indices] - z_e) the two z_e cancel for autograd too: detach the "
                    "difference, z_e + (codebook[indices] - z_e).detach().")
    error, (n, c) = worst((grad - upstream).abs())
    if error > 1e-6:
        raise Wrong(f"the gradient reaching z_e should be the gradient at z_q, copied unchanged (straight through); "
                    f"it differs by up to {error:.3g} (row {n}, entry {c}).")
    return (f"on {N} random vectors (D={D}) and {K} codes of different norms, every index equals the numpy "
            "brute-force nearest neighbour; z_q equals the chosen codes; the gradient of a loss of z_q reaches "
            "z_e unchanged (straight-through estimator).")


def check_quantizer(fn: Callable) -> None:
    """Check the student's ``quantize(z_e, codebook)`` and print the verdict."""
    report(evaluate(NAME, verify, fn))
