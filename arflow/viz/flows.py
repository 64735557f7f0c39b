"""Figures of the flow lectures (06, 07), computed from the model code. Each returns a Figure."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import FancyBboxPatch

from arflow.analysis.flows import cell_area_ratios, density_through_map, sinh_map
from arflow.utils import to_numpy
from arflow.viz.palette import GREEN, LIGHT_BLUE, LIGHT_GREEN, LIGHT_GREY, LIGHT_ORANGE, LINE, RED, SILVER
from arflow.viz.primitives import draw_grid_values


# --------------------------------------------------------------------------- 1-D change of variables
def plot_change_of_variables_1d(a: float = 1.0, n: int = 20000, seed: int = 0):
    """z ~ N(0, 1), x = sinh(a z)/a: the map, and the pushed density against a histogram of samples."""
    g, f = sinh_map(a)
    z = torch.randn(n, generator=torch.Generator().manual_seed(seed))
    x = g(z)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    zs = torch.linspace(-4, 4, 400)
    axes[0].hist(z.numpy(), bins=80, density=True, color=LIGHT_BLUE, histtype="stepfilled", label="samples of z")
    axes[0].plot(zs, torch.exp(-zs ** 2 / 2) / math.sqrt(2 * math.pi), color=LINE, label="N(z; 0, 1)")
    axes[0].set(title="base density p(z)", xlabel="z", ylabel="density (per unit of z)")
    axes[0].legend(fontsize=8)
    axes[1].plot(zs, g(zs), color=GREEN)
    axes[1].set(title=f"invertible map x = sinh({a:g} z) / {a:g}", xlabel="z", ylabel="x")
    axes[1].grid(alpha=0.3)
    lim = float(np.quantile(np.abs(x.numpy()), 0.99))
    xs = torch.linspace(-lim, lim, 400)
    axes[2].hist(x.numpy(), bins=np.linspace(-lim, lim, 80), density=True, color=LIGHT_ORANGE,
                 histtype="stepfilled", label="samples x = g(z)")
    axes[2].plot(xs, density_through_map(f, xs), color=RED, label="p(z = f(x)) |f'(x)|")
    axes[2].set(title="pushed density p(x)", xlabel="x", ylabel="density (per unit of x)")
    axes[2].legend(fontsize=8)
    for ax in axes:  # few ticks: each tick label is laid out on every redraw of the explorer
        ax.locator_params(nbins=5)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.15, top=0.9, wspace=0.3)  # (an explorer redraws it)
    return fig


# --------------------------------------------------------------------------- 2-D change of area
def plot_grid_warp(fn, lims=(-2.5, 2.5), n: int = 12, title: str = "x = g(z)"):
    """A grid in z-space, the same grid after ``fn``, cells coloured by the change of area |det J|."""
    ticks = torch.linspace(lims[0], lims[1], n + 1, dtype=torch.float64)
    fine = torch.linspace(lims[0], lims[1], 200, dtype=torch.float64)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    ratio, _ = cell_area_ratios(fn, lims, n)
    xx, yy = torch.meshgrid(ticks, ticks, indexing="xy")
    mapped = fn(torch.stack([xx.flatten(), yy.flatten()], 1)).detach().view(n + 1, n + 1, 2).numpy()
    norm = plt.Normalize(vmin=0, vmax=float(max(2.0, ratio.max())))
    cmap = plt.get_cmap("coolwarm")
    axes[0].pcolormesh(xx.numpy(), yy.numpy(), np.ones((n, n)), cmap=cmap, norm=norm, edgecolors="k",
                       linewidth=0.3)
    axes[1].pcolormesh(mapped[..., 0], mapped[..., 1], ratio.numpy(), cmap=cmap, norm=norm, edgecolors="k",
                       linewidth=0.3)
    for t in ticks:  # draw the mapped grid lines finely, they are curves
        const = torch.full_like(fine, float(t))
        for line in (torch.stack([fine, const], 1), torch.stack([const, fine], 1)):
            axes[1].plot(*fn(line).detach().numpy().T, color="k", linewidth=0.4)
    axes[0].set(title="grid in z-space (area ratio 1 everywhere)", xlabel="$z_1$", ylabel="$z_2$")
    axes[1].set(title=f"the same grid after {title}", xlabel="$x_1$", ylabel="$x_2$")
    for ax in axes:
        ax.set_aspect("equal")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, label="area after / area before = |det J|")
    return fig


# --------------------------------------------------------------------------- 2-D flows
def plot_density_2d(log_prob, lims=(-3.0, 3.0), n: int = 150, ax=None, title: str = "model density"):
    """Heat map of exp(log_prob(points)) on a square grid; log_prob maps (N, 2) -> (N,) nats."""
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 4))
    grid = torch.linspace(lims[0], lims[1], n)
    xx, yy = torch.meshgrid(grid, grid, indexing="xy")
    with torch.no_grad():
        p = log_prob(torch.stack([xx.flatten(), yy.flatten()], 1)).exp().view(n, n)
    mesh = ax.pcolormesh(xx.numpy(), yy.numpy(), p.numpy(), cmap="viridis", shading="auto")
    (fig or ax.figure).colorbar(mesh, ax=ax, label="density p(x) (per unit area)")
    ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
    return fig or ax.figure


def plot_flow_layers(stages: list[torch.Tensor], titles: list[str] | None = None, colour=None,
                     lims: float = 3.5, suptitle: str = ""):
    """Scatter the same points after every layer of a 2-D flow (one panel per stage)."""
    k = len(stages)
    ncol = min(k, 5)
    nrow = math.ceil(k / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 2.7 * nrow), squeeze=False)
    colour = to_numpy(colour) if colour is not None else to_numpy(stages[0][:, 0])
    for i, ax in enumerate(axes.flat):
        if i >= k:
            ax.axis("off")
            continue
        p = to_numpy(stages[i])
        ax.scatter(p[:, 0], p[:, 1], c=colour, s=2, cmap="coolwarm")
        ax.set(xlim=(-lims, lims), ylim=(-lims, lims), aspect="equal",
               title=titles[i] if titles else f"h_{i}", xlabel="dim 1", ylabel="dim 2" if i % ncol == 0 else "")
        ax.tick_params(labelsize=6)
    fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- coupling layers, masks, squeeze
def show_matrix(matrix, title: str = "Jacobian dy/dx", ax=None, annotate: bool = True, labels=None):
    """A small matrix as a heat map (zeros white), entries written in the cells."""
    m = to_numpy(matrix)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.55 * m.shape[1] + 1.8, 0.55 * m.shape[0] + 1.2))
    vmax = float(np.abs(m).max()) or 1.0
    ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    if annotate:
        draw_grid_values(ax, np.round(m, 2), fmt="{:.2g}", fontsize=7)
    ax.set_xticks(range(m.shape[1]), labels if labels else range(1, m.shape[1] + 1), fontsize=7)
    ax.set_yticks(range(m.shape[0]), labels if labels else range(1, m.shape[0] + 1), fontsize=7)
    ax.set(xlabel="input entry j (x_j)", ylabel="output entry i (y_i)", title=title)
    return fig or ax.figure


def show_masks(masks: dict, suptitle: str = "binary masks b (1 = kept, 0 = transformed)"):
    """Draw masks of shape (C, H, W) or (H, W): one panel per channel (blue = 1 = kept)."""
    panels = []
    for name, mask in masks.items():
        m = to_numpy(mask)
        m = m[None] if m.ndim == 2 else m
        panels += [(f"{name}\nchannel {c}" if len(m) > 1 else name, m[c]) for c in range(len(m))]
    fig, axes = plt.subplots(1, len(panels), figsize=(1.9 * len(panels), 2.4), squeeze=False)
    for ax, (name, m) in zip(axes[0], panels):
        ax.imshow(m, cmap="Blues", vmin=-0.3, vmax=1.2)
        draw_grid_values(ax, m.astype(int), fontsize=8)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("column (pixels)", fontsize=7)
        ax.set_ylabel("row (pixels)", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def show_squeeze(x: torch.Tensor, y: torch.Tensor):
    """A labelled (1, C, H, W) tensor before and after squeeze (1, 4C, H/2, W/2), values written in."""
    x, y = to_numpy(x)[0], to_numpy(y)[0]
    n = len(x) + len(y)
    fig, axes = plt.subplots(1, n, figsize=(1.1 * x.shape[-1] * len(x) + 1.3 * n, 2.8), squeeze=False,
                             gridspec_kw={"width_ratios": [2] * len(x) + [1] * len(y)})
    colours = np.add.outer(np.arange(x.shape[1]) % 2, 2 * (np.arange(x.shape[2]) % 2))  # position in block
    for c, ax in enumerate(axes[0][:len(x)]):
        ax.imshow(colours, cmap="Pastel1", vmin=0, vmax=8)
        draw_grid_values(ax, x[c].astype(int))
        ax.set_title(f"input channel {c}\n{x.shape[1]}x{x.shape[2]}", fontsize=9)
    for c, ax in enumerate(axes[0][len(x):]):
        ax.imshow(np.full(y.shape[1:], c % 4), cmap="Pastel1", vmin=0, vmax=8)
        draw_grid_values(ax, y[c].astype(int))
        ax.set_title(f"output ch. {c}\n{y.shape[1]}x{y.shape[2]}", fontsize=9)
    for ax in axes[0]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("squeeze: each 2x2 block of a channel becomes 4 channels of one pixel "
                 "(colour = position inside the block)", fontsize=10)
    fig.tight_layout()
    return fig


def draw_architecture(description: list[tuple[str, tuple]], title: str = "multi-scale architecture"):
    """The flow of tensor shapes through a multi-scale flow (from ``MultiScaleFlow.describe()``).

    Consecutive identical layers are grouped ("Coupling x3"); a split sends half of the
    variables to z (drawn to the side).
    """
    groups = []
    for name, shape in description:
        if groups and groups[-1][0] == name and name not in ("Split", "Squeeze"):
            groups[-1][2] += 1
            groups[-1][1] = shape
        else:
            groups.append([name, shape, 1])
    # Glow's steps of flow (ActNorm, InvConv, Coupling) read better as one box.
    merged, i = [], 0
    while i < len(groups):
        if groups[i][0] == "ActNorm":
            j, count = i, 0
            while j + 2 < len(groups) and groups[j][0] == "ActNorm" and "coupling" in groups[j + 2][0]:
                count, j = count + 1, j + 3
            merged.append([f"step of flow x{count}\n(actnorm, 1x1 conv, coupling)", groups[j - 1][1], 1])
            i = j
        else:
            merged.append(groups[i])
            i += 1
    fig, ax = plt.subplots(figsize=(7.5, 0.62 * len(merged) + 0.8))
    for k, (name, shape, count) in enumerate(merged):
        y = len(merged) - k
        label = name + (f" x{count}" if count > 1 else "")
        colour = {"Split": LIGHT_ORANGE, "Squeeze": LIGHT_GREEN, "input x": LIGHT_GREY}.get(name, LIGHT_BLUE)
        ax.add_patch(FancyBboxPatch((0.05, y - 0.33), 0.5, 0.66, boxstyle="round,pad=0.02", fc=colour, ec="k"))
        ax.text(0.3, y, label, ha="center", va="center", fontsize=8)
        ax.text(0.6, y, "x".join(map(str, shape)) + f"  ({math.prod(shape)} numbers)", va="center", fontsize=8)
        if name == "Split":
            ax.annotate("", xy=(1.03, y), xytext=(0.93, y), arrowprops={"arrowstyle": "->", "color": RED})
            ax.text(1.04, y, f"z: {'x'.join(map(str, shape))}", va="center", color=RED, fontsize=8)
        if k + 1 < len(merged):
            ax.annotate("", xy=(0.3, y - 0.62), xytext=(0.3, y - 0.36), arrowprops={"arrowstyle": "->"})
    ax.annotate("", xy=(0.3, 0.25), xytext=(0.3, 0.64), arrowprops={"arrowstyle": "->", "color": RED})
    ax.text(0.34, 0.3, f"z: {'x'.join(map(str, merged[-1][1]))}", color=RED, fontsize=8)
    ax.set(xlim=(0, 1.3), ylim=(0.1, len(merged) + 0.7), title=title)
    ax.text(0.6, len(merged) + 0.45, "output shape C x H x W", fontsize=8, style="italic")
    ax.axis("off")
    return fig


# --------------------------------------------------------------------------- Glow
def plot_actnorm_statistics(before: torch.Tensor, after: torch.Tensor):
    """Per-channel mean and standard deviation of a batch (B, C, H, W) before and after actnorm.

    "Before" is drawn as bars, "after" as diamond markers: after actnorm's initialisation the means
    are zero, and a bar of height zero would be invisible. The mean panel's axis is symmetric about 0.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    for ax, stat, label in ((axes[0], "mean", "mean"), (axes[1], "std", "standard deviation")):
        largest = 0.0
        for offset, (t, name) in enumerate(((before, "before"), (after, "after"))):
            flat = t.detach().transpose(0, 1).flatten(1)
            values = (flat.mean(1) if stat == "mean" else flat.std(1, unbiased=False)).numpy()
            largest = max(largest, float(np.abs(values).max()))
            x = np.arange(len(values)) + 0.4 * offset - 0.2
            if name == "before":
                ax.bar(x, values, width=0.4, color=SILVER, label=name)
            else:
                ax.plot(x, values, "D", color=LINE, markersize=7, label=f"{name} (markers)")
        ax.axhline(0 if stat == "mean" else 1, color=RED, linestyle="--", linewidth=1,
                   label="target " + ("0" if stat == "mean" else "1"))
        ax.set_ylim(-1.6 * largest if stat == "mean" else 0, 1.6 * largest)  # room for the legend on top
        ax.set_xticks(np.arange(len(values)))
        ax.set(xlabel="channel", ylabel=f"{label} over the batch", title=f"per-channel {label}")
        ax.legend(fontsize=8, ncol=3, loc="upper center")
    fig.suptitle("actnorm's data-dependent initialisation, on its first batch")
    fig.tight_layout()
    return fig


def plot_logdet_cost(channels, plain_seconds, lu_seconds):
    """Measured cost of log|det W| (+ its gradient) against the number of channels c (log-log axes)."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.loglog(channels, np.array(plain_seconds) * 1e6, "o-", label="plain W: slogdet, O(c^3)")
    ax.loglog(channels, np.array(lu_seconds) * 1e6, "s-", label="LU: sum(log|s|), O(c)")
    ax.set(xlabel="channels c", ylabel="time per log|det W| + backward (microseconds)",
           title="cost of the 1x1 convolution's log-determinant")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return fig
