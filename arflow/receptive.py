"""Receptive fields found by gradients: which inputs can change a chosen output.

An output depends on an input exactly when some path of non-zero weights joins them; with
random inputs and weights the gradient of that output with respect to the input is then
non-zero almost surely, so ``grad != 0`` draws the receptive field. Tests compare it with
the field computed analytically from the masks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch


def gradient_field(fn: Callable[[torch.Tensor], torch.Tensor], input_shape: Sequence[int],
                   output_index: Sequence[int | slice], seed: int = 0, double: bool = True) -> torch.Tensor:
    """Boolean tensor of ``input_shape``: True where ``fn(x)[output_index]`` has a non-zero gradient.

    ``output_index`` indexes the output (for example ``(0, slice(None), i, j)`` for all
    channels of pixel (i, j) of the first image). Computed in float64 so that tiny but real
    dependencies are not lost to rounding.
    """
    generator = torch.Generator().manual_seed(seed)
    dtype = torch.float64 if double else torch.float32
    x = torch.rand(tuple(input_shape), generator=generator, dtype=dtype).requires_grad_(True)
    out = fn(x)
    selected = out[tuple(output_index)]
    if selected.numel() == 0:
        raise IndexError(f"output_index {output_index} selects nothing from an output of shape {tuple(out.shape)}")
    (grad,) = torch.autograd.grad(selected.sum(), x, allow_unused=True)
    if grad is None:
        return torch.zeros(tuple(input_shape), dtype=torch.bool)
    return grad != 0


def pixel_field(model: torch.nn.Module, image_size: tuple[int, int], pixel: tuple[int, int],
                in_channels: int = 1) -> torch.Tensor:
    """The (H, W) boolean receptive field of output pixel (i, j) of an image model (B, C, H, W) -> (B, K, H, W)."""
    H, W = image_size
    i, j = pixel
    if not (0 <= i < H and 0 <= j < W):
        raise IndexError(f"pixel {pixel} is outside an image of size {image_size}")
    model = copy.deepcopy(model).double()  # the caller's model keeps its dtype
    field = gradient_field(model, (1, in_channels, H, W), (0, slice(None), i, j))
    return field[0].any(dim=0)
