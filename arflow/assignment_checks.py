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

import contextlib
import copy
import io
import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from arflow.analysis.gradients import gradient_field
from arflow.viz.primitives import draw_grid_values
from arflow.viz.receptive_fields import show_mask, show_receptive_field


@contextlib.contextmanager
def quiet():
    """Capture stderr and warnings inside the block, then print them on stdout."""
    buffer = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(buffer):
        warnings.simplefilter("always")
        try:
            yield
        finally:
            text = buffer.getvalue().strip()
            messages = [f"{w.category.__name__}: {w.message}" for w in caught]
            if text or messages:
                print("(stderr / warnings from your code, shown here:)", *messages, text[-2000:], sep="\n")


def _show(fig) -> None:
    try:
        from IPython.display import display
        display(fig)
    except ImportError:  # plain Python: nothing to show
        pass
    plt.close(fig)


# --------------------------------------------------------------------------- analytic expectations
def expected_mask(kernel_size: int, blind_center: bool) -> np.ndarray:
    """(k, k) bool: the kernel positions a masked convolution may use (rows above; left in the centre row)."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}")
    k, c = kernel_size, kernel_size // 2
    rows, cols = np.mgrid[0:k, 0:k]
    before = (rows < c) | ((rows == c) & (cols < c))
    return before | ((rows == c) & (cols == c) & (not blind_center))


def expected_field(kernel_size: int, n_layers: int, image_size: tuple[int, int],
                   pixel: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the inputs that output ``pixel`` sees through ``n_layers`` masked k x k convolutions.

    The first layer is blind (``blind_center=True``), the rest are not. Computed by walking back
    from the output one layer at a time: a pixel q feeds p through a layer when p - q is a
    visible kernel offset of that layer.
    """
    H, W = image_size
    c = kernel_size // 2
    reach = np.zeros((H, W), bool)
    reach[pixel] = True
    for layer in reversed(range(n_layers)):
        offsets = np.argwhere(expected_mask(kernel_size, blind_center=(layer == 0))) - c
        new = np.zeros_like(reach)
        for di, dj in offsets:  # the input at p + (di, dj) feeds output p
            src = np.roll(np.roll(reach, di, axis=0), dj, axis=1)
            # np.roll wraps around: clear the rows/columns that wrapped.
            if di > 0:
                src[:di] = False
            elif di < 0:
                src[di:] = False
            if dj > 0:
                src[:, :dj] = False
            elif dj < 0:
                src[:, dj:] = False
            new |= src
        reach = new
    return reach


