"""Figures of the VQ-VAE lecture: training curves of runs, code usage, code grids, the VQ-VAE-2 pipeline.

Each function returns its matplotlib Figure. ``runs`` are the dicts of
:func:`arflow.train.recipes.vqvae.stage1_experiments` ({name: {"config", "curves"}}).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from arflow.utils import to_numpy
from arflow.viz.palette import BLUE, RED
from arflow.viz.primitives import draw_grid_values

LABELS = {
    "recon": "reconstruction MSE per pixel",
    "commitment": "commitment ||f(x) - sg[z_k]||² per dim",
    "perplexity": "codebook perplexity (codes)",
    "used": "codes used in a batch",
    "dead": "dead codes (unused in the last steps)",
}



def plot_runs(runs: dict, names: list[str], metrics: list[str], title: str, logy: tuple[str, ...] = ("recon",)):
    """One panel per metric, one line per run: metric against optimisation step."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name in names:
            curves = runs[name]["curves"]
            ax.plot(curves["step"], curves[metric], label=name)
        ax.set_xlabel("optimisation step")
        ax.set_ylabel(LABELS.get(metric, metric))
        if metric in logy:
            ax.set_yscale("log")
        ax.set_title(LABELS.get(metric, metric), fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_vae_traces(histories: dict):
    """KL term and reconstruction term over training for each VAE ({label: its training History,
    with the series ``kl`` and ``recon``})."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, history in histories.items():
        for ax, name in zip(axes, ("kl", "recon")):
            steps, values = zip(*history.series[name])
            ax.plot(steps, values, label=label)
    axes[0].set_ylabel("KL(q(z|x) || p(z)) (nats/image)")
    axes[0].set_title("KL term: how much information z carries", fontsize=10)
    axes[1].set_ylabel("-log p(x|z) (nats/image)")
    axes[1].set_title("reconstruction term", fontsize=10)
    for ax in axes:
        ax.set_xlabel("optimisation step")
        ax.legend(fontsize=8)
    fig.suptitle("Posterior collapse: the autoregressive decoder stops using z")
    fig.tight_layout()
    return fig


def code_usage(counts, title: str = "code usage on the test digits"):
    """Bar chart of how often each code is used (K,), sorted by use; unused codes counted in the title."""
    counts = to_numpy(counts).astype(float)
    order = np.argsort(-counts)
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.bar(np.arange(len(counts)), counts[order] / counts.sum(), width=1.0, color=BLUE)
    ax.set_xlabel("code (sorted by use)")
    ax.set_ylabel("fraction of positions")
    ax.set_title(f"{title}: {int((counts > 0).sum())} of {len(counts)} codes used")
    fig.tight_layout()
    return fig


def draw_codes(ax, codes, n_codes: int, title: str = "", annotate: bool = True):
    """Draw a (H, W) grid of code indices as an image, each cell labelled with its code."""
    codes = to_numpy(codes)
    ax.imshow(codes, cmap="tab20" if n_codes <= 20 else "nipy_spectral", vmin=0, vmax=n_codes - 1)
    if annotate:  # white digits outlined in black read on every colour of the map
        draw_grid_values(ax, codes.astype(int), color="white", fontsize=7 if codes.shape[0] > 5 else 9, outline=True)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def code_grids(images, codes, reconstructions, n_codes: int, title: str = "digits as grids of codes"):
    """For each digit: the image (28x28 pixels), its 7x7 codes, and the decoded codes."""
    n = len(images)
    fig, axes = plt.subplots(3, n, figsize=(1.9 * n, 6.0), squeeze=False)
    for k in range(n):
        axes[0, k].imshow(to_numpy(images[k, 0]), cmap="gray", vmin=0, vmax=1)
        draw_codes(axes[1, k], codes[k], n_codes)
        axes[2, k].imshow(to_numpy(reconstructions[k, 0]), cmap="gray", vmin=0, vmax=1)
        for row in (0, 2):
            axes[row, k].set_xticks([])
            axes[row, k].set_yticks([])
    axes[0, 0].set_ylabel("input\n28x28 pixels")
    axes[1, 0].set_ylabel("codes\n7x7 indices")
    axes[2, 0].set_ylabel("decoded\ng(z_k)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def pipeline(top, bottom, images, n_top: int, n_bottom: int, title: str = "VQ-VAE-2 generation"):
    """Columns of the generation pipeline per sample: top codes (4x4) -> bottom codes (7x7) -> image."""
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(6.6, 2.2 * n), squeeze=False)
    for k in range(n):
        draw_codes(axes[k, 0], top[k], n_top, "1. top codes ~ p(top)" if k == 0 else "")
        draw_codes(axes[k, 1], bottom[k], n_bottom, "2. bottom ~ p(bottom | top)" if k == 0 else "")
        axes[k, 2].imshow(to_numpy(images[k, 0]), cmap="gray", vmin=0, vmax=1)
        axes[k, 2].set_xticks([])
        axes[k, 2].set_yticks([])
        if k == 0:
            axes[k, 2].set_title("3. decoder(top, bottom)", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def swap_figure(rows: dict, title: str = "what the top codes control"):
    """Rows of images (each (N, 1, 28, 28)), labelled by the dict's keys."""
    names = list(rows)
    n = len(rows[names[0]])
    fig, axes = plt.subplots(len(names), n, figsize=(1.3 * n + 1.6, 1.4 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for k in range(n):
            axes[r, k].imshow(to_numpy(rows[name][k, 0]), cmap="gray", vmin=0, vmax=1)
            axes[r, k].set_xticks([])
            axes[r, k].set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def timing_bars(seconds: dict, title: str = "sampling time"):
    """Horizontal bars of seconds per variant."""
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(seconds) + 1.2))
    names = list(seconds)
    ax.barh(names, [seconds[n] for n in names], color=BLUE)
    for i, n in enumerate(names):
        ax.text(seconds[n], i, f" {seconds[n]:.2f} s", va="center", fontsize=8)
    ax.set_xlabel("seconds (wall clock, this machine)")
    ax.set_title(title)
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def draw_code_edit(vqvae, images, digit: int = 0, row: int = 3, col: int = 3, code: int = 0,
                   codes: torch.Tensor | None = None, decoded: torch.Tensor | None = None):
    """Decode digit ``digit`` of ``images`` (N, 1, 28, 28) from its 7x7 codes, then with code ``code``
    written at (``row``, ``col``): both decodings and their difference (red: the code's 4x4 cell).

    ``codes`` (N, 7, 7) and ``decoded`` (N, 1, 28, 28): ``vqvae.encode(images)`` and its decoding, if
    already computed (the explorer computes them once, so a redraw decodes only the edited grid)."""
    with torch.no_grad():
        grid = vqvae.encode(images[digit:digit + 1]) if codes is None else codes[digit:digit + 1]
        edited = grid.clone()
        edited[0, row, col] = code
        before = (vqvae.decode(grid) if decoded is None else decoded[digit:digit + 1])[0, 0]
        after = vqvae.decode(edited)[0, 0]
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.6))
    axes[0].imshow(to_numpy(before), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"decoded, code {grid[0, row, col].item()} at ({row}, {col})", fontsize=9)
    axes[1].imshow(to_numpy(after), cmap="gray", vmin=0, vmax=1)
    axes[1].set_title(f"code {code} at ({row}, {col})", fontsize=9)
    axes[2].imshow(to_numpy(after - before), cmap="RdBu_r", vmin=-1, vmax=1)
    axes[2].set_title("difference (intensity)", fontsize=9)
    for ax in axes:
        ax.add_patch(plt.Rectangle((4 * col - 0.5, 4 * row - 0.5), 4, 4, fill=False, edgecolor=RED))
        ax.set_xlabel("column (pixels)")
    axes[0].set_ylabel("row (pixels)")
    fig.suptitle("Editing one code of the 7x7 grid (red: the code's 4x4 cell)")
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.2, top=0.8, wspace=0.3)  # (an explorer redraws it)
    return fig


def code_edit_explorer(vqvae, images):
    """Sliders over :func:`draw_code_edit`: which digit, which cell of the grid, which code."""
    import ipywidgets as widgets

    from arflow.viz.explorer import explorer

    with torch.no_grad():  # once: the codes of every digit and their decodings
        codes = vqvae.encode(images)
        decoded = vqvae.decode(codes)
    return explorer(lambda **values: draw_code_edit(vqvae, images, codes=codes, decoded=decoded, **values),
                    digit=widgets.IntSlider(0, 0, len(images) - 1, description="digit"),
                    row=widgets.IntSlider(3, 0, 6, description="row"),
                    col=widgets.IntSlider(3, 0, 6, description="col"),
                    code=widgets.IntSlider(0, 0, vqvae.num_embeddings - 1, description="code"))
