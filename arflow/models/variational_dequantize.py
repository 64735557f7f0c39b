"""Variational dequantization (Ho et al., Flow++, 2019): learn the noise instead of drawing it uniformly.

Uniform dequantization (:mod:`arflow.models.dequantize`) spreads every pixel value k over its bin with
u ~ U[0, 1) and pays for it: the bound log P(k) >= E_u[log p((k + u) / 256)] - D log 256 is loose
wherever the flow's density is not flat across a bin, and a flow cannot be flat on 256 little bins
and smooth between them. A learnt noise distribution q(u | k) tightens it (Jensen again):

    log P(k) >= E_{u ~ q(u | k)}[log p((k + u) / 256) - log q(u | k)] - D log 256,

with equality when q(u | k) is the flow's own density within the bins. Uniform noise is the special
case q = 1 (log q = 0), so the same bits/dim formula covers both.

:class:`VariationalDequantizer` draws u from a logistic-normal distribution per pixel whose centre
and width a small CNN reads from the whole image k: eps ~ N(0, I), s = mu(k) + sigma(k) eps,
u = sigmoid(s). Its log-density by the change of variables eps -> s -> u (all elementwise)::

    log q(u | k) = sum [log N(eps; 0, 1) - log sigma - log u - log(1 - u)]

It starts as mu = 0, sigma = 1.6, close to uniform noise (the logit of a uniform u is a logistic
variable, whose shape a normal of that width matches), and is trained with the flow, on the same
bound. Sampling from the flow does not use it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from arflow.models.gaussian import standard_normal_log_density

INITIAL_SIGMA = 1.6


class VariationalDequantizer(nn.Module):
    """Images k/255 (B, C, H, W) -> (v = (k + u) / 256 in (0, 1), log q(u | k) in nats (B,)).

    Args: channels C of the images; hidden, the width of the CNN that reads k.
    """

    def __init__(self, channels: int = 1, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, 2 * channels, 3, padding=1),
        )
        # the output layer starts at mu = 0, sigma = INITIAL_SIGMA for every image: near-uniform noise
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        with torch.no_grad():
            self.net[-1].bias[channels:] = math.log(INITIAL_SIGMA)

    def noise(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images k/255 and standard normal eps (both (B, C, H, W)) -> (u in (0, 1), log q(u | k) (B,))."""
        mu, log_sigma = self.net(x).chunk(2, dim=1)
        s = mu + log_sigma.exp() * eps
        u = torch.sigmoid(s)
        # log u + log(1 - u) = logsigmoid(s) + logsigmoid(-s): stable for large |s|
        log_q = standard_normal_log_density(eps) - log_sigma - F.logsigmoid(s) - F.logsigmoid(-s)
        return u, log_q.flatten(1).sum(1)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.is_floating_point(x):
            raise TypeError(f"x must be float k/255 (use arflow.data.to_float), got {x.dtype}")
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
        u, log_q = self.noise(x, eps)
        # u can round to exactly 1.0 in float32 for large s; keep v inside the bin [k/256, (k+1)/256)
        u = u.clamp(max=1 - 1e-6)
        return (torch.round(x * 255) + u) / 256, log_q
