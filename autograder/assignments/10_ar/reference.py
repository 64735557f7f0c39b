"""The reference implementation of home assignment 10_ar (a simplified PixelCNN). SECRET: never released.

The solution cells of ``solutions/10_ar/pixelcnn.ipynb`` hold the same code (a test checks
that they agree); the hidden checks judge a submission against these functions, and the pass
threshold for the trained model is calibrated by training :class:`PixelCNN` with
:data:`DEFAULTS` (``python -m autograder calibrate``).

Shapes: images x (B, 1, H, W) float k/255 in [0, 1]; logits (B, 256, H, W).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

#: The notebook's default training settings (kept equal to the notebook's; a test checks).
DEFAULTS = {"n_channels": 32, "kernel_size": 5, "n_layers": 5, "batch_size": 32, "lr": 3e-3, "steps": 600,
            "seed": 0}


def causal_mask(kernel_size: int, blind_center: bool) -> torch.Tensor:
    """(k, k) float mask: 1 on the rows above the centre and left of it (and the centre unless blind)."""
    mask = torch.ones(kernel_size, kernel_size)
    c = kernel_size // 2
    mask[c, c + (0 if blind_center else 1):] = 0
    mask[c + 1:] = 0
    return mask


class MaskedConv2d(nn.Conv2d):
    """Same-size 2-D convolution whose kernel only sees pixels before (i, j) in raster order."""

    def __init__(self, in_channels, out_channels, kernel_size, blind_center=False):
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.register_buffer("mask", causal_mask(kernel_size, blind_center))

    def forward(self, x):
        # The mask is applied at every call, so no optimizer step can open a path to the future.
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class PixelCNN(nn.Module):
    """A stack of masked convolutions (the first blind) with ReLUs, then a 1x1 conv to 256 logits."""

    def __init__(self, n_channels=DEFAULTS["n_channels"], kernel_size=DEFAULTS["kernel_size"],
                 n_layers=DEFAULTS["n_layers"]):
        super().__init__()
        layers = [MaskedConv2d(1, n_channels, kernel_size, blind_center=True), nn.ReLU()]
        for _ in range(n_layers - 1):
            layers += [MaskedConv2d(n_channels, n_channels, kernel_size), nn.ReLU()]
        layers.append(nn.Conv2d(n_channels, 256, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        """x (B, 1, H, W) in [0, 1] -> logits (B, 256, H, W). Centred input helps the first layer."""
        return self.net(x - 0.5)


def loss_fn(logits, x):
    """Mean negative log-likelihood per pixel in nats; the class of pixel x is round(255 x)."""
    target = torch.round(x[:, 0] * 255).long()
    return F.cross_entropy(logits, target)


def generate(net, n_samples, image_size=(28, 28), device="cpu"):
    """Ancestral sampling in raster order: (n_samples, 1, H, W) floats k/255."""
    H, W = image_size
    x = torch.zeros(n_samples, 1, H, W, device=device)
    with torch.no_grad():
        for i in range(H):
            for j in range(W):
                probs = F.softmax(net(x)[:, :, i, j], dim=1)
                x[:, 0, i, j] = torch.multinomial(probs, 1)[:, 0].float() / 255
    return x


def bits_per_dim(nll_nats_per_pixel: float) -> float:
    return nll_nats_per_pixel / math.log(2)
