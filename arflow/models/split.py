"""Split (RealNVP's factoring out): half of the channels leave the flow and are modelled as N(0, I).

``forward(x)`` with x (B, C, H, W) returns ``(h, z)``: ``h`` = the first C/2 channels, which go on
through the next layers, and ``z`` = the last C/2 channels, which are final latent variables.
Later layers work on half as many numbers (cost, memory and parameters shrink), and the
factored-out variables are the "coarse" ones decided early. The split is a pure reindexing:
its log-det is 0 and ``inverse(h, z)`` concatenates.
"""

from __future__ import annotations

import torch
from torch import nn


class Split(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> kept (B, C/2, H, W), factored out (B, C/2, H, W)."""
        if x.dim() != 4:
            raise ValueError(f"split expects images (B, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] % 2:
            raise ValueError(f"split needs an even number of channels, got {x.shape[1]} (squeeze first)")
        c = x.shape[1] // 2
        return x[:, :c], x[:, c:]

    def inverse(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if h.shape != z.shape:
            raise ValueError(f"split's inverse needs two halves of the same shape, got {tuple(h.shape)} "
                             f"and {tuple(z.shape)}")
        return torch.cat([h, z], dim=1)
