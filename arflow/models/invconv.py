"""The invertible 1x1 convolution (Glow): a learnt c x c matrix W applied at every pixel.

    y[:, :, i, j] = W @ x[:, :, i, j]        log|det dy/dx| = H * W_img * log|det W|

It generalises the fixed channel permutations (reversals) between coupling layers: the flow
learns how to mix channels. W starts as a random rotation (orthogonal, log|det| = 0).

Two parameterisations:
- :class:`InvConv1x1`: W itself; log|det W| by ``torch.linalg.slogdet``, O(c^3).
- :class:`InvConv1x1LU`: W = P L (U + diag(s)), P a fixed permutation, L unit lower triangular,
  U strictly upper triangular, s a vector stored as sign(s) (fixed) and log|s| (learnt);
  log|det W| = sum(log|s|), O(c).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def random_rotation(channels: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random orthogonal (c, c) matrix (QR of a Gaussian matrix), so |det| = 1."""
    if channels < 1:
        raise ValueError(f"channels must be positive, got {channels}")
    q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=generator))
    return q


def _check_images(x: torch.Tensor, channels: int) -> None:
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"a 1x1 convolution over {channels} channels expects (B, {channels}, H, W), "
                         f"got shape {tuple(x.shape)}")


def _check_weight(weight: torch.Tensor) -> torch.Tensor:
    weight = torch.as_tensor(weight)
    if weight.dim() != 2 or weight.shape[0] != weight.shape[1]:
        raise ValueError(f"W must be a square (c, c) matrix, got shape {tuple(weight.shape)}")
    return weight


class InvertibleConv1x1(nn.Module):
    """A 1x1 convolution y = W x at every pixel, inputs (B, c, H, W); subclasses parameterise W
    (``matrix()``) and compute log|det W| (``log_abs_det()``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels

    def matrix(self) -> torch.Tensor:
        raise NotImplementedError

    def log_abs_det(self) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def from_weight(cls, weight: torch.Tensor):
        """A layer whose matrix is ``weight`` (c, c), invertible; its dtype is kept (float64 in tests)."""
        weight = _check_weight(weight)
        return cls(weight.shape[0], weight=weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_images(x, self.channels)
        w = self.matrix()
        y = F.conv2d(x, w.view(self.channels, self.channels, 1, 1))
        return y, (x.shape[2] * x.shape[3] * self.log_abs_det()).expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_images(y, self.channels)
        w_inv = torch.linalg.inv(self.matrix())
        x = F.conv2d(y, w_inv.view(self.channels, self.channels, 1, 1))
        return x, (-y.shape[2] * y.shape[3] * self.log_abs_det()).expand(y.shape[0])


class InvConv1x1(InvertibleConv1x1):
    """Plain parameterisation: W is the parameter (a random rotation, or ``weight``)."""

    def __init__(self, channels: int, generator: torch.Generator | None = None, weight: torch.Tensor | None = None):
        super().__init__(channels)
        start = random_rotation(channels, generator) if weight is None else weight.detach().clone()
        self.weight = nn.Parameter(start)

    def matrix(self) -> torch.Tensor:
        return self.weight

    def log_abs_det(self) -> torch.Tensor:
        return torch.linalg.slogdet(self.weight)[1]


class InvConv1x1LU(InvertibleConv1x1):
    """LU parameterisation W = P L (U + diag(s)) (a random rotation, or ``weight``, factorised);
    log|det W| = sum log|s|, in O(c) instead of O(c^3)."""

    def __init__(self, channels: int, generator: torch.Generator | None = None, weight: torch.Tensor | None = None):
        super().__init__(channels)
        start = random_rotation(channels, generator) if weight is None else weight
        p, lower, upper = torch.linalg.lu(start.detach())
        s = torch.diagonal(upper)
        dtype = start.dtype
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels, dtype=dtype), -1))
        self.register_buffer("eye", torch.eye(channels, dtype=dtype))
        self.lower = nn.Parameter(lower * self.lower_mask)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))

    def factors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(P, L, U + diag(s)), each (c, c): the permutation, the unit lower triangular factor and
        the upper triangular one, with W = P L (U + diag(s))."""
        # The masks keep L unit lower triangular and U strictly upper triangular whatever the optimiser does.
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.perm, lower, upper

    def matrix(self) -> torch.Tensor:
        perm, lower, upper = self.factors()
        return perm @ lower @ upper

    def log_abs_det(self) -> torch.Tensor:
        return self.log_s.sum()
