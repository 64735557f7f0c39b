"""The receptive-field explorers draw headless, draw what the fields say, and redraw quickly."""

import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from arflow.analysis.fields import gated_field, masked_stack_field  # noqa: E402
from arflow.viz import receptive_fields as rf  # noqa: E402

torch.set_num_threads(1)


def test_causal_stack_diagram_reports_the_formula():
    fig = rf.draw_causal_stack(kernel_size=2, n_layers=4, dilated=True, output=30, length=32)
    title = fig.axes[0].get_title()
    assert "sees 16 inputs" in title and "= 16" in title
    fig_plain = rf.draw_causal_stack(kernel_size=3, n_layers=3, dilated=False, output=30, length=32)
    assert "sees 7 inputs" in fig_plain.axes[0].get_title()
    plt.close("all")


def test_growth_plot_has_both_curves_and_they_agree_with_counts():
    fig = rf.draw_field_growth(kernel_size=2, max_layers=6)
    lines = fig.axes[0].get_lines()
    plain, dilated, measured = (np.asarray(line.get_ydata()) for line in lines[:3])
    assert list(plain) == [2, 3, 4, 5, 6, 7]
    assert list(dilated) == [2, 4, 8, 16, 32, 64] == list(measured)
    plt.close(fig)


@pytest.mark.parametrize("kind", ["masked", "gated"])
def test_field_picture_codes_match_the_analytic_field(kind):
    size, pixel = (12, 12), (7, 5)
    picture, field = rf.field_picture(kind, size, pixel, 3, 3)
    expected = (masked_stack_field(size, pixel, 3, 3) if kind == "masked" else gated_field(size, pixel, 3, 3))
    assert torch.equal(field, expected)
    inside = np.isin(picture, [1, 2])
    inside[pixel] = False
    assert np.array_equal(inside, expected.numpy())
    assert picture[pixel] == 3
    assert (picture == 4).any() == (kind == "masked")  # the blind spot only in the plain stack
    with pytest.raises(ValueError, match="kind"):
        rf.field_picture("transformer", size, pixel, 3, 3)


def test_receptive_field_drawing_checks_against_gradients():
    for kind in ("masked", "gated"):
        fig = rf.draw_receptive_field(kind, n_layers=3, kernel_size=5, row=9, col=3)
        assert "analytic = gradients: True" in fig.axes[0].get_title()
        plt.close(fig)
    fig = rf.draw_receptive_field("masked", n_layers=2, kernel_size=3, mask_type="B", row=5, col=5)
    assert "sees ITSELF" in fig.axes[0].get_title()
    plt.close(fig)


def test_construction_frames_end_at_the_two_layer_field():
    frames = rf.construction_frames((9, 9), (5, 4), 5)
    assert frames[0][0] is None and not frames[0][2].any()
    assert len(frames) == 1 + 13  # a 5x5 type-B mask lets 13 layer-1 units through
    assert torch.equal(frames[-1][2], masked_stack_field((9, 9), (5, 4), 2, 5))
    sizes = [int(f[2].sum()) for f in frames]
    assert sizes == sorted(sizes)
    fig = rf.draw_construction((9, 9), (5, 4), 3)
    assert "gradients: True" in fig._suptitle.get_text()
    plt.close(fig)


def test_other_figures_draw():
    for fig in (rf.draw_mask(5, "A"), rf.draw_mask(3, "B"), rf.draw_depth_growth(3, (1, 2)),
                rf.draw_gated_footprints(5), rf.draw_colour_masks(5, "A"), rf.draw_colour_masks(3, "B")):
        assert isinstance(fig, plt.Figure) and fig.axes
        plt.close(fig)


def test_explorers_build_headless_and_redraw_fast():
    box = rf.receptive_field_explorer((12, 12))
    assert len(box.children) == 2
    assert rf.causal_stack_explorer() is not None
    began = time.perf_counter()
    fig = rf.draw_receptive_field("gated", n_layers=6, kernel_size=5, row=11, col=6, check=False)
    fig.canvas.draw()
    assert time.perf_counter() - began < 2.0  # well under a second unloaded; `make bench` measures it
    plt.close("all")
