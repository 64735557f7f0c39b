"""Coupling layers (RealNVP, Dinh et al. 2016): affine and additive, partitioned by a binary mask.

With a binary mask ``b`` (1 = kept, the conditioning half x_{1:d}; 0 = transformed)::

    y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x))
    log|det dy/dx| = sum over the transformed entries of s(b * x)

The Jacobian is triangular (after reordering the entries so that kept ones come first): the
kept entries are copied, and each transformed entry depends on itself only through the scale
exp(s). So the log-determinant costs a sum, whatever the networks ``s`` and ``t`` are.
The inverse needs ``s`` and ``t`` only at ``b * y = b * x``, never their inverses::

    x = b * y + (1 - b) * (y - t(b * y)) * exp(-s(b * y))

Every flow layer of the course has the same interface: ``forward(x) -> (y, logdet)`` with
``logdet`` of shape (B,), and ``inverse(y) -> x``.
"""

from __future__ import annotations

import torch
from torch import nn


def checkerboard_mask(height: int, width: int, parity: int = 0) -> torch.Tensor:
    """A checkerboard of 0/1 of shape (1, H, W): 1 where (row + col) % 2 == parity.

    Shape (1, H, W) broadcasts over channels: every channel gets the same pattern.
    """
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    if parity not in (0, 1):
        raise ValueError(f"parity must be 0 or 1, got {parity}")
    rows = torch.arange(height)[:, None]
    cols = torch.arange(width)[None, :]
    return ((rows + cols) % 2 == parity).float()[None]


def channel_mask(channels: int, parity: int = 0) -> torch.Tensor:
    """A channel-wise 0/1 mask of shape (C, 1, 1): the first half of the channels is 1 (parity 0),
    or the second half (parity 1). Broadcasts over height and width."""
    if channels < 2 or channels % 2:
        raise ValueError(f"a channel-wise mask needs an even number of channels >= 2, got {channels}")
    if parity not in (0, 1):
        raise ValueError(f"parity must be 0 or 1, got {parity}")
    first = torch.arange(channels) < channels // 2
    return (first if parity == 0 else ~first).float()[:, None, None]


def vector_mask(dim: int, parity: int = 0) -> torch.Tensor:
    """Alternating 0/1 mask of shape (D,) for vectors: 1 at even indices (parity 0) or odd ones."""
    if dim < 2:
        raise ValueError(f"a vector mask needs dim >= 2, got {dim}")
    return (torch.arange(dim) % 2 == parity).float()


class CouplingConvNet(nn.Module):
    """The s and t networks of an image coupling layer, as one small CNN.

    (B, C, H, W) -> (B, 2C, H, W): the first C output channels are the raw scale, the last C the
    translation. The last convolution starts at zero so that the layer starts as the identity
    (a deep flow of identities trains stably).
    """

    def __init__(self, channels: int, hidden: int = 32, zero_init: bool = True):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
            nn.Conv2d(hidden, 2 * channels, 3, padding=1),
        )
        if zero_init:
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CouplingMLP(nn.Module):
    """The s and t networks of a vector coupling layer: (B, D) -> (B, 2D), last layer zero at init."""

    def __init__(self, dim: int, hidden: int = 64, zero_init: bool = True):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * dim))
        if zero_init:
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Coupling(nn.Module):
    """Affine (``affine=True``, RealNVP) or additive (``affine=False``, NICE) coupling layer.

    Args:
        mask: 0/1 tensor shaped like one example, or broadcastable to it: (C, H, W), (1, H, W),
            (C, 1, 1) for images, (D,) for vectors. 1 marks the entries that are kept.
        net: module mapping the masked input (B, *shape) to (B, 2 * shape[0], ...): raw scale
            and translation stacked along dimension 1.
        affine: scale and translate (log-det = sum of s) or only translate (log-det = 0).

    The raw scale goes through ``scale * tanh``: bounded, so that exp(s) cannot explode early in
    training (Dinh et al. use the same trick), with a learnt per-channel ``scale``.
    """

    def __init__(self, mask: torch.Tensor, net: nn.Module, affine: bool = True):
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.float32)
        if mask.dim() == 0 or not torch.all((mask == 0) | (mask == 1)):
            raise ValueError("mask must be a tensor of 0s and 1s with one dimension per axis of an example")
        self.register_buffer("mask", mask)
        self.net = net
        self.affine = affine
        spatial = mask.dim() == 3 and mask.shape[1] * mask.shape[2] > 1
        pattern = "vector" if mask.dim() == 1 else "checkerboard" if spatial else "channel-wise"
        self.label = f"{'affine' if affine else 'additive'} coupling, {pattern} mask"  # for architecture plots
        # One learnt scale per channel (first axis), broadcast over the other axes.
        self.scale = nn.Parameter(torch.ones((mask.shape[0],) + (1,) * (mask.dim() - 1)))

    def _check(self, x: torch.Tensor) -> None:
        shape, mshape = tuple(x.shape[1:]), tuple(self.mask.shape)
        if len(shape) != len(mshape) or any(m not in (1, s) for m, s in zip(mshape, shape)):
            raise ValueError(f"mask of shape {mshape} does not fit inputs of shape (B, *{shape}); expected a "
                             f"mask with {len(shape)} dimensions, each equal to the input's or 1")

    def scale_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The log-scale s and the shift t (each shaped like ``kept``) computed from the kept part."""
        out = self.net(kept)
        channels = kept.shape[1]
        if out.shape[1] != 2 * channels:
            raise ValueError(f"net must return 2 * {channels} = {2 * channels} channels (scale and shift), "
                             f"got {out.shape[1]}")
        raw_s, t = out[:, :channels], out[:, channels:]
        free = 1 - self.mask
        s = self.scale * torch.tanh(raw_s) * free if self.affine else torch.zeros_like(t)
        return s, t * free  # kept entries are neither scaled nor shifted

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, *shape) -> y (B, *shape), log|det dy/dx| (B,)."""
        self._check(x)
        kept = x * self.mask
        s, t = self.scale_shift(kept)
        y = kept + (1 - self.mask) * (x * torch.exp(s) + t)
        return y, s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """y (B, *shape) -> x (B, *shape) and log|det dx/dy| (B,) = -sum of s."""
        self._check(y)
        kept = y * self.mask
        s, t = self.scale_shift(kept)
        return kept + (1 - self.mask) * (y - t) * torch.exp(-s), -s.flatten(1).sum(1)
