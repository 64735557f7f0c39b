"""Kernel masks of masked convolutions, built by functions (drawn in the lectures, tested).

A masked convolution multiplies its kernel by a 0/1 mask so that output pixel (i, j) reads only
pixels that come *before* it in raster order (rows above; in its own row, columns to the left).

- :func:`raster_mask` is the (k, k) mask of the slides: type **A** (``include_center=False``)
  for the first layer, which must not see the pixel it predicts; type **B**
  (``include_center=True``) for later layers, whose centre holds features of the same pixel
  that already exclude its value.
- :func:`colour_mask` is the full (out, in, k, k) mask for RGB images, where the channels are
  split into three groups R, G, B and, at the centre, R sees nothing of the current pixel, G
  sees R, and B sees R and G (type A); type B also lets each group see itself.

There is deliberately no masked-convolution *layer* here: building one is the home assignment.
"""

from __future__ import annotations

import torch

MASK_TYPES = ("A", "B")
COLOURS = ("R", "G", "B")


def _check_kernel_size(kernel_size: int) -> None:
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")


def raster_mask(kernel_size: int, include_center: bool) -> torch.Tensor:
    """The (k, k) float 0/1 mask: 1 above the centre row, and left of the centre in its row.

    ``include_center`` adds the centre itself (type B); without it the mask is of type A.
    For k = 5, type A (the slide)::

        1 1 1 1 1
        1 1 1 1 1
        1 1 0 0 0
        0 0 0 0 0
        0 0 0 0 0
    """
    _check_kernel_size(kernel_size)
    c = kernel_size // 2
    mask = torch.zeros(kernel_size, kernel_size)
    mask[:c] = 1
    mask[c, :c] = 1
    if include_center:
        mask[c, c] = 1
    return mask


def mask_of_type(kernel_size: int, mask_type: str) -> torch.Tensor:
    """``raster_mask`` by the paper's names: type "A" (centre excluded) or "B" (centre included)."""
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    return raster_mask(kernel_size, include_center=mask_type == "B")


def channel_groups(n_channels: int, groups: int = 3) -> torch.Tensor:
    """The colour group (0=R, 1=G, 2=B) of each of ``n_channels`` channels: contiguous thirds."""
    if n_channels < groups or n_channels % groups:
        raise ValueError(f"n_channels must be a positive multiple of {groups}, got {n_channels}")
    return torch.arange(n_channels) * groups // n_channels


def colour_mask(kernel_size: int, in_channels: int, out_channels: int, mask_type: str) -> torch.Tensor:
    """The (out_channels, in_channels, k, k) mask of a masked convolution on RGB features.

    Off the centre it is the spatial raster mask for every channel pair. At the centre, an output
    channel of group g reads input channels of group g' < g (type "A") or g' <= g (type "B"),
    so within one pixel R comes first, then G given R, then B given R and G.
    """
    spatial = raster_mask(kernel_size, include_center=False)
    g_out = channel_groups(out_channels)[:, None]
    g_in = channel_groups(in_channels)[None, :]
    centre = (g_in < g_out) if mask_type == "A" else (g_in <= g_out)
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    mask = spatial.expand(out_channels, in_channels, kernel_size, kernel_size).clone()
    c = kernel_size // 2
    mask[:, :, c, c] = centre.float()
    return mask


def group_centre_mask(mask_type: str) -> torch.Tensor:
    """The 3 x 3 table (output colour, input colour) of what the centre tap lets through."""
    return colour_mask(1, 3, 3, mask_type)[:, :, 0, 0]
