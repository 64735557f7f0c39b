"""Visible checks and figures for home assignment 10_ar (the PixelCNN notebook).

Nothing here answers the assignment: these helpers compute what a correct answer must
produce (the expected kernel mask, the expected receptive field of a stack of masked
convolutions, both analytically) and probe the student's code with hand-built inputs and
nets whose conditionals are known. When a check fails it draws what was expected next to
what the student's code produced, then raises ``AssertionError`` with a sentence saying why.

Every check runs inside :func:`quiet`, so a warning or a progress bar written to stderr
by the student's code is shown on stdout instead (nbgrader gives no points to a test cell
that writes to stderr).
"""

from __future__ import annotations

import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn

from arflow.analysis.gradients import gradient_field
from arflow.checks import pixelcnn as _pc
from arflow.checks import pixelcnn_probes
from arflow.checks.box import LocalBox, quiet
from arflow.checks.result import CheckResult
from arflow.viz.primitives import draw_grid_values
from arflow.viz.receptive_fields import show_mask, show_receptive_field


def _show(fig) -> None:
    try:
        from IPython.display import display
        display(fig)
    except ImportError:  # plain Python: nothing to show
        pass
    plt.close(fig)


# The reference answers (the mask, the receptive field, the pixels before a pixel) live once, in
# arflow.checks.pixelcnn, with the visible checks that use them; the figures below draw them.
expected_mask, expected_field, strictly_before = _pc.expected_mask, _pc.expected_field, _pc.strictly_before


# --------------------------------------------------------------------------- figures
def compare_figure(expected: np.ndarray, found: np.ndarray, title: str, pixel: tuple[int, int] | None = None):
    """Expected and found masks (or receptive fields) side by side, with their difference."""
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    draw = (lambda a, ax, t: show_mask(a.astype(int), title=t, ax=ax)) if pixel is None else \
        (lambda a, ax, t: show_receptive_field(a, pixel, title=t, ax=ax))
    draw(expected, axes[0], "expected")
    draw(found, axes[1], "your code")
    diff = expected.astype(int) - found.astype(int)
    axes[2].imshow(diff, cmap="bwr_r", vmin=-1, vmax=1)
    axes[2].set_title("difference\nred: seen but should not be; blue: missing", fontsize=9)
    axes[2].set_xlabel("column (pixels)")
    axes[2].set_ylabel("row (pixels)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def conv_mask_of(conv_cls, kernel_size: int, blind_center: bool, in_channels: int = 1,
                 out_channels: int = 1) -> np.ndarray:
    """(k, k) bool: which inputs reach the centre output of ``conv_cls(...)``, found by gradients."""
    conv = conv_cls(in_channels, out_channels, kernel_size, blind_center=blind_center)
    k, c = kernel_size, kernel_size // 2
    field = gradient_field(copy.deepcopy(conv).double(), (1, in_channels, k, k), (0, slice(None), c, c))
    return field[0].any(dim=0).numpy()


def draw_masks(conv_cls, kernel_size: int = 5):
    """The two masks (blind centre or not) of the student's MaskedConv2d, found by gradients."""
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.6))
    for ax, blind in zip(axes, (True, False)):
        show_mask(conv_mask_of(conv_cls, kernel_size, blind).astype(int), ax=ax,
                  title=f"{kernel_size}x{kernel_size} mask, blind_center={blind}")
    fig.suptitle("Kernel masks of your MaskedConv2d (from gradients; red box: the centre)")
    fig.tight_layout()
    return fig


