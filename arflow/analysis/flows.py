"""The change-of-variables maths the flow lectures draw: a 1-D map family and the density it
pushes, log|det J| of a 2-D map by autograd, the change of area of grid cells, and latent
interpolation of a trained flow. Computed here, drawn by :mod:`arflow.viz.flows`.
"""

from __future__ import annotations

import math

import torch


# --------------------------------------------------------------------------- 1-D change of variables
def sinh_map(a: float):
    """An invertible map family x = g(z) = sinh(a z) / a (a > 0; the identity as a -> 0) and its inverse."""
    if a <= 0:
        raise ValueError(f"a must be positive, got {a}")
    return (lambda z: torch.sinh(a * z) / a), (lambda x: torch.asinh(a * x) / a)


def density_through_map(f, x: torch.Tensor) -> torch.Tensor:
    """p_x(x) = N(f(x); 0, 1) |f'(x)| for a 1-D invertible f = g^{-1}, f' by autograd."""
    x = x.detach().clone().requires_grad_(True)
    z = f(x)
    (dz_dx,) = torch.autograd.grad(z.sum(), x)
    log_pz = -0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)
    return (log_pz.exp() * dz_dx.abs()).detach()


# --------------------------------------------------------------------------- 2-D change of area
def jacobian_log_abs_det(fn, points: torch.Tensor) -> torch.Tensor:
    """log|det J_fn| at each of the points (N, 2), by autograd (fn maps (N, 2) -> (N, 2) row-wise)."""
    points = points.detach().clone().requires_grad_(True)
    out = fn(points)
    rows = [torch.autograd.grad(out[:, i].sum(), points, retain_graph=True)[0] for i in range(2)]
    det = rows[0][:, 0] * rows[1][:, 1] - rows[0][:, 1] * rows[1][:, 0]
    return torch.log(det.abs()).detach()


def cell_area_ratios(fn, lims=(-2.0, 2.0), n: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Area of each mapped grid cell / its original area (shoelace formula on the mapped corners),
    and |det J| at the cell centres. For small cells the two agree: |det J| is the change of area."""
    ticks = torch.linspace(lims[0], lims[1], n + 1, dtype=torch.float64)
    xx, yy = torch.meshgrid(ticks, ticks, indexing="xy")
    mapped = fn(torch.stack([xx.flatten(), yy.flatten()], 1)).detach().view(n + 1, n + 1, 2)
    corners = [mapped[:-1, :-1], mapped[:-1, 1:], mapped[1:, 1:], mapped[1:, :-1]]  # a loop round each cell
    area = torch.zeros(n, n, dtype=torch.float64)
    for a, b in zip(corners, corners[1:] + corners[:1]):
        area = area + a[..., 0] * b[..., 1] - b[..., 0] * a[..., 1]
    ratio = area.abs() / 2 / (ticks[1] - ticks[0]) ** 2
    centres = (ticks[:-1] + ticks[1:]) / 2
    cx, cy = torch.meshgrid(centres, centres, indexing="xy")
    det = jacobian_log_abs_det(fn, torch.stack([cx.flatten(), cy.flatten()], 1)).exp().view(n, n)
    return ratio, det


# --------------------------------------------------------------------------- latent space
@torch.no_grad()
def interpolate(model, x_a: torch.Tensor, x_b: torch.Tensor, n: int = 8) -> torch.Tensor:
    """Images decoded from z on the straight line between the codes of x_a and x_b (1, C, H, W) each.

    The pixels are dequantized at the centre of their bins ((k + 1/2) / 256), no noise.
    """
    centre = lambda x: (torch.round(x * 255) + 0.5) / 256  # noqa: E731
    za, zb = model.encode(centre(x_a)), model.encode(centre(x_b))
    t = torch.linspace(0, 1, n).view(n, 1)
    return model.decode((1 - t) * za + t * zb).clamp(0, 1)
