"""Stroke style measures (arflow.evaluate.strokes) against shapes whose thickness and slant are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arflow.evaluate.strokes import slant, stroke_thickness


def bar(width: int, length: int, lean: float = 0.0, size: int = 28) -> torch.Tensor:
    """A stroke (1, 1, size, size): rows 4 .. 4+length, columns starting at 10, shifted ``lean`` px right per row up."""
    image = torch.zeros(1, 1, size, size)
    bottom = 4 + length - 1
    for row in range(4, 4 + length):
        left = 10 + round(lean * (bottom - row))
        image[0, 0, row, left:left + width] = 1.0
    return image


@pytest.mark.parametrize("width, length", [(1, 20), (2, 16), (3, 20), (4, 10)])
def test_thickness_of_a_straight_stroke_is_area_over_half_its_outline(width, length):
    assert stroke_thickness(bar(width, length))[0] == pytest.approx(width * length / (width + length))


def test_thickness_grows_with_the_stroke_and_ignores_faint_ink():
    widths = stroke_thickness(torch.cat([bar(w, 20) for w in (1, 2, 3, 4, 5)]))
    assert np.all(np.diff(widths) > 0.5)
    faint = bar(3, 20) + 0.3 * bar(8, 20)  # grey below the ink threshold beside the stroke
    assert stroke_thickness(faint.clamp(0, 1))[0] == pytest.approx(stroke_thickness(bar(3, 20))[0])
    assert stroke_thickness(torch.zeros(2, 1, 28, 28)).tolist() == [0.0, 0.0]


def test_ink_at_the_border_still_has_an_outline():
    full = torch.ones(1, 1, 4, 6)  # a 4 x 6 block of ink: area 24, outline 2 (4 + 6)
    assert stroke_thickness(full)[0] == pytest.approx(2 * 24 / 20)


@pytest.mark.parametrize("lean", [-0.5, 0.0, 0.25, 0.5])
def test_slant_is_the_lean_in_pixels_right_per_pixel_up(lean):
    assert slant(bar(1, 20, lean))[0] == pytest.approx(lean, abs=0.03)


def test_slant_matches_a_weighted_least_squares_fit_in_numpy():
    image = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    w = image[0, 0].double().numpy()
    rows, cols = np.indices(w.shape)
    up = 27 - rows
    slope = np.polyfit(up.ravel(), cols.ravel(), 1, w=np.sqrt(w.ravel()))[0]
    assert slant(image)[0] == pytest.approx(slope, rel=1e-8)


def test_wrong_shapes_are_refused_with_the_expected_shape():
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        stroke_thickness(torch.zeros(28, 28))
