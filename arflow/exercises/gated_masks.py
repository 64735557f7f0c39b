"""Exercise of lecture 02: the kernel masks of a Gated PixelCNN layer written with masked k x k kernels.

The library builds its gated layers by shifting the image and using (p+1) x k and 1 x (p+1) kernels
(:mod:`arflow.models.gated_pixelcnn`); many implementations instead mask two centred k x k kernels. The
student writes ``gated_masks(kernel_size, first_layer) -> (vertical, horizontal)``, two (k, k) 0/1
masks. Checked by gradients through a random stack of masked gated layers (no output pixel may see
itself or a later pixel; no pixel before it within reach may be missed: no blind spot) and entry by entry.

Not the assignment: its plain masked-convolution PixelCNN uses one raster mask per layer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from arflow.analysis.fields import gated_footprints, raster_past
from arflow.analysis.gradients import gradient_field
from arflow.exercises.core import Wrong, call, evaluate, expect_tensor, report

NAME = "gated_masks"
IMAGE, PIXEL, LAYERS = (9, 9), (6, 4), 3


def expected_masks(kernel_size: int, first_layer: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The (k, k) vertical and horizontal masks: later layers read the library's gated footprints; the first
    layer reads neither row i in its vertical kernel nor the centre in its horizontal one (no shift here)."""
    vertical, horizontal = gated_footprints(kernel_size)
    if first_layer:
        p = kernel_size // 2
        vertical, horizontal = vertical.clone(), horizontal.clone()
        vertical[p] = 0
        horizontal[p, p] = 0
    return vertical, horizontal


