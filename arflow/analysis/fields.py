"""Receptive fields computed analytically from kernels and masks (:mod:`arflow.analysis.gradients`
finds them by gradients, to compare).

A layer's output at position p reads its input at p + o for every offset o its kernel lets
through. Going *backwards* from one output, the set of positions it depends on is therefore
dilated by the (reflected) footprint of each layer in turn; after the first layer it is the
receptive field. Everything here is exact set arithmetic (done with convolutions of 0/1 maps),
so it can be compared pixel for pixel with fields found by gradients (:mod:`arflow.analysis.gradients`).

- 1-D: :func:`causal_field_1d` and :func:`causal_layers_1d` (which units of each layer of a
  stack of (dilated) causal convolutions reach one output: the WaveNet diagram).
- 2-D plain masked stacks: :func:`masked_stack_field`, :func:`masked_stack_layers` (the blind
  spot); :func:`arflow.analysis.gradients.masked_stack_gradient_field` finds the same by gradients.
- Gated PixelCNN: :func:`gated_field` (the parts reached by each stack).
- Colour: :func:`colour_field` (which colour channels of which pixels reach one output channel).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from arflow.analysis.masks import colour_mask, mask_of_type

# ----------------------------------------------------------------------------- 1-D


def causal_layers_1d(length: int, output: int, kernel_size: int, dilations: Sequence[int]) -> list[torch.Tensor]:
    """Which units of each layer reach output ``output`` of a causal stack on a sequence of ``length``.

    Layer l (dilation d) computes unit t from units t - d (k-1), ..., t - d, t of layer l - 1.
    Returns a list of (length,) boolean tensors: index 0 is the input, index L the output layer
    (only ``output`` set). A causal stack sees ``output`` itself; the model's prediction of x_t
    is read at output t - 1 (inputs and targets are shifted copies of one sequence).
    """
    if not 0 <= output < length:
        raise IndexError(f"output {output} is outside a sequence of length {length}")
    if kernel_size < 1 or any(d < 1 for d in dilations):
        raise ValueError(f"kernel_size and dilations must be >= 1, got {kernel_size} and {list(dilations)}")
    reach = torch.zeros(length, dtype=torch.bool)
    reach[output] = True
    layers = [reach]
    for d in reversed(list(dilations)):
        below = torch.zeros(length, dtype=torch.bool)
        for tap in range(kernel_size):
            shift = tap * d
            below[: length - shift] |= reach[shift:] if shift else reach
        reach = below
        layers.append(reach)
    return layers[::-1]


def causal_field_1d(length: int, output: int, kernel_size: int, dilations: Sequence[int]) -> torch.Tensor:
    """The (length,) boolean receptive field of one output of a causal stack (see :func:`causal_layers_1d`)."""
    return causal_layers_1d(length, output, kernel_size, dilations)[0]


# ----------------------------------------------------------------------------- 2-D helpers


def _dilate(reach: torch.Tensor, footprint: torch.Tensor) -> torch.Tensor:
    """Positions q with q + o in ``reach`` for some offset o of ``footprint`` ((kh, kw), centred).

    ``reach`` (..., H, W) bool; out-of-image positions are dropped (they are zero padding).
    """
    kh, kw = footprint.shape
    src = reach.reshape(-1, 1, *reach.shape[-2:]).double()
    # F.conv2d correlates: out[y] = sum_a w[a] in[y + a - c]; we need in[y - (a - c)]: flip the kernel
    weight = footprint.flip(0, 1).double()[None, None]
    out = F.conv2d(src, weight, padding=(kh // 2, kw // 2))
    return (out > 0).reshape(reach.shape)


def _start(image_size: tuple[int, int], pixel: tuple[int, int]) -> torch.Tensor:
    H, W = image_size
    i, j = pixel
    if not (0 <= i < H and 0 <= j < W):
        raise IndexError(f"pixel {pixel} is outside an image of size {image_size}")
    reach = torch.zeros(H, W, dtype=torch.bool)
    reach[i, j] = True
    return reach


# ----------------------------------------------------------------------------- plain masked stacks


def masked_stack_layers(image_size: tuple[int, int], pixel: tuple[int, int], n_layers: int, kernel_size: int,
                        first_type: str = "A", later_type: str = "B") -> list[torch.Tensor]:
    """Which positions of each layer of a plain masked stack reach output ``pixel``.

    Layer 1 uses a ``first_type`` mask, the others ``later_type``. Returns n_layers + 1 boolean
    (H, W) maps: index 0 the input image (the receptive field), index n_layers the output.
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    masks = [mask_of_type(kernel_size, first_type)] + [mask_of_type(kernel_size, later_type)] * (n_layers - 1)
    reach = _start(image_size, pixel)
    layers = [reach]
    for mask in reversed(masks):
        reach = _dilate(reach, mask)
        layers.append(reach)
    return layers[::-1]


