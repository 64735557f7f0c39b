"""From discrete pixels to a continuous density: uniform dequantization and the logit transform.

A flow is a density on R^D, but pixels take 256 values. Fitting a density to the raw values
k/255 is ill-posed: putting ever narrower, ever higher bumps on the 256 values drives the
likelihood to infinity. Adding uniform noise, v = (k + u) / 256 with u ~ U[0, 1), spreads each
value over its own bin of width 1/256; then for the discrete model P(k) = integral of p over
the bin,

    log P(k) >= E_u[log p(v)] - D log 256,                     (Jensen)

so ``-log p(v) / (D ln 2) + 8`` bits/dim is an upper bound on the discrete model's bits/dim.

:class:`LogitTransform` maps [0, 1] to R, where the Gaussian base lives, with its log-det:
y = logit(a + (1 - 2a) v) (a keeps away from 0 and 1, as in RealNVP).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from arflow.units import bits_per_dim

LOG_256 = math.log(256.0)


def dequantize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Images k/255 (any shape) -> (k + u) / 256 with u ~ U[0, 1) i.i.d., in [0, 1)."""
    if not torch.is_floating_point(x):
        raise TypeError(f"x must be float k/255 (use arflow.data.to_float), got {x.dtype}")
    k = torch.round(x * 255)
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
    return (k + u) / 256


def discrete_bits_per_dim(log_prob: torch.Tensor, n_dims: int) -> torch.Tensor:
    """Continuous log-density (nats) of dequantized v = (k + u)/256, shape (B,) -> bits/dim of the
    discrete images k in 0..255 (an upper bound): the density is rescaled from [0, 1) to [0, 256)."""
    return bits_per_dim(-log_prob + n_dims * LOG_256, n_dims)


class LogitTransform(nn.Module):
    """v in [0, 1] -> y = logit(a + (1 - 2a) v) in R; ``forward -> (y, logdet)``, ``inverse``."""

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        if not 0 < alpha < 0.5:
            raise ValueError(f"alpha must lie in (0, 0.5), got {alpha}")
        self.alpha = alpha

    def forward(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.alpha + (1 - 2 * self.alpha) * v
        y = torch.log(p) - torch.log1p(-p)
        # dy/dv = (1 - 2a) / (p (1 - p)), elementwise: the Jacobian is diagonal.
        logdet = math.log(1 - 2 * self.alpha) - torch.log(p) - torch.log1p(-p)
        return y, logdet.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)
        _, logdet = self(v)
        return v, -logdet
