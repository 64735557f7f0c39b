"""Figures of lectures 04 and 05: attention maps, masks of one pixel and of all pixels, cost curves,
and the Sparse Transformer explorer. Every mask drawn here is computed by the model code."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from arflow.models.sparse_attention import pattern_masks
from arflow.utils import to_numpy
from arflow.viz.palette import BACKGROUND, BLUE, GREY, MASK, RED, cmap
from arflow.viz.primitives import draw_grid_values

MASK_COLOURS = cmap(BACKGROUND, BLUE, RED)  # not attended, attended, the query



def show_matrix_mask(mask, title: str = "causal mask", ax=None, annotate: bool | None = None):
    """Draw a (T, T) 0/1 mask: rows are queries i, columns keys j."""
    mask = to_numpy(mask).astype(int)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.4, 3.4))
    ax.imshow(mask, cmap=MASK, vmin=0, vmax=1)
    if annotate or (annotate is None and mask.shape[0] <= 10):
        draw_grid_values(ax, mask, fontsize=8)
    ax.set_xlabel("key position j")
    ax.set_ylabel("query position i")
    ax.set_title(title, fontsize=10)
    return fig or ax.figure


def plot_attention_map(weights, labels: list[str] | None = None, title: str = "attention weights", ax=None):
    """Heat map of one head's attention weights (T, T); ``labels`` name the positions (characters)."""
    from matplotlib.transforms import blended_transform_factory

    w = to_numpy(weights)
    fig = None
    if ax is None:
        size = min(9.0, max(4.0, 0.11 * len(w) + 1.5))
        fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(w, cmap="viridis", vmin=0, vmax=max(1e-9, float(w.max())))
    if labels is not None:  # one text per byte: far cheaper to draw than a tick per byte, same picture
        ax.set_xticks([])
        ax.set_yticks([])
        size = 7 if len(labels) <= 48 else 6
        below = blended_transform_factory(ax.transData, ax.transAxes)
        left = blended_transform_factory(ax.transAxes, ax.transData)
        for k, label in enumerate(labels):
            ax.text(k, -0.01, label, transform=below, ha="center", va="top", fontsize=size, family="monospace")
            ax.text(-0.01, k, label, transform=left, ha="right", va="center", fontsize=size, family="monospace")
    ax.set_xlabel("key: the byte attended to", labelpad=12 if labels is not None else 4)
    ax.set_ylabel("query: the byte whose successor is predicted", labelpad=12 if labels is not None else 4)
    ax.set_title(title, fontsize=10)
    (fig or ax.figure).colorbar(image, ax=ax, fraction=0.046, label="attention weight (probability)")
    return fig or ax.figure


def byte_labels(text_bytes: list[int]) -> list[str]:
    """Printable tick labels for byte tokens (space as '␣', newline as '⏎')."""
    out = []
    for b in text_bytes:
        ch = chr(b) if 32 < b < 127 else {32: "␣", 10: "⏎", 9: "⇥"}.get(b, "·")
        out.append(ch)
    return out


def plot_pixel_masks(masks, image_size: tuple[int, int], pixel: tuple[int, int], head_names=None,
                     suptitle: str = ""):
    """The seed's figure: for each head, above the pixels that ``pixel`` attends to in the image,
    below the whole (n, n) mask of the flattened image (the query row of ``pixel`` marked)."""
    masks = to_numpy(masks).astype(bool)
    if masks.ndim == 2:
        masks = masks[None]
    H, W = image_size
    r, c = pixel
    if not (0 <= r < H and 0 <= c < W):
        raise ValueError(f"pixel {pixel} lies outside an image of size {image_size}")
    i = r * W + c
    heads = len(masks)
    names = head_names or [f"head {h}" for h in range(heads)]
    fig, axes = plt.subplots(2, heads, figsize=(3.3 * heads, 6.6), squeeze=False)
    for h in range(heads):
        picture = masks[h, i].reshape(H, W).astype(int)
        picture[r, c] = 2
        ax = axes[0, h]
        ax.imshow(picture, cmap=MASK_COLOURS, vmin=0, vmax=2)
        ax.set_title(f"{names[h]}: pixel ({r}, {c})\nattends to {int(masks[h, i].sum())} pixels", fontsize=9)
        ax.set_xlabel("column (pixels)")
        ax.set_ylabel("row (pixels)")
        ax = axes[1, h]
        ax.imshow(masks[h], cmap=MASK, vmin=0, vmax=1, interpolation="nearest")
        ax.axhline(i, color=RED, linewidth=0.8)
        ax.set_title(f"{names[h]}: all {H * W} pixels\n{int(masks[h].sum())} (query, key) pairs", fontsize=9)
        ax.set_xlabel("key pixel j (raster order)")
        ax.set_ylabel("query pixel i (raster order)")
    for ax in axes.flat:  # few ticks: each tick label is laid out on every redraw of the explorer
        ax.locator_params(nbins=4)
    fig.suptitle(suptitle)
    fig.subplots_adjust(left=0.12 if heads > 1 else 0.2, right=0.97, top=0.86, bottom=0.08, hspace=0.45,
                        wspace=0.4)
    return fig


