"""Split (RealNVP's factoring out): half of the channels leave the flow and are modelled as N(0, I).

``Split(rest, input_shape)`` is a flow layer like the others (:mod:`arflow.models.flow`). On
x (B, C, H, W) it keeps the first C/2 channels, ``h``, and sends them through ``rest`` (the later
layers of the flow, themselves a flow); the last C/2 channels, ``z``, are final latent variables.
The output is one flat vector per example, ``[z, rest(h)]`` (B, C H W), and the log-determinant is
``rest``'s: the split itself is a pure reindexing. Later layers work on half as many numbers (cost,
memory and parameters shrink), and the factored-out variables are the "coarse" ones decided early.
``inverse`` undoes it: the same flat vector back to x, through ``rest``'s inverse.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def output_shape(layer: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape (without batch) that ``layer`` turns ``shape`` into: its ``output_shape`` method
    if it has one (layers that change shapes), else ``shape``; a stack of layers, layer by layer."""
    if hasattr(layer, "output_shape"):
        return tuple(layer.output_shape(tuple(shape)))
    if hasattr(layer, "layers"):
        for sub in layer.layers:
            shape = output_shape(sub, shape)
    return tuple(shape)


class Split(nn.Module):
    """Factor out the last C/2 channels; the first C/2 go on through ``rest``. Inputs (B, *input_shape)."""

    label = "Split"

    def __init__(self, rest: nn.Module, input_shape: tuple[int, int, int]):
        super().__init__()
        c, h, w = input_shape
        if c % 2:
            raise ValueError(f"split needs an even number of channels, got {c} (squeeze first)")
        self.rest = rest
        self.input_shape = (c, h, w)
        self.z_shape = (c // 2, h, w)
        self.rest_shape = output_shape(rest, self.z_shape)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int]:
        return (math.prod(shape),)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> ([z, rest(h)] flat (B, C H W), log|det| of rest (B,))."""
        if x.dim() != 4:
            raise ValueError(f"split expects images (B, C, H, W), got shape {tuple(x.shape)}")
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"this split expects inputs (B, *{self.input_shape}), got shape {tuple(x.shape)}")
        c = x.shape[1] // 2
        y, logdet = self.rest(x[:, :c])
        return torch.cat([x[:, c:].flatten(1), y.flatten(1)], dim=1), logdet

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[z, rest(h)] flat (B, C H W) -> (x (B, C, H, W), log|det| of rest's inverse (B,))."""
        n_z = math.prod(self.z_shape)
        if y.dim() != 2 or y.shape[1] != 2 * n_z:
            raise ValueError(f"split's inverse expects flat latents (B, {2 * n_z}), got shape {tuple(y.shape)}")
        z = y[:, :n_z].reshape(-1, *self.z_shape)
        h, logdet = self.rest.inverse(y[:, n_z:].reshape(-1, *self.rest_shape))
        return torch.cat([h, z], dim=1), logdet
