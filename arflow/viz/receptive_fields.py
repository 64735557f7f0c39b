"""Receptive fields and masks, drawn from the code: causal 1-D stacks, masked and gated 2-D stacks.

Every ``draw_*`` function computes what it draws with :mod:`arflow.analysis.fields` / :mod:`arflow.analysis.masks`
(and, where asked, checks it against gradients through a real model) and returns a matplotlib
Figure, so it runs headless in tests. ``*_explorer`` functions wrap them in ipywidgets through
:func:`arflow.notebook.explorer`.
"""

from __future__ import annotations

import functools

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.patches import Patch, Rectangle

from arflow.analysis.fields import (
    blind_spot,
    causal_layers_1d,
    gated_field,
    masked_stack_field,
    masked_stack_layers,
    raster_past,
)
from arflow.analysis.gradients import gated_gradient_field, masked_stack_gradient_field
from arflow.analysis.masks import COLOURS, colour_mask, mask_of_type
from arflow.models.causal_conv import receptive_field_size
from arflow.utils import to_numpy
from arflow.viz.palette import BACKGROUND, BLUE, GREEN, LINE, MASK, ORANGE, PALE_BLUE, RED, SILVER, cmap
from arflow.viz.primitives import draw_grid_values

# picture codes: 0 outside, 1 field (or vertical stack), 2 horizontal stack, 3 the pixel, 4 blind spot,
# 5 the past that is out of reach (a limit of depth)
FIELD_CMAP = cmap(BACKGROUND, BLUE, ORANGE, GREEN, RED, PALE_BLUE)


# ----------------------------------------------------------------------------- masks and fields, drawn
def show_mask(mask, title: str = "kernel mask", ax=None, annotate: bool = True):
    """Draw a 2-D 0/1 mask (kH, kW) with its values, the centre outlined."""
    mask = to_numpy(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (kH, kW), got shape {mask.shape}")
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.5 * mask.shape[1] + 1.5, 0.5 * mask.shape[0] + 1.2))
    ax.imshow(mask, cmap=MASK, vmin=0, vmax=1)
    if annotate:
        draw_grid_values(ax, mask.astype(int), color="black")
    ci, cj = mask.shape[0] // 2, mask.shape[1] // 2
    ax.add_patch(plt.Rectangle((cj - 0.5, ci - 0.5), 1, 1, fill=False, edgecolor=RED, linewidth=2))
    ax.set_xticks(range(mask.shape[1]))
    ax.set_yticks(range(mask.shape[0]))
    ax.set_xlabel("kernel column")
    ax.set_ylabel("kernel row")
    ax.set_title(title)
    return fig or ax.figure


def show_receptive_field(field, pixel: tuple[int, int], title: str = "receptive field", ax=None,
                         grid: bool = True):
    """Draw a boolean field (H, W) of the inputs that reach output ``pixel`` (row, col)."""
    field = to_numpy(field).astype(int)
    if field.ndim != 2:
        raise ValueError(f"field must be 2-D (H, W), got shape {field.shape}")
    picture = field.copy()
    picture[pixel] = 3  # FIELD_CMAP: 0 outside, 1 in the field, 3 the pixel itself
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.2, 3.2))
    ax.imshow(picture, cmap=FIELD_CMAP, vmin=0, vmax=5)
    if grid:
        ax.set_xticks(np.arange(-0.5, field.shape[1], 1), minor=True)
        ax.set_yticks(np.arange(-0.5, field.shape[0], 1), minor=True)
        ax.grid(which="minor", color="white", linewidth=0.5)
        ax.tick_params(which="minor", length=0)
    ax.set_xlabel("column (pixels)")
    ax.set_ylabel("row (pixels)")
    ax.set_title(f"{title}\n{int(field.sum())} input pixels", fontsize=10)
    return fig or ax.figure


def _dilations(n_layers: int, dilated: bool, base: int = 2) -> list[int]:
    return [base ** k if dilated else 1 for k in range(n_layers)]


# ----------------------------------------------------------------------------- 1-D: the WaveNet diagram