def draw_raster_order(image: np.ndarray, size: int = 8):
    """A digit next to the raster-order index of each pixel of its top-left ``size`` x ``size`` corner."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    axes[0].imshow(image, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("a digit (28 x 28 pixels)")
    axes[0].set_xlabel("column (pixels)")
    axes[0].set_ylabel("row (pixels)")
    H, W = image.shape
    order = np.arange(H * W).reshape(H, W)
    axes[1].imshow(order[:size, :size], cmap="viridis")
    draw_grid_values(axes[1], order[:size, :size], color="white", fontsize=7)
    axes[1].set_title(f"raster order: index i = {W} x row + column\n(top-left {size} x {size} corner)")
    axes[1].set_xlabel("column (pixels)")
    axes[1].set_ylabel("row (pixels)")
    fig.tight_layout()
    return fig


def model_field(model: nn.Module, image_size: tuple[int, int], pixel: tuple[int, int], tries: int = 4) -> np.ndarray:
    """(H, W) bool receptive field of output ``pixel``, by gradients, united over a few random inputs.

    One random input can hide a real dependence when every ReLU on its paths happens to be off;
    the union over ``tries`` inputs makes that vanishingly unlikely.
    """
    model = copy.deepcopy(model).double().eval()
    H, W = image_size
    field = np.zeros((H, W), bool)
    for seed in range(tries):
        g = gradient_field(model, (1, 1, H, W), (0, slice(None), *pixel), seed=seed)
        field |= g[0].any(dim=0).numpy()
    return field


def layer_fields(model: nn.Module, conv_cls, image_size: tuple[int, int], pixel: tuple[int, int],
                 tries: int = 4) -> list[np.ndarray]:
    """Receptive field of ``pixel`` after each ``conv_cls`` layer of ``model`` (in the order they run), by gradients.

    Forward hooks catch the output of every masked layer; each output at ``pixel`` is then
    differentiated with respect to the input image (united over ``tries`` random inputs).
    """
    model = copy.deepcopy(model).double().eval()
    H, W = image_size
    outputs: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda mod, inp, out: outputs.append(out))
               for m in model.modules() if isinstance(m, conv_cls)]
    fields: list[np.ndarray] = []
    try:
        for seed in range(tries):
            outputs.clear()
            x = torch.rand(1, 1, H, W, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
            x.requires_grad_(True)
            model(x)
            for n, out in enumerate(outputs):
                (grad,) = torch.autograd.grad(out[0, :, pixel[0], pixel[1]].sum(), x, retain_graph=True,
                                              allow_unused=True)
                found = np.zeros((H, W), bool) if grad is None else (grad[0, 0] != 0).numpy()
                if seed == 0:
                    fields.append(found)
                else:
                    fields[n] |= found
    finally:
        for handle in handles:
            handle.remove()
    return fields


def draw_layer_fields(model: nn.Module, conv_cls, image_size=(16, 16), pixel=(9, 8), layers=(1, 2, 3)):
    """The receptive field of ``pixel`` after the first few masked layers of ``model`` and after the whole model."""
    per_layer = layer_fields(model, conv_cls, image_size, pixel)
    shown = [(per_layer[n - 1], f"after {n} masked layer{'s' if n > 1 else ''}") for n in layers
             if n <= len(per_layer)]
    shown.append((model_field(model, image_size, pixel), f"the whole model ({len(per_layer)} masked layers)"))
    fig, axes = plt.subplots(1, len(shown), figsize=(3.3 * len(shown), 3.8), squeeze=False)
    for ax, (field, title) in zip(axes[0], shown):
        show_receptive_field(field, pixel, title=title, ax=ax)
    fig.suptitle(f"Receptive field of the green pixel {pixel} in your PixelCNN (blue: inputs it depends on), "
                 "by gradients")
    fig.tight_layout()
    return fig


def count_layers(model: nn.Module, conv_cls) -> int:
    return sum(isinstance(m, conv_cls) for m in model.modules())


def draw_fields(models: list[nn.Module], titles: list[str], image_size=(14, 14), pixel=(7, 7)):
    """Receptive fields (by gradients) of one output pixel for several models, side by side."""
    fig, axes = plt.subplots(1, len(models), figsize=(3.3 * len(models), 3.8), squeeze=False)
    for ax, model, title in zip(axes[0], models, titles):
        show_receptive_field(model_field(model, image_size, pixel), pixel, title=title, ax=ax)
    fig.suptitle(f"Receptive field of the green pixel {pixel} (blue: inputs it depends on), by gradients")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the visible checks
def run_visible(grade_id: str, namespace: dict) -> CheckResult:
    """The visible check ``grade_id`` (:data:`arflow.checks.pixelcnn.CHECKS`) on the objects in
    ``namespace``, answered in this process: the same function, probes and verdict as the grader's.

    A failure draws what was expected next to what the code produced (when the check has such a
    picture) and raises ``AssertionError`` with the reason; a pass prints one line.
    """
    with quiet():
        with LocalBox(namespace, pixelcnn_probes) as box:
            result = _pc.CHECKS[grade_id](box, seed=0)
    if not result.passed:
        figure = getattr(result, "figure", None)
        if figure is not None:
            _show(_failure_figure(figure))
        raise AssertionError("; ".join(result.failures()) + (" (see the figure)" if figure is not None else ""))
    print(f"{result.title}: the visible checks pass ({result.subchecks[0].name}).")
    return result


def _failure_figure(figure: dict):
    """Expected next to found, for a failed visible check."""
    if figure.get("chain"):
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
        for ax, img, title in zip(axes, (figure["expected"], figure["found"]), ("expected (raster order)",
                                                                                 "your sample")):
            ax.imshow(img, cmap="viridis", vmin=0, vmax=255)
            draw_grid_values(ax, img, color="white", fontsize=8)
            ax.set_title(title)
            ax.set_xlabel("column (pixels)")
            ax.set_ylabel("row (pixels)")
        fig.suptitle(figure["title"])
        fig.tight_layout()
        return fig
    return compare_figure(figure["expected"], figure["found"], figure["title"], pixel=figure.get("pixel"))


def check_masked_conv(conv_cls) -> None:
    """Shape, the mask for k = 3, 5 and both ``blind_center``, and the mask after Adam steps."""
    run_visible("test_masked_conv", {"MaskedConv2d": conv_cls})


def check_pixelcnn(model_cls, conv_cls) -> None:
    """Shape and dtype, and the receptive field (by gradients) of a few pixels against the analytic one."""
    run_visible("test_pixelcnn", {"PixelCNN": model_cls, "MaskedConv2d": conv_cls})


def check_loss_fn(loss_fn) -> None:
    """Uniform logits cost ln 256 nats; logits peaked at round(255 x) cost ~0 for every intensity."""
    run_visible("test_loss_fn", {"loss_fn": loss_fn})


def check_generate(generate) -> None:
    """Shape and values k/255; sampling (not argmax), each image on its own; raster order with a chain net."""
    run_visible("test_generate", {"generate": generate})
