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


class InvConv1x1(nn.Module):
    """Plain parameterisation: W is the parameter. Inputs (B, c, H, W)."""

    def __init__(self, channels: int, generator: torch.Generator | None = None):
        super().__init__()
        self.channels = channels
        self.weight = nn.Parameter(random_rotation(channels, generator))

    @classmethod
    def from_weight(cls, weight: torch.Tensor) -> InvConv1x1:
        weight = _check_weight(weight)
        layer = cls(weight.shape[0])
        layer.weight = nn.Parameter(weight.detach().clone())  # keeps W's dtype (float64 in tests)
        return layer

    def matrix(self) -> torch.Tensor:
        return self.weight

    def log_abs_det(self) -> torch.Tensor:
        return torch.linalg.slogdet(self.weight)[1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_images(x, self.channels)
        w = self.matrix()
        y = F.conv2d(x, w.view(self.channels, self.channels, 1, 1))
        return y, (x.shape[2] * x.shape[3] * self.log_abs_det()).expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        _check_images(y, self.channels)
        w_inv = torch.linalg.inv(self.matrix())
        return F.conv2d(y, w_inv.view(self.channels, self.channels, 1, 1))


class InvConv1x1LU(InvConv1x1):
    """LU parameterisation W = P L (U + diag(s)); same interface as :class:`InvConv1x1`."""

    def __init__(self, channels: int, generator: torch.Generator | None = None):
        nn.Module.__init__(self)
        self.channels = channels
        self._set_from(random_rotation(channels, generator))

    def _set_from(self, weight: torch.Tensor) -> None:
        p, lower, upper = torch.linalg.lu(weight.detach())
        s = torch.diagonal(upper)
        c, dtype = self.channels, weight.dtype
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(c, c, dtype=dtype), -1))
        self.register_buffer("eye", torch.eye(c, dtype=dtype))
        self.lower = nn.Parameter(lower * self.lower_mask)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))

    @classmethod
    def from_weight(cls, weight: torch.Tensor) -> InvConv1x1LU:
        weight = _check_weight(weight)
        layer = cls(weight.shape[0])
        for name in ("perm", "sign_s", "lower_mask", "eye"):
            delattr(layer, name)
        for name in ("lower", "upper", "log_s"):
            delattr(layer, name)
        layer._set_from(weight)
        return layer

    def matrix(self) -> torch.Tensor:
        # The masks keep L unit lower triangular and U strictly upper triangular whatever the optimiser does.
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.perm @ lower @ upper

    def log_abs_det(self) -> torch.Tensor:
        return self.log_s.sum()