def draw_causal_stack(kernel_size: int = 2, n_layers: int = 4, dilated: bool = True, output: int | None = None,
                      length: int = 32, ax=None):
    """The WaveNet-style diagram: units of every layer, the ones that reach ``output`` and their links.

    Computed with :func:`arflow.analysis.fields.causal_layers_1d`; the title gives the field size and its formula.
    """
    dilations = _dilations(n_layers, dilated)
    output = length - 1 if output is None else min(max(int(output), 0), length - 1)
    layers = causal_layers_1d(length, output, kernel_size, dilations)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(min(12, 2 + 0.3 * length), 1.2 + 0.75 * (n_layers + 1)))
    segments = []
    for level in range(1, n_layers + 1):  # links from each reached unit to the taps it reads
        d = dilations[level - 1]
        for t in torch.nonzero(layers[level])[:, 0].tolist():
            for tap in range(kernel_size):
                if t - tap * d >= 0:
                    segments.append([(t, level), (t - tap * d, level - 1)])
    ax.add_collection(LineCollection(segments, colors=BLUE, linewidths=1.0, alpha=0.7))
    for level, reach in enumerate(layers):
        xs = np.arange(length)
        on = reach.numpy()
        ax.scatter(xs[~on], np.full((~on).sum(), level), s=22, color=SILVER, zorder=2)
        colour = GREEN if level == n_layers else BLUE
        ax.scatter(xs[on], np.full(on.sum(), level), s=40, color=colour, zorder=3)
    ax.set_yticks(range(n_layers + 1))
    ax.set_yticklabels(["input"] + [f"layer {k + 1} (d={d})" for k, d in enumerate(dilations)])
    ax.set_xlabel("time step t")
    ax.set_xlim(-1, length)
    ax.set_ylim(-0.5, n_layers + 0.5)
    size = int(layers[0].sum())
    formula = f"1 + (k-1)·Σd = 1 + {kernel_size - 1}·{sum(dilations)} = {receptive_field_size(kernel_size, dilations)}"
    ax.set_title(f"{'dilated' if dilated else 'plain'} causal stack, k={kernel_size}: output t={output} "
                 f"sees {size} inputs\n(formula {formula}; fewer only where the sequence starts)", fontsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig or ax.figure


def draw_field_growth(kernel_size: int = 2, max_layers: int = 12, ax=None):
    """Receptive field size against depth: plain stacks grow linearly, dilated (d = 2^l) exponentially."""
    depth = np.arange(1, max_layers + 1)
    plain = [receptive_field_size(kernel_size, _dilations(n, False)) for n in depth]
    dilated = [receptive_field_size(kernel_size, _dilations(n, True)) for n in depth]
    # measured, not only the formula: count the analytic field of the last output
    measured = [int(causal_layers_1d(s + 5, s + 4, kernel_size, _dilations(n, True))[0].sum())
                for n, s in zip(depth, dilated)]
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(depth, plain, "o-", color=ORANGE, label="no dilation: 1 + (k-1)·L")
    ax.plot(depth, dilated, "o-", color=BLUE, label="dilations 1, 2, 4, ...: 1 + (k-1)(2^L - 1)")
    ax.plot(depth, measured, "x", color="black", label="counted from the layers")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("number of layers L")
    ax.set_ylabel("receptive field (samples)")
    ax.set_title(f"Receptive field of a causal stack, kernel size k={kernel_size}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig or ax.figure


def causal_stack_explorer():
    """Sliders for :func:`draw_causal_stack`: kernel size, layers, dilated or not, the output picked."""
    import ipywidgets as w

    from arflow.viz.explorer import explorer

    return explorer(functools.partial(draw_causal_stack, length=48),
                    kernel_size=w.IntSlider(2, 2, 4, description="kernel k"),
                    n_layers=w.IntSlider(4, 1, 6, description="layers"),
                    dilated=w.Checkbox(True, description="dilations 2^l"),
                    output=w.IntSlider(40, 0, 47, description="output t"))


# ----------------------------------------------------------------------------- 2-D pictures


def _grid(ax, H: int, W: int) -> None:
    # white lines between the cells: two line collections (minor ticks with a grid cost a tick artist each)
    ax.vlines(np.arange(0.5, W - 1, 1), -0.5, H - 0.5, colors="white", linewidth=0.6)
    ax.hlines(np.arange(0.5, H - 1, 1), -0.5, W - 0.5, colors="white", linewidth=0.6)
    ax.set_xlabel("column (pixels)")
    ax.set_ylabel("row (pixels)")


def draw_mask(kernel_size: int = 5, mask_type: str = "A", ax=None):
    """The (k, k) kernel mask of type A or B, from :func:`~arflow.analysis.masks.mask_of_type`, with its values."""
    title = (f"mask type {mask_type}, {kernel_size}x{kernel_size}\n"
             f"({'centre excluded' if mask_type == 'A' else 'centre included'})")
    return show_mask(mask_of_type(kernel_size, mask_type), title=title, ax=ax)


def draw_raster_past(n: int = 6, pixel: tuple[int, int] = (3, 2)):
    """An n x n image numbered in raster order (1..n^2); ``pixel`` (green) may depend on the pixels before it (blue)."""
    order = np.arange(n * n).reshape(n, n)
    i, j = pixel
    codes = np.where(order < order[i, j], 1, 0)
    codes[i, j] = 2
    fig, ax = plt.subplots(figsize=(3.8, 3.8))
    ax.imshow(codes, cmap=cmap(BACKGROUND, BLUE, GREEN), vmin=0, vmax=2)
    draw_grid_values(ax, order + 1, color=lambda v: "black" if codes.flat[v - 1] == 0 else "white")
    ax.set_xlabel("column (pixels)")
    ax.set_ylabel("row (pixels)")
    ax.set_title(f"raster order: pixel {order[i, j] + 1} (green)\nmay depend on pixels 1..{order[i, j]} (blue)")
    return fig


def construction_frames(image_size=(9, 9), pixel=(5, 4), kernel_size: int = 3):
    """The slide's frames for two masked layers: [(layer-1 unit or None, layer-1 units so far, input field so far)].

    Layer 2 (type B) reads the layer-1 units its mask lets through; each of those reads, through
    a type-A mask, part of the input. Adding them one at a time builds the receptive field.
    """
    H, W = image_size
    units = masked_stack_layers(image_size, pixel, 1, kernel_size, first_type="B")[0]  # layer-1 units read
    frames = [(None, torch.zeros(H, W, dtype=torch.bool), torch.zeros(H, W, dtype=torch.bool))]
    field, done = torch.zeros(H, W, dtype=torch.bool), torch.zeros(H, W, dtype=torch.bool)
    for unit in [tuple(u) for u in torch.nonzero(units).tolist()]:
        done = done.clone()
        done[unit] = True
        field = field | masked_stack_field(image_size, unit, 1, kernel_size, first_type="A")
        frames.append((unit, done, field))
    return frames


def draw_construction(image_size=(9, 9), pixel=(5, 4), kernel_size: int = 3, max_frames: int = 6):
    """Frames of the construction of the green pixel's field in the second of two masked layers.

    Top row: layer 1 (the units layer 2 reads at the green pixel; the current one outlined).
    Bottom row: the input pixels that reach the green pixel so far. The last frame is checked
    against gradients through a real two-layer masked stack.
    """
    frames = construction_frames(image_size, pixel, kernel_size)
    idx = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    fig, axes = plt.subplots(2, len(idx), figsize=(2.3 * len(idx), 5.0), squeeze=False)
    H, W = image_size
    for col, f in enumerate(idx):
        unit, done, field = frames[f]
        top = np.zeros((H, W), int)
        top[done.numpy()] = 1
        top[pixel] = 3
        axes[0, col].imshow(top, cmap=FIELD_CMAP, vmin=0, vmax=5)
        bottom = np.zeros((H, W), int)
        bottom[field.numpy()] = 1
        bottom[pixel] = 3
        axes[1, col].imshow(bottom, cmap=FIELD_CMAP, vmin=0, vmax=5)
        if unit is not None:
            for ax in axes[:, col]:
                ax.add_patch(Rectangle((unit[1] - 0.5, unit[0] - 0.5), 1, 1, fill=False, edgecolor=ORANGE,
                                       linewidth=2.5))
        for ax in axes[:, col]:
            _grid(ax, H, W)
            ax.set_xticklabels([])
            ax.set_yticklabels([])
            ax.set_xlabel("")
            ax.set_ylabel("")
        axes[0, col].set_title("start" if unit is None else f"step {f}: unit {unit}", fontsize=9)
    axes[0, 0].set_ylabel("layer 1\n(read by the green pixel)")
    axes[1, 0].set_ylabel("input image\n(field so far)")
    check = torch.equal(frames[-1][2], masked_stack_gradient_field(image_size, pixel, 2, kernel_size))
    fig.suptitle(f"Receptive field of the green pixel in the 2nd of two masked {kernel_size}x{kernel_size} layers "
                 f"(A then B), built step by step\nfinal field: {int(frames[-1][2].sum())} pixels; "
                 f"equals the field found by gradients: {check}", fontsize=10)
    fig.tight_layout()
    return fig


def field_picture(kind: str, image_size, pixel, n_layers: int, kernel_size: int, mask_type: str = "A"):
    """(picture (H, W) int codes for FIELD_CMAP, field (H, W) bool) of one model's receptive field.

    ``kind``: ``"masked"`` (plain stack, first layer of ``mask_type``, then type B; blind spot in red)
    or ``"gated"`` (vertical stack blue, horizontal stack orange).
    """
    H, W = image_size
    past = raster_past(image_size, pixel)
    picture = np.zeros((H, W), int)
    if kind == "masked":
        field = masked_stack_field(image_size, pixel, n_layers, kernel_size, first_type=mask_type)
        picture[(past & ~field).numpy()] = 5
        picture[field.numpy()] = 1
        picture[blind_spot(image_size, pixel, field).numpy()] = 4
    elif kind == "gated":
        parts = gated_field(image_size, pixel, n_layers, kernel_size, parts=True)
        field = parts["vertical"] | parts["horizontal"]
        picture[(past & ~field).numpy()] = 5
        picture[parts["vertical"].numpy()] = 1
        picture[parts["horizontal"].numpy()] = 2
    else:
        raise ValueError(f"kind must be 'masked' or 'gated', got {kind!r}")
    picture[pixel] = 3  # (if a type-B first layer lets it see itself, the title says so)
    return picture, field


@functools.lru_cache(maxsize=256)
def _gradient_field(kind: str, image_size: tuple[int, int], pixel: tuple[int, int], n_layers: int,
                    kernel_size: int, mask_type: str) -> torch.Tensor:
    """The field by gradients through a random model, cached: an explorer revisits the same settings."""
    if kind == "masked":
        return masked_stack_gradient_field(image_size, pixel, n_layers, kernel_size, first_type=mask_type)
    return gated_gradient_field(image_size, pixel, n_layers, kernel_size)


def draw_receptive_field(kind: str = "gated", n_layers: int = 3, kernel_size: int = 3, mask_type: str = "A",
                         row: int = 9, col: int = 7, image_size=(16, 16), check: bool = True, ax=None):
    """One model's receptive field of pixel (row, col); with ``check``, compared with gradients.

    Colours: green the pixel; blue the field (plain stack) or the vertical stack's part (gated);
    orange the horizontal stack's part; red the blind spot; pale blue the past out of reach.
    """
    H, W = image_size
    pixel = (min(max(int(row), 0), H - 1), min(max(int(col), 0), W - 1))
    picture, field = field_picture(kind, image_size, pixel, n_layers, kernel_size, mask_type)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.6, 5.4))  # the explorer crops to the tight bounding box
    ax.imshow(picture, cmap=FIELD_CMAP, vmin=0, vmax=5)
    _grid(ax, H, W)
    if kind == "masked":
        name = f"plain masked stack ({mask_type}, then B)"
        legend = [Patch(color=BLUE, label="field"), Patch(color=RED, label="blind spot")]
    else:
        name = "Gated PixelCNN"
        legend = [Patch(color=BLUE, label="via vertical stack"), Patch(color=ORANGE, label="via horizontal stack")]
    legend += [Patch(color=PALE_BLUE, label="past, out of reach"), Patch(color=GREEN, label="the pixel")]
    ax.legend(handles=legend, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    lines = [f"{name}: {n_layers} layers, k={kernel_size}, pixel {pixel}",
             f"{int(field.sum())} input pixels"]
    if kind == "masked":
        spot = int(blind_spot(image_size, pixel, field).sum())
        lines[-1] += f", blind spot {spot}" + (" — the pixel sees ITSELF (type B first)" if field[pixel] else "")
    if check:
        grad = _gradient_field(kind, tuple(image_size), pixel, n_layers, kernel_size, mask_type)
        lines.append(f"analytic = gradients: {torch.equal(grad, field)}")
    ax.set_title("\n".join(lines), fontsize=9)
    return fig or ax.figure


def receptive_field_explorer(image_size=(16, 16)):
    """The explorer: model (plain masked stack or Gated PixelCNN), layers, kernel size, mask type, pixel."""
    import ipywidgets as w

    from arflow.viz.explorer import explorer

    H, W = image_size
    return explorer(functools.partial(draw_receptive_field, image_size=image_size),
                    # the first-mask type exists only in the plain stack: disabled for the gated model
                    applies={"mask_type": lambda values: values["kind"] == "masked"},
                    kind=w.ToggleButtons(options=[("masked stack", "masked"), ("gated", "gated")],
                                         value="masked", description="model",
                                         tooltips=["plain stack of masked convolutions (A, then B)",
                                                   "Gated PixelCNN: vertical + horizontal stacks"]),
                    n_layers=w.IntSlider(3, 1, 8, description="layers"),
                    kernel_size=w.IntSlider(3, 3, 7, step=2, description="kernel k"),
                    mask_type=w.ToggleButtons(options=["A", "B"], value="A", description="first mask"),
                    row=w.IntSlider(H // 2 + 1, 0, H - 1, description="row"),
                    col=w.IntSlider(W // 2, 0, W - 1, description="column"),
                    check=w.Checkbox(True, description="check by gradients"))


def draw_depth_growth(kernel_size: int = 3, depths=(1, 2, 3, 5, 8), image_size=(16, 16), pixel=(11, 7)):
    """Small multiples: the fields of a plain masked stack (top) and a Gated PixelCNN (bottom) as depth grows."""
    fig, axes = plt.subplots(2, len(depths), figsize=(2.4 * len(depths), 5.4), squeeze=False)
    for col, n in enumerate(depths):
        for r, kind in enumerate(("masked", "gated")):
            picture, field = field_picture(kind, image_size, pixel, n, kernel_size)
            ax = axes[r, col]
            ax.imshow(picture, cmap=FIELD_CMAP, vmin=0, vmax=5)
            _grid(ax, *image_size)
            ax.set_xticklabels([])
            ax.set_yticklabels([])
            ax.set_xlabel("")
            ax.set_ylabel("")
            extra = f", blind {int(blind_spot(image_size, pixel, field).sum())}" if kind == "masked" else ""
            ax.set_title(f"{n} layer{'s' if n > 1 else ''}: {int(field.sum())} px{extra}", fontsize=9)
    axes[0, 0].set_ylabel("plain masked stack")
    axes[1, 0].set_ylabel("Gated PixelCNN")
    fig.legend(handles=[Patch(color=BLUE, label="field / vertical stack"),
                        Patch(color=ORANGE, label="horizontal stack"),
                        Patch(color=RED, label="blind spot"), Patch(color=PALE_BLUE, label="past, out of reach")],
               loc="lower center", ncol=4, fontsize=8)
    fig.suptitle(f"Receptive field of one pixel as depth grows, kernel {kernel_size}x{kernel_size}", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def draw_gated_footprints(kernel_size: int = 5):
    """What one gated layer reads: the vertical kernel (rows above, after the initial shift) and the horizontal one."""
    from arflow.analysis.fields import gated_footprints

    v, h = gated_footprints(kernel_size)
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.4))
    for ax, foot, colour, name in ((axes[0], v, BLUE, "vertical stack"), (axes[1], h, ORANGE, "horizontal stack")):
        ax.imshow(foot.numpy(), cmap=cmap(BACKGROUND, colour), vmin=0, vmax=1)
        c = kernel_size // 2
        ax.add_patch(Rectangle((c - 0.5, c - 0.5), 1, 1, fill=False, edgecolor=GREEN, linewidth=2.5))
        _grid(ax, kernel_size, kernel_size)
        ax.set_xticks(range(kernel_size))
        ax.set_yticks(range(kernel_size))
        ax.set_xlabel("kernel column")
        ax.set_ylabel("kernel row")
        shape = f"{kernel_size // 2 + 1}x{kernel_size}" if "vertical" in name else f"1x{kernel_size // 2 + 1}"
        ax.set_title(f"{name}: {shape} kernel\n(reads features, centre = same position)", fontsize=9)
    fig.suptitle("One gated layer; causality comes from shifting the input down (vertical) and right (horizontal)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def draw_colour_masks(kernel_size: int = 5, mask_type: str = "A"):
    """The channel-group masks for RGB: one kernel per (output colour, input colour) pair."""
    mask = colour_mask(kernel_size, 3, 3, mask_type)
    fig, axes = plt.subplots(3, 3, figsize=(6.4, 6.6))
    colours = (RED, GREEN, LINE)
    for go in range(3):
        for gi in range(3):
            ax = axes[go, gi]
            ax.imshow(mask[go, gi].numpy(), cmap=cmap(BACKGROUND, colours[gi]), vmin=0, vmax=1)
            c = kernel_size // 2
            ax.add_patch(Rectangle((c - 0.5, c - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.5))
            _grid(ax, kernel_size, kernel_size)
            ax.set_xticklabels([])
            ax.set_yticklabels([])
            ax.set_xlabel("")
            ax.set_ylabel(f"output {COLOURS[go]}" if gi == 0 else "")
            if go == 0:
                ax.set_title(f"input {COLOURS[gi]}", fontsize=10)
            ax.text(c, c, "1" if mask[go, gi, c, c] else "0", ha="center", va="center", fontsize=9)
    centre = "R sees nothing, G sees R, B sees R and G" if mask_type == "A" else "each colour also sees itself"
    fig.suptitle(f"Type {mask_type} colour masks, {kernel_size}x{kernel_size}: at the centre (outlined) {centre}",
                 fontsize=9)
    fig.tight_layout()
    return fig
