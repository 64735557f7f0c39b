"""Plotting helpers shared by all notebooks. Each returns its matplotlib Figure (tests run headless)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patheffects

from arflow.utils import to_numpy
from arflow.viz.palette import BLUE, LINE, RED, SILVER


def smooth(values: list[float], window: int = 20) -> list[float]:
    """Running mean over ``window`` points (for loss curves)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def image_grid(images, nrow: int | None = None, title: str = "", labels=None, cmap: str = "gray",
               vmin: float = 0.0, vmax: float = 1.0, scale: float = 1.0, row_labels=None):
    """Draw images (N, 1, H, W) or (N, H, W) in a grid; float k/255 in [0, 1] by default.

    ``labels``: one title per image; ``row_labels``: one label left of each row (``nrow`` of them).
    """
    images = to_numpy(images)
    if images.ndim == 4:
        if images.shape[1] not in (1, 3):
            raise ValueError(f"images must be (N, 1|3, H, W) or (N, H, W), got {images.shape}")
        images = images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be (N, 1|3, H, W) or (N, H, W), got {images.shape}")
    n = len(images)
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    fig, axes = plt.subplots(nrow, ncol, figsize=(scale * 1.1 * ncol, scale * 1.1 * nrow + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=8)
    if row_labels is not None:
        if len(row_labels) != nrow:
            raise ValueError(f"row_labels has {len(row_labels)} entries for {nrow} rows")
        for row, label in zip(axes[:, 0], row_labels):
            row.text(-0.08, 0.5, str(label), transform=row.transAxes, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def draw_grid_values(ax, values, fmt: str = "{:g}", color="black", fontsize: int = 9, outline: bool = False):
    """Write each entry of a small 2-D array (H, W) in its cell of an ``imshow`` on ``ax``: the one
    function every figure of a small matrix with its values uses (masks, kernels, codes, weights).

    ``color``: a colour, or a function of the value that returns one (for example white on dark
    cells); ``outline``: a thin black outline, so that white text reads on any colour.
    """
    effects = [patheffects.withStroke(linewidth=1.5, foreground="black")] if outline else None
    for (i, j), v in np.ndenumerate(to_numpy(values)):
        ax.text(j, i, fmt.format(v), ha="center", va="center", color=color(v) if callable(color) else color,
                fontsize=fontsize, path_effects=effects)


def plot_history(history, title: str = "training", ylabel: str = "loss (nats per pixel)",
                 eval_label: str = "test", window: int = 20, ax=None, train_scale: float = 1.0,
                 eval_ylabel: str | None = None):
    """Loss curve of a :class:`arflow.train.loop.History` (raw, smoothed, and evaluations).

    One axis, one unit: ``ylabel`` names the unit of the plotted values. The training losses are
    multiplied by ``train_scale`` first (``1 / ln 2`` turns a loss in nats into bits, the unit of
    the test metric). When the test metric is another quantity than the loss (for example a
    weighted loss against bits of the image tokens only), give ``eval_ylabel``: the evaluations are
    then drawn on their own right-hand axis, labelled with it.
    """
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    handles = []
    if history.train:
        steps, losses = zip(*history.train)
        losses = [train_scale * v for v in losses]
        handles += ax.plot(steps, losses, color=SILVER, linewidth=0.8, label="train (per step)")
        handles += ax.plot(steps, smooth(list(losses), window), color=LINE, label=f"train (mean of {window})")
    if history.eval:
        steps, values = zip(*history.eval)
        eval_ax = ax
        if eval_ylabel is not None:
            eval_ax = ax.twinx()
            eval_ax.set_ylabel(eval_ylabel, color=RED)
            eval_ax.tick_params(axis="y", colors=RED)
        handles += eval_ax.plot(steps, values, "o-", color=RED, label=eval_label)
    ax.set_xlabel("optimisation step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if handles:
        ax.legend(handles=handles, labels=[h.get_label() for h in handles])
    return fig or ax.figure


def bar_distribution(probs, title: str = "predicted distribution", xlabel: str = "intensity k (0..255)",
                     true_value: int | None = None, ax=None):
    """Bar plot of a categorical distribution (K,), the true value marked."""
    probs = to_numpy(probs)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.bar(np.arange(len(probs)), probs, width=1.0, color=BLUE)
    if true_value is not None:
        ax.axvline(true_value, color=RED, linestyle="--", label=f"true value {true_value}")
        ax.legend()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("probability")
    ax.set_title(title)
    return fig or ax.figure
