"""Exercises of lectures 06 and 07: a flow layer's inverse and log-determinant.

- ``sinh_forward(z, a) -> (x, log_det)`` and ``sinh_inverse(x, a) -> z``: the elementwise map
  x = sinh(a z) / a of lecture 06 (:func:`arflow.analysis.flows.sinh_map`) on (B, D) tensors.
- ``coupling_forward(x, mask, net) -> (y, log_det)`` and ``coupling_inverse(y, mask, net) -> x``: an
  affine coupling layer (RealNVP) on (B, D) vectors, with a 0/1 mask (1 = kept) and a net returning (s, t).

Both are checked the way ``tests/test_flows_layers.py`` checks the library's layers: round trips
(inverse after forward and forward after inverse) and the log-determinant against the brute-force
log|det| of the full Jacobian computed by autograd, example by example.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from arflow.analysis.flows import sinh_map
from arflow.exercises.core import Wrong, call, evaluate, expect_tensor, report, worst
from arflow.models.coupling import vector_mask

TOLERANCE = 1e-6  # inputs are float64; this forgives a solution that computes in float32


def brute_force_log_det(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """(B,) log|det J| of ``forward`` (B, D) -> (B, D) at each row of x, from the full (D, D) Jacobian by autograd."""
    rows = []
    for b in range(x.shape[0]):
        J = torch.autograd.functional.jacobian(lambda v: forward(v[None])[0], x[b])
        rows.append(torch.linalg.slogdet(J)[1])
    return torch.stack(rows)


def _pair(out, what: str, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise Wrong(f"{what} should return a pair (output, log_det), received {type(out).__name__}")
    y, log_det = out
    expect_tensor(y, shape, f"the output of {what}")
    if isinstance(log_det, torch.Tensor) and tuple(log_det.shape) == shape:
        raise Wrong(f"log_det of {what} should hold one number per example, shape ({shape[0]},), received shape "
                    f"{shape}: sum the log-derivatives over the {shape[1]} dimensions of each example.")
    expect_tensor(log_det, (shape[0],), f"log_det of {what}")
    return y, log_det


def check_flow_layer(forward: Callable, inverse: Callable, x: torch.Tensor, reference: Callable,
                     names: tuple[str, str], log_det_hints: dict[str, torch.Tensor] | None = None) -> str:
    """The shared checks: forward against ``reference`` (the right outputs), both round trips, and the
    log-det against the brute-force Jacobian. ``log_det_hints``: name -> a typical wrong log-det, to name it."""
    f_name, i_name = names
    shape = tuple(x.shape)
    y, log_det = _pair(call(forward, x, what=f_name), f_name, shape)
    error, (b, d) = worst((y.detach() - reference(x)).abs())
    if error > TOLERANCE:
        raise Wrong(f"the output of {f_name} differs from the formula by up to {error:.3g} (example {b}, entry {d}).")

    x_back = expect_tensor(call(inverse, y.detach(), what=i_name), shape, f"the output of {i_name}")
    error, (b, d) = worst((x_back.detach() - x).abs())
    if error > TOLERANCE:
        raise Wrong(f"{i_name} is not the inverse: inverse(forward(x)) differs from x by up to {error:.3g} "
                    f"(example {b}, entry {d}).")
    y_again, _ = _pair(call(forward, x_back.detach(), what=f_name), f_name, shape)
    error, (b, d) = worst((y_again.detach() - y.detach()).abs())
    if error > TOLERANCE:
        raise Wrong(f"forward(inverse(y)) differs from y by up to {error:.3g} (example {b}, entry {d}).")

    brute = brute_force_log_det(lambda v: call(forward, v, what=f_name)[0], x)
    error, (b,) = worst((log_det.detach() - brute).abs())
    if error > TOLERANCE:
        hint = ""
        if torch.allclose(log_det.detach(), -brute, atol=TOLERANCE):
            hint = (" It has the wrong sign: you returned log|det| of the inverse map; the forward map's log-det is "
                    "the log of its own derivatives.")
        for name, wrong in (log_det_hints or {}).items():
            if torch.allclose(log_det.detach(), wrong, atol=TOLERANCE):
                hint = f" {name}"
        raise Wrong(f"log_det of {f_name} differs from log|det J| of the full Jacobian (by autograd) by up to "
                    f"{error:.3g}: example {b}, yours {log_det[b].item():.4f}, the Jacobian's {brute[b].item():.4f}."
                    f"{hint}")
    return (f"on {shape[0]} random examples of dimension {shape[1]}: outputs match the formula, inverse(forward(x)) "
            f"= x and forward(inverse(y)) = y to {TOLERANCE:g}, and log_det equals log|det J| of the full Jacobian "
            "by autograd")


# --------------------------------------------------------------------------- lecture 06: x = sinh(a z) / a
def verify_sinh_flow(forward: Callable, inverse: Callable) -> str:
    """Raise :class:`Wrong` with an explanation, or return what was verified."""
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1.5
    for a in (1.5, 0.4):
        g, _ = sinh_map(a)
        f_name = f"sinh_forward(z, a={a})"
        try:
            verified = check_flow_layer(
                lambda z, a=a: forward(z, a), lambda x, a=a: inverse(x, a), z, g, (f_name, f"sinh_inverse(x, a={a})"),
                {"The derivative of sinh(a z)/a is cosh(a z): the a inside the cosh matters.":
                 torch.log(torch.cosh(z)).sum(1)})
        except Wrong as error:
            text = str(error)
            if "is not the inverse" in text:
                text += " Solve x = sinh(a z)/a for z: multiply by a first, then asinh, then divide by a."
            raise Wrong(text) from error
    return verified + ", for a = 1.5 and 0.4."


def check_sinh_flow(forward: Callable, inverse: Callable) -> None:
    """Check the student's ``sinh_forward(z, a)`` and ``sinh_inverse(x, a)``; print the verdict."""
    report(evaluate("sinh_flow", verify_sinh_flow, forward, inverse))


# --------------------------------------------------------------------------- lecture 07: affine coupling
class ScaleShiftNet(nn.Module):
    """A small random MLP (B, D) -> (s, t), each (B, D), non-zero everywhere (also at the kept entries)."""

    def __init__(self, dim: int, hidden: int = 16, seed: int = 0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 2 * dim)).double()
        g = torch.Generator().manual_seed(seed)  # its own generator: the notebook's random state is left alone
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))

    def forward(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.net(kept).chunk(2, dim=1)
        return 0.8 * torch.tanh(s), t


def coupling_reference(x: torch.Tensor, mask: torch.Tensor, net: Callable) -> tuple[torch.Tensor, torch.Tensor]:
    """y = b x + (1 - b)(x exp(s(b x)) + t(b x)) and log|det| = sum of s over the transformed entries."""
    s, t = net(x * mask)
    return mask * x + (1 - mask) * (x * torch.exp(s) + t), ((1 - mask) * s).sum(1)


def verify_coupling(forward: Callable, inverse: Callable) -> str:
    """Raise :class:`Wrong` with an explanation, or return what was verified."""
    D = 6
    x = torch.randn(4, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for parity in (0, 1):
        mask = vector_mask(D, parity).double()
        net = ScaleShiftNet(D, seed=parity)
        s_all = net(x * mask)[0].sum(1).detach()
        f_name = f"coupling_forward(x, mask={mask.int().tolist()}, net)"
        reference = lambda x, mask=mask, net=net: coupling_reference(x, mask, net)[0].detach()  # noqa: E731
        try:
            check_flow_layer(lambda x, mask=mask, net=net: forward(x, mask, net),
                             lambda y, mask=mask, net=net: inverse(y, mask, net), x, reference,
                             (f_name, f"coupling_inverse(y, mask={mask.int().tolist()}, net)"),
                             {"You summed s over all entries, also the kept ones, where the layer does not scale: "
                              "sum only over the transformed entries, ((1 - mask) * s).sum(1).": s_all})
        except Wrong as error:
            text = str(error)
            if "differs from the formula" in text:
                unmasked = mask * x + (1 - mask) * (x * torch.exp(net(x)[0]) + net(x)[1])
                if torch.allclose(call(forward, x, mask, net, what=f_name)[0].detach(), unmasked.detach()):
                    text += (" You fed the whole x to the net: s and t must see only the kept part, net(mask * x), "
                             "or the layer cannot be inverted (and its Jacobian is not triangular).")
            elif "is not the inverse" in text:
                text += (" Recompute s and t from mask * y (equal to mask * x), keep the kept entries and undo the "
                         "rest: x = mask * y + (1 - mask) * (y - t) * exp(-s).")
            raise Wrong(text) from error
    return ("for both mask parities, on 4 random vectors of dimension 6: outputs match the coupling formula, "
            f"both round trips hold to {TOLERANCE:g}, and log_det equals log|det J| of the full Jacobian by autograd.")


def check_coupling(forward: Callable, inverse: Callable) -> None:
    """Check the student's ``coupling_forward(x, mask, net)`` and ``coupling_inverse(y, mask, net)``."""
    report(evaluate("coupling", verify_coupling, forward, inverse))
