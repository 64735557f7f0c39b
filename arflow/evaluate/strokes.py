"""The stroke style of digit images, measured without a classifier: how thick, how slanted.

Two numbers per image, each independent of which digit it is (to first order):

- :func:`stroke_thickness`: ink area over half the length of the ink's outline, in pixels.
  A straight stroke w pixels wide and L long has area wL and outline 2(w + L), so it measures
  wL / (L + w), close to w for long strokes; thickening every stroke by one pixel raises it.
- :func:`slant`: how far the ink leans, in pixels to the right per pixel up: the regression slope
  of column on row, cov(column, row) / var(row), weighted by intensity. An upright stroke is 0,
  one leaning right (top to the right) is positive.

Both read images (N, 1, H, W) with intensities in [0, 1] and return float64 arrays (N,).
"""

from __future__ import annotations

import numpy as np
import torch

INK = 0.5  # a pixel is ink when its intensity is at least this


def _check(images: torch.Tensor) -> torch.Tensor:
    images = torch.as_tensor(images)
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"expected images of shape (N, 1, H, W), got {tuple(images.shape)}")
    return images.detach().double()


def stroke_thickness(images: torch.Tensor) -> np.ndarray:
    """Ink area / (outline length / 2) of each image (N, 1, H, W) -> (N,), in pixels; 0 for no ink."""
    ink = (_check(images)[:, 0] >= INK).double()
    ink = torch.nn.functional.pad(ink, (1, 1, 1, 1))  # ink at the border still has an outline there
    outline = ((ink[:, :, 1:] - ink[:, :, :-1]).abs().sum((1, 2))
               + (ink[:, 1:] - ink[:, :-1]).abs().sum((1, 2)))
    area = ink.sum((1, 2))
    return (2 * area / outline.clamp(min=1)).numpy()


def slant(images: torch.Tensor) -> np.ndarray:
    """Slope of column on row of the ink, pixels right per pixel up, of each image (N, 1, H, W) -> (N,)."""
    w = _check(images)[:, 0].clamp(min=0)
    height, width = w.shape[-2:]
    up = (height - 1 - torch.arange(height, dtype=torch.float64))[:, None].expand(height, width)
    right = torch.arange(width, dtype=torch.float64)[None, :].expand(height, width)
    mass = w.sum((1, 2)).clamp(min=1e-12)
    mean_up = (w * up).sum((1, 2)) / mass
    mean_right = (w * right).sum((1, 2)) / mass
    d_up, d_right = up - mean_up[:, None, None], right - mean_right[:, None, None]
    covariance = (w * d_up * d_right).sum((1, 2))
    variance = (w * d_up ** 2).sum((1, 2)).clamp(min=1e-12)
    return (covariance / variance).numpy()