def masked_gated_stack(first: tuple[torch.Tensor, torch.Tensor], later: tuple[torch.Tensor, torch.Tensor],
                       n_layers: int, channels: int = 2, seed: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """x (B, 1, H, W) -> horizontal features (B, C, H, W) of ``n_layers`` random gated layers with these masks.

    Each layer: v' = conv(v, W_v * m_v); h' = conv(h, W_h * m_h) + 1x1(v'); v = tanh(v'); h = tanh(h') (+ h
    after the first layer). Both stacks start from the image itself.
    """
    g = torch.Generator().manual_seed(seed)
    k = first[0].shape[-1]
    widths = [1] + [channels] * n_layers
    weights = [(torch.randn(widths[l + 1], widths[l], k, k, generator=g, dtype=torch.float64),
                torch.randn(widths[l + 1], widths[l], k, k, generator=g, dtype=torch.float64),
                torch.randn(channels, channels, 1, 1, generator=g, dtype=torch.float64)) for l in range(n_layers)]

    def forward(x: torch.Tensor) -> torch.Tensor:
        v = h = x
        for l, (w_v, w_h, w_vh) in enumerate(weights):
            m_v, m_h = (first if l == 0 else later)
            v_pre = F.conv2d(v, w_v * m_v.to(x.dtype), padding=k // 2)
            h_pre = F.conv2d(h, w_h * m_h.to(x.dtype), padding=k // 2) + F.conv2d(v_pre, w_vh)
            v = torch.tanh(v_pre)
            h = torch.tanh(h_pre) + (h if l else 0)
        return h

    return forward


def mask_problems(vertical: torch.Tensor, horizontal: torch.Tensor, first_layer: bool) -> list[str]:
    """Sentences saying what is wrong with one layer's masks, in terms of what the layer would read."""
    k = vertical.shape[-1]
    p = k // 2
    layer = "first" if first_layer else "later"
    v_want, h_want = expected_masks(k, first_layer)
    problems = []
    if vertical[p + 1:].any():
        problems.append(f"the {layer} layer's vertical mask reads rows below the centre (the future)")
    if first_layer and vertical[p].any():
        problems.append("the first layer's vertical mask reads row i itself; its features enter the horizontal "
                        "stack at (i, j), which then sees (i, j+1), ... (the future). Only rows above in layer 1")
    if horizontal[p, p + 1:].any():
        problems.append(f"the {layer} layer's horizontal mask reads pixels right of the centre (the future)")
    if first_layer and horizontal[p, p]:
        problems.append("the first layer's horizontal mask includes the centre: the model would see the very pixel "
                        "it predicts")
    if torch.cat([horizontal[:p], horizontal[p + 1:]]).any():
        problems.append(f"the {layer} layer's horizontal mask reads rows other than row i (that is the vertical "
                        "stack's job)")
    missing = ((v_want == 1) & (vertical == 0)).nonzero().tolist()
    if missing:
        problems.append(f"the {layer} layer's vertical mask leaves out kernel positions {missing} (row, column) "
                        "that it may read: all k columns of the allowed rows")
    missing = ((h_want == 1) & (horizontal == 0)).nonzero().tolist()
    if missing:
        problems.append(f"the {layer} layer's horizontal mask leaves out kernel positions {missing} that it may read"
                        + ("; after the first layer the centre holds features that already exclude pixel (i, j)"
                           if not first_layer and [p, p] in missing else ""))
    return problems


def _masks(fn: Callable, k: int, first_layer: bool) -> tuple[torch.Tensor, torch.Tensor]:
    what = f"gated_masks({k}, first_layer={first_layer})"
    out = call(fn, k, first_layer, what=what)
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise Wrong(f"{what} should return a pair (vertical, horizontal), received {type(out).__name__}")
    masks = []
    for name, m in zip(("vertical", "horizontal"), out):
        m = expect_tensor(torch.as_tensor(m).float(), (k, k), f"the {name} mask of {what}")
        if not ((m == 0) | (m == 1)).all():
            raise Wrong(f"the {name} mask of {what} should hold only 0s and 1s, received values {m.unique().tolist()}")
        masks.append(m)
    return masks[0], masks[1]


def _explain(problems: list[str]) -> str:
    return (" In your masks: " + "; ".join(problems) + ".") if problems else ""


def verify(fn: Callable) -> str:
    """Raise :class:`Wrong` with an explanation, or return what was verified."""
    for k in (3, 5):
        for first_layer in (True, False):
            _masks(fn, k, first_layer)
    first, later = _masks(fn, 3, True), _masks(fn, 3, False)
    problems = mask_problems(*first, True) + mask_problems(*later, False)
    i, j = PIXEL
    field = gradient_field(masked_gated_stack(first, later, LAYERS), (1, 1, *IMAGE), (0, slice(None), i, j))[0, 0]
    future = (field & ~raster_past(IMAGE, PIXEL)).nonzero().tolist()
    if future:
        def where(r: int, c: int) -> str:
            return "itself" if (r, c) == PIXEL else "a row below" if r > i else "to its right in its own row"

        named = ", ".join(f"({r}, {c}) ({where(r, c)})" for r, c in future[:4]) + (" ..." if len(future) > 4 else "")
        raise Wrong(f"through {LAYERS} gated layers with your masks (k=3), output pixel {PIXEL} depends on "
                    f"{len(future)} input pixel(s) it may not see: {named}.{_explain(problems)}")
    reference = gradient_field(masked_gated_stack(expected_masks(3, True), expected_masks(3, False), LAYERS),
                               (1, 1, *IMAGE), (0, slice(None), i, j))[0, 0]
    blind = (reference & ~field).nonzero().tolist()
    if blind:
        raise Wrong(f"through {LAYERS} gated layers with your masks (k=3), output pixel {PIXEL} never sees input "
                    f"pixels {blind[:4]}{' ...' if len(blind) > 4 else ''} ({len(blind)} in all), which come before "
                    f"it and are within reach: a blind spot.{_explain(problems)}")
    for k in (3, 5):
        for first_layer in (True, False):
            problems = mask_problems(*_masks(fn, k, first_layer), first_layer)
            if problems:
                raise Wrong(f"gated_masks({k}, first_layer={first_layer}):{_explain(problems)}")
    return (f"through {LAYERS} random gated layers built from your masks (k=3), output pixel {PIXEL} of a "
            f"{IMAGE[0]}x{IMAGE[1]} image depends on exactly the {int(field.sum())} earlier pixels within reach "
            "(by gradients: nothing later, not itself, no blind spot); both masks match entry by entry for k = 3 "
            "and 5, first and later layers.")


def check_gated_masks(fn: Callable) -> None:
    """Check the student's ``gated_masks(kernel_size, first_layer)`` and print the verdict."""
    report(evaluate(NAME, verify, fn))