def masked_stack_field(image_size: tuple[int, int], pixel: tuple[int, int], n_layers: int, kernel_size: int,
                       first_type: str = "A", later_type: str = "B") -> torch.Tensor:
    """The (H, W) receptive field of ``pixel`` through a plain stack of masked convolutions."""
    return masked_stack_layers(image_size, pixel, n_layers, kernel_size, first_type, later_type)[0]


def blind_spot(image_size: tuple[int, int], pixel: tuple[int, int], field: torch.Tensor) -> torch.Tensor:
    """(H, W) bool: the blind spot of ``field``, pixels of the past it misses up and to the right.

    Those are the rows above ``pixel`` (down from the field's top row), right of its column and
    up to the rightmost column the field reaches: a model as deep sees further right in higher
    rows, so missing them is a hole in the field, not a limit of depth. (Pixels missed far left
    or above the top row are limits of depth, not counted.)
    """
    i, j = pixel
    missed = raster_past(image_size, pixel) & ~field
    spot = torch.zeros_like(missed)
    if field.any():
        seen = torch.nonzero(field)
        top, right = int(seen[:, 0].min()), int(seen[:, 1].max())
        spot[top:i, j + 1:right + 1] = missed[top:i, j + 1:right + 1]
    return spot


def raster_past(image_size: tuple[int, int], pixel: tuple[int, int]) -> torch.Tensor:
    """(H, W) bool: every pixel before ``pixel`` in raster order (what an ideal model may see)."""
    past = torch.zeros(image_size, dtype=torch.bool)
    i, j = pixel
    past[:i] = True
    past[i, :j] = True
    return past


# ----------------------------------------------------------------------------- Gated PixelCNN


def gated_footprints(kernel_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The (k, k) centred footprints of one gated layer: vertical (rows i-p..i, all k columns), horizontal.

    These are what :class:`arflow.models.gated_pixelcnn.GatedLayer` reads: its vertical kernel is
    (p+1) x k over rows i-p..i, its horizontal kernel 1 x (p+1) over columns j-p..j of row i.
    """
    p = kernel_size // 2
    vertical = torch.zeros(kernel_size, kernel_size)
    vertical[: p + 1] = 1
    horizontal = torch.zeros(kernel_size, kernel_size)
    horizontal[p, : p + 1] = 1
    return vertical, horizontal


def gated_field(image_size: tuple[int, int], pixel: tuple[int, int], n_layers: int, kernel_size: int,
                parts: bool = False):
    """The receptive field of ``pixel`` in a :class:`~arflow.models.gated_pixelcnn.GatedPixelCNN`.

    Backwards through the layers: the horizontal features h_l at positions P need h_{l-1} at
    P + horizontal footprint (which contains the residual offset 0) and the vertical
    pre-activations at P; the vertical features at positions Q need v_{l-1} at Q + vertical
    footprint. At the bottom, h_0 is the image shifted right one column and v_0 the image shifted
    down one row. With ``parts=True`` returns ``{"horizontal": ..., "vertical": ...}`` (what each
    stack brings in; the field is their union), else the (H, W) field.
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    v_foot, h_foot = gated_footprints(kernel_size)
    h = _start(image_size, pixel)
    v = torch.zeros_like(h)
    for _ in range(n_layers):
        v = _dilate(v | h, v_foot)
        h = _dilate(h, h_foot)
    # h_0(i, j) = x(i, j - 1) and v_0(i, j) = x(i - 1, j): move each set back to the image
    horizontal = torch.zeros_like(h)
    horizontal[:, :-1] = h[:, 1:]
    vertical = torch.zeros_like(v)
    vertical[:-1] = v[1:]
    if parts:
        return {"horizontal": horizontal, "vertical": vertical}
    return horizontal | vertical


# ----------------------------------------------------------------------------- colour


def colour_field(image_size: tuple[int, int], pixel: tuple[int, int], colour: int, n_layers: int,
                 kernel_size: int) -> torch.Tensor:
    """(3, H, W) bool: which input colours of which pixels reach output colour ``colour`` (0=R, 1=G, 2=B) at ``pixel``.

    Through a stack of colour-masked convolutions (type A, then type B), tracked per colour group.
    """
    if colour not in (0, 1, 2):
        raise ValueError(f"colour must be 0 (R), 1 (G) or 2 (B), got {colour}")
    reach = torch.zeros(3, *image_size, dtype=torch.bool)
    reach[colour] = _start(image_size, pixel)
    kinds = ["A"] + ["B"] * (n_layers - 1)
    for kind in reversed(kinds):
        mask = colour_mask(kernel_size, 3, 3, kind)  # (g_out, g_in, k, k)
        new = torch.zeros_like(reach)
        for g_out in range(3):
            for g_in in range(3):
                new[g_in] |= _dilate(reach[g_out], mask[g_out, g_in])
        reach = new
    return reach