def strictly_before(image_size: tuple[int, int], pixel: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels before ``pixel`` in raster order (the only ones it may depend on)."""
    H, W = image_size
    index = np.arange(H * W).reshape(H, W)
    return index < pixel[0] * W + pixel[1]


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
def check_masked_conv(conv_cls) -> None:
    """Shape, mask (by gradients) for k = 3, 5 and both ``blind_center``, and the mask after Adam steps."""
    with quiet():
        torch.manual_seed(0)
        for k in (3, 5):
            for blind in (True, False):
                label = f"MaskedConv2d(2, 3, {k}, blind_center={blind})"
                conv = conv_cls(2, 3, k, blind_center=blind)
                x = torch.rand(2, 2, 7, 9)
                y = conv(x)
                assert tuple(y.shape) == (2, 3, 7, 9), \
                    f"{label} maps x of shape (2, 2, 7, 9) to {tuple(y.shape)}; expected (2, 3, 7, 9) (padding?)"
                expected = expected_mask(k, blind)
                found = conv_mask_of(conv_cls, k, blind, 2, 3)
                if not np.array_equal(found, expected):
                    _show(compare_figure(expected, found, f"{label}: which inputs reach the centre output"))
                    raise AssertionError(f"{label}: the centre output depends on the wrong inputs (see the figure)")
                # The mask must survive training: Adam with a large step moves every weight it can.
                optimizer = torch.optim.Adam(conv.parameters(), lr=0.5)
                for _ in range(3):
                    optimizer.zero_grad()
                    (conv(torch.rand(2, 2, 7, 9)) * torch.randn(2, 3, 7, 9)).sum().backward()
                    optimizer.step()
                c = k // 2
                trained = gradient_field(copy.deepcopy(conv).double(), (1, 2, k, k), (0, slice(None), c, c))
                found = trained[0].any(dim=0).numpy()
                if not np.array_equal(found, expected):
                    _show(compare_figure(expected, found, f"{label} after 3 Adam steps"))
                    raise AssertionError(f"{label}: after 3 Adam steps the mask no longer holds; apply it in "
                                         "every forward pass, not once in __init__")
    print("MaskedConv2d: the visible checks pass (shape; masks for k = 3, 5; the mask after training).")


def check_pixelcnn(model_cls, conv_cls) -> None:
    """Shape and dtype, and the receptive field (by gradients) of a few pixels against the analytic one."""
    with quiet():
        torch.manual_seed(0)
        model = model_cls(n_channels=16, kernel_size=3)
        x = torch.rand(2, 1, 10, 12)
        y = model(x)
        assert tuple(y.shape) == (2, 256, 10, 12), \
            f"PixelCNN maps x of shape (2, 1, 10, 12) to {tuple(y.shape)}; expected (2, 256, 10, 12)"
        assert y.dtype == torch.float32, f"logits have dtype {y.dtype}; expected torch.float32"
        n_layers = count_layers(model, conv_cls)
        assert n_layers >= 2, f"PixelCNN has {n_layers} MaskedConv2d layer(s); a stack needs at least 2"
        size = (10, 12)
        for pixel in ((5, 6), (0, 4), (9, 0)):
            found = model_field(model, size, pixel)
            expected = expected_field(3, n_layers, size, pixel)
            if not np.array_equal(found, expected):
                _show(compare_figure(expected, found, f"Receptive field of pixel {pixel}: {n_layers} masked 3x3 "
                                                      "layers (first blind)", pixel=pixel))
                bad = found & ~strictly_before(size, pixel)
                why = ("it depends on the pixel itself or later pixels: not causal" if bad.any()
                       else "it differs from a stack of masked convolutions (first blind, the rest not)")
                raise AssertionError(f"PixelCNN(n_channels=16, kernel_size=3): receptive field of pixel {pixel}: "
                                     f"{why} (see the figure)")
    print(f"PixelCNN: the visible checks pass (shape, dtype, receptive fields of {n_layers} masked layers).")


def check_loss_fn(loss_fn) -> None:
    """Uniform logits cost ln 256 nats; logits peaked at round(255 x) cost ~0 for every intensity."""
    with quiet():
        x = (torch.arange(256, dtype=torch.float32) / 255).reshape(1, 1, 16, 16)
        value = float(loss_fn(torch.zeros(1, 256, 16, 16), x))
        assert abs(value - math.log(256)) < 1e-4, (
            f"with all logits 0 (a uniform softmax) the loss should be ln 256 = {math.log(256):.4f} nats per "
            f"pixel; got {value:.4f}" + (" (that is in bits: use nats)" if abs(value - 8) < 1e-3 else ""))
        target = torch.round(x[:, 0] * 255).long()  # the class of each pixel, as the contract says
        logits = 30.0 * F.one_hot(target, 256).permute(0, 3, 1, 2).float()
        value = float(loss_fn(logits, x))
        assert value < 1e-3, (f"logits peaked at the class round(255 x) of every pixel should cost ~0; got {value:.4g} "
                              "nats per pixel: are the targets round(255 x) (not a truncation) for 0..255?")
        # The class is round(255 x) for any x: a value a little below k/255 is still class k.
        below = (torch.arange(256, dtype=torch.float32) - 0.3).clamp(min=0).reshape(1, 1, 16, 16) / 255
        value = float(loss_fn(logits, below))
        assert value < 1e-3, (f"x = (k - 0.3) / 255 belongs to class k = round(255 x), but with logits peaked at k "
                              f"the loss is {value:.4g} nats per pixel: round 255 x (torch.round), do not truncate "
                              "it with .long()")
        batch = torch.cat([x, x.flip(-1)])
        value2 = float(loss_fn(torch.zeros(2, 256, 16, 16), batch))
        assert abs(value2 - math.log(256)) < 1e-4, f"for a batch of 2, expected ln 256 per pixel, got {value2:.4f}"
    print("loss_fn: the visible checks pass (uniform logits: ln 256 nats per pixel; peaked logits: ~0).")


class KnownNet(nn.Module):
    """A hand-built 'model' with known conditionals, for testing a sampler.

    ``kind="fixed"``: every pixel has the categorical distribution softmax(logits), whatever the image.
    ``kind="chain"``: pixel t (raster order) is (pixel t-1 + step) mod 256 with certainty; pixel 0 is ``start``.
    """

    def __init__(self, kind: str, logits=None, start: int = 0, step: int = 1):
        super().__init__()
        if kind not in ("fixed", "chain"):
            raise ValueError(f"kind must be 'fixed' or 'chain', got {kind!r}")
        self.kind, self.start, self.step = kind, start, step
        self.anchor = nn.Parameter(torch.zeros(()))  # so that net.parameters() is not empty
        self.register_buffer("logits", torch.as_tensor(logits if logits is not None else torch.zeros(256)).float())

    def forward(self, x):
        B, _, H, W = x.shape
        if self.kind == "fixed":
            return self.logits.view(1, 256, 1, 1).expand(B, 256, H, W) + 0 * self.anchor
        values = torch.round(x[:, 0].reshape(B, H * W) * 255).long()
        first = torch.full((B, 1), (self.start - self.step) % 256, dtype=torch.long, device=x.device)
        target = (torch.cat([first, values[:, :-1]], dim=1) + self.step) % 256
        return 40.0 * F.one_hot(target, 256).float().permute(0, 2, 1).reshape(B, 256, H, W) + 0 * self.anchor


def check_generate(generate) -> None:
    """Shape and values k/255; raster order with a chain net; sampling (not argmax) with a fixed net."""
    with quiet():
        torch.manual_seed(0)
        logits = torch.full((256,), -30.0)
        logits[[40, 200]] = 0.0  # two equally likely values
        s = generate(KnownNet("fixed", logits), 4, image_size=(5, 7), device="cpu")
        s = torch.as_tensor(s)
        assert tuple(s.shape) == (4, 1, 5, 7), f"generate(net, 4, image_size=(5, 7)) returned {tuple(s.shape)}"
        assert torch.is_floating_point(s), f"samples should be floats k/255, got {s.dtype}"
        values = set(torch.round(s * 255).long().unique().tolist())
        assert values <= {40, 200}, (f"with P(40) = P(200) = 1/2 at every pixel, the samples hold the values "
                                     f"{sorted(values)[:8]} x 255 (return k/255, not k)")
        assert values == {40, 200}, ("with P(40) = P(200) = 1/2 at every pixel, all 140 pixels took the same value: "
                                     "sample from the softmax (torch.multinomial), not the argmax")
        H, W = 4, 6
        s = torch.as_tensor(generate(KnownNet("chain", start=10, step=37), 1, image_size=(H, W), device="cpu"))
        expected = (10 + 37 * torch.arange(H * W)).remainder(256).reshape(H, W)
        got = torch.round(s[0, 0] * 255).long()
        if not torch.equal(got, expected):
            fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
            for ax, img, title in zip(axes, (expected, got), ("expected (raster order)", "your sample")):
                ax.imshow(img.numpy(), cmap="viridis", vmin=0, vmax=255)
                draw_grid_values(ax, img, color="white", fontsize=8)
                ax.set_title(title)
                ax.set_xlabel("column (pixels)")
                ax.set_ylabel("row (pixels)")
            fig.suptitle("A net where each pixel = previous pixel (raster order) + 37 mod 256, first pixel 10")
            fig.tight_layout()
            _show(fig)
            raise AssertionError("the sample does not follow the chain (see the figure): sample pixel by pixel in "
                                 "raster order, each from the net's output for the image sampled so far")
    print("generate: the visible checks pass (shape, values k/255, random sampling, raster order).")
