"""Squeeze (RealNVP): trade space for channels, (B, C, H, W) -> (B, 4C, H/2, W/2), log-det 0.

Each 2x2 block of every channel becomes 4 channels of one pixel: output channel ``4c + 2i + j``
at (r, q) holds input channel ``c`` at (2r + i, 2q + j). It only moves numbers around, so it is
invertible and volume preserving. It lets later coupling layers see (and mix) pixels that were
far apart, and channel-wise masks split a 2x2 neighbourhood.
"""

from __future__ import annotations

import torch
from torch import nn


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, 4C, H/2, W/2). H and W must be even."""
    if x.dim() != 4:
        raise ValueError(f"squeeze expects images (B, C, H, W), got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"squeeze needs an even height and width, got {h}x{w}; pad or crop the images first")
    x = x.reshape(b, c, h // 2, 2, w // 2, 2)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(y: torch.Tensor) -> torch.Tensor:
    """(B, 4C, H, W) -> (B, C, 2H, 2W); the inverse of :func:`squeeze`."""
    if y.dim() != 4:
        raise ValueError(f"unsqueeze expects images (B, C, H, W), got shape {tuple(y.shape)}")
    b, c4, h, w = y.shape
    if c4 % 4:
        raise ValueError(f"unsqueeze needs a number of channels divisible by 4, got {c4}")
    y = y.reshape(b, c4 // 4, 2, 2, h, w)
    return y.permute(0, 1, 4, 2, 5, 3).reshape(b, c4 // 4, 2 * h, 2 * w)


class Squeeze(nn.Module):
    """:func:`squeeze` as a flow layer: ``forward(x) -> (y, logdet = 0)``, ``inverse(y) -> x``."""

    def output_shape(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        c, h, w = shape
        if h % 2 or w % 2:
            raise ValueError(f"cannot squeeze a {h}x{w} tensor (odd size); change input_shape")
        return 4 * c, h // 2, w // 2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return squeeze(x), x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return unsqueeze(y), y.new_zeros(y.shape[0])