def draw_pattern(pattern: str = "strided", stride: int = 6, row: int = 4, col: int = 3, side: int = 12):
    """One frame of the Sparse Transformer explorer: both heads of ``pattern`` on a side x side image."""
    n = side * side
    stride = max(1, min(stride, n))
    masks = pattern_masks(pattern, n, stride, n_heads=2 if pattern != "dense" else 1)
    names = {"strided": ["head A: previous l pixels", "head B: every l-th pixel"],
             "fixed": ["head A: own block of l", "head B: block summaries"],
             "dense": ["dense causal"]}[pattern]
    return plot_pixel_masks(masks, (side, side), (min(row, side - 1), min(col, side - 1)), names,
                            suptitle=f"{pattern} attention, stride l = {stride}, n = {n} pixels")


def attention_explorer(maps: list, labels: list[str], title: str = "attention weights of a generated string"):
    """Sliders over layer and head of attention maps (one (B, heads, T, T) tensor per layer, as
    ``GPT(..., return_attention=True)`` returns them): :func:`plot_attention_map` of example 0."""
    import ipywidgets as widgets

    from arflow.viz.explorer import explorer

    def draw(layer: int, head: int):
        return plot_attention_map(maps[layer][0, head], labels, title=f"layer {layer}, head {head}: {title}")

    n_layers, n_heads = len(maps), maps[0].shape[1]
    return explorer(draw, layer=widgets.IntSlider(value=0, min=0, max=n_layers - 1, description="layer"),
                    head=widgets.IntSlider(value=min(1, n_heads - 1), min=0, max=n_heads - 1, description="head"))


def sparse_explorer(side: int = 12):
    """Explorer: pattern, stride l and the query pixel; both heads, for one pixel and for all pixels."""
    import ipywidgets as widgets

    from arflow.viz.explorer import explorer

    return explorer(
        lambda pattern, stride, row, col: draw_pattern(pattern, stride, row, col, side),
        applies={"stride": lambda values: values["pattern"] != "dense"},  # dense attention has no stride
        pattern=widgets.Dropdown(options=["strided", "fixed", "dense"], value="strided", description="pattern"),
        stride=widgets.IntSlider(value=side // 2, min=1, max=2 * side, description="stride l"),
        row=widgets.IntSlider(value=side // 3, min=0, max=side - 1, description="row"),
        col=widgets.IntSlider(value=side // 4, min=0, max=side - 1, description="column"),
    )


def plot_reach(masks, layers: int, title: str, ax=None):
    """Which positions reach which after ``layers`` layers (n, n), from :func:`reachable`."""
    from arflow.models.sparse_attention import reachable

    return show_matrix_mask(reachable(masks, layers), title=title, ax=ax, annotate=False)


def plot_costs(ns, series: dict[str, list[float]], ylabel: str, title: str, references=("n^2", "n sqrt n"),
               anchor: str = "first"):
    """Log-log plot of measured costs against n with reference slopes n^2 and n^1.5, drawn through the
    ``anchor`` ("first" or "last") point of the first series. Measured times are best anchored at the
    last (largest) n, where fixed overheads matter least."""
    if anchor not in ("first", "last"):
        raise ValueError(f"anchor must be 'first' or 'last', got {anchor!r}")
    ns = np.asarray(ns, dtype=float)
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for name, values in series.items():
        ax.plot(ns, values, "o-", label=name)
    at = 0 if anchor == "first" else -1
    value = np.asarray(next(iter(series.values())), dtype=float)[at]
    for ref in references:
        power = 2.0 if ref == "n^2" else 1.5 if ref == "n sqrt n" else 1.0
        ax.plot(ns, value * (ns / ns[at]) ** power, "--", color="grey" if power == 2 else GREY,
                linewidth=1, label=f"∝ {ref}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sequence length n (pixels)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig
