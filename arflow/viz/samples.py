"""Samples side by side with the digit classifier's verdict (:mod:`arflow.evaluate.samples`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from arflow.evaluate.samples import MAX_SPREAD_BITS, SampleScore


def mosaic(images: torch.Tensor, side: int = 4, gap: int = 2) -> torch.Tensor:
    """The first side*side images (N, 1, H, W) tiled into one (side*(H+gap)-gap, side*(W+gap)-gap) picture."""
    n, _, h, w = images.shape
    if n < side * side:
        raise ValueError(f"mosaic needs {side * side} images, got {n}")
    canvas = torch.full((side * (h + gap) - gap, side * (w + gap) - gap), 0.5)
    for k in range(side * side):
        r, c = divmod(k, side)
        canvas[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = images[k, 0]
    return canvas


def draw_judged(groups: dict[str, tuple[torch.Tensor, SampleScore]], side: int = 4,
                title: str = "what the digit classifier says about each set of images"):
    """One panel per named set: a side x side mosaic of its images (N, 1, 28, 28) in [0, 1], and its score."""
    fig, axes = plt.subplots(1, len(groups), figsize=(2.6 * len(groups), 3.9), squeeze=False)
    for ax, (name, (images, score)) in zip(axes[0], groups.items()):
        ax.imshow(mosaic(images.detach().cpu().float(), side), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(f"confident: {100 * score.confident:.0f}%\n"
                      f"spread: {score.spread_bits:.2f} / {MAX_SPREAD_BITS:.2f} bits", fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
