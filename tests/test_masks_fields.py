"""Masks and analytic receptive fields, each checked against gradients through real convolutions."""

import pytest
import torch

from arflow.analysis.fields import (
    blind_spot,
    colour_field,
    gated_field,
    masked_stack_field,
    masked_stack_layers,
    raster_past,
)
from arflow.analysis.gradients import (
    gated_gradient_field,
    gradient_field,
    masked_stack_function,
    masked_stack_gradient_field,
)
from arflow.analysis.masks import channel_groups, colour_mask, group_centre_mask, mask_of_type, raster_mask

torch.set_num_threads(1)


def test_raster_mask_is_the_slide_mask():
    slide = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    assert torch.equal(raster_mask(5, include_center=False), slide.float())
    b = raster_mask(5, include_center=True)
    assert b[2, 2] == 1 and torch.equal(b - slide, torch.zeros(5, 5).index_put_((torch.tensor(2),) * 2,
                                                                               torch.tensor(1.0)))
    assert torch.equal(mask_of_type(3, "A"), torch.tensor([[1.0, 1, 1], [1, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="odd"):
        raster_mask(4, True)
    with pytest.raises(ValueError, match="'A' or 'B'"):
        mask_of_type(3, "C")


CASES = [((9, 9), (4, 4), 1, 3), ((9, 9), (6, 5), 3, 3), ((12, 10), (8, 2), 2, 5), ((12, 12), (11, 11), 4, 5),
         ((10, 10), (0, 7), 2, 3), ((14, 14), (9, 7), 2, 7)]


@pytest.mark.parametrize("image_size,pixel,n_layers,kernel_size", CASES)
@pytest.mark.parametrize("first_type", ["A", "B"])
def test_masked_stack_field_analytic_equals_gradients(image_size, pixel, n_layers, kernel_size, first_type):
    analytic = masked_stack_field(image_size, pixel, n_layers, kernel_size, first_type=first_type)
    by_gradient = masked_stack_gradient_field(image_size, pixel, n_layers, kernel_size, first_type=first_type)
    assert torch.equal(analytic, by_gradient)
    past = raster_past(image_size, pixel)
    if first_type == "A":
        assert not (analytic & ~past).any()  # causal
    else:
        assert analytic[pixel]  # type B in the first layer leaks the pixel itself


@pytest.mark.parametrize("image_size,pixel,n_layers,kernel_size", CASES)
def test_gated_field_analytic_equals_gradients(image_size, pixel, n_layers, kernel_size):
    analytic = gated_field(image_size, pixel, n_layers, kernel_size)
    assert torch.equal(analytic, gated_gradient_field(image_size, pixel, n_layers, kernel_size))
    parts = gated_field(image_size, pixel, n_layers, kernel_size, parts=True)
    assert torch.equal(parts["horizontal"] | parts["vertical"], analytic)
    i, _ = pixel
    assert not parts["vertical"][i:].any()  # the vertical stack only brings rows above
    assert not parts["horizontal"][:i].any() and not parts["horizontal"][i + 1:].any()


def test_plain_stack_has_a_blind_spot_and_the_gated_one_does_not():
    size, pixel = (12, 12), (8, 5)
    plain = masked_stack_field(size, pixel, 4, 3)
    spot = blind_spot(size, pixel, plain)
    assert spot.any()
    # the row just above is seen up to one column right of the pixel, two rows up to two columns...
    assert spot[7, 7:10].all() and not spot[7, :7].any()
    assert spot[6, 8:10].all() and not spot[6, :8].any()
    assert int(spot.sum()) == 3 + 2 + 1
    gated = gated_field(size, pixel, 4, 3)
    assert not blind_spot(size, pixel, gated).any()
    assert not (gated & ~raster_past(size, pixel)).any()
    # and the gated field contains the plain one
    assert not (plain & ~gated).any()


def test_step_by_step_layers_of_two_masked_layers():
    # the slide: the green pixel in layer 2 depends on a type-B neighbourhood of layer 1,
    # each of which depends on a type-A neighbourhood of the input
    layers = masked_stack_layers((9, 9), (5, 4), 2, 5)
    assert len(layers) == 3
    assert layers[2].sum() == 1
    assert torch.equal(layers[1], masked_stack_field((9, 9), (5, 4), 1, 5, first_type="B"))
    assert layers[0].sum() > layers[1].sum()


def test_field_grows_with_depth():
    sizes = [int(masked_stack_field((30, 30), (20, 15), n, 3).sum()) for n in range(1, 6)]
    assert sizes == sorted(sizes) and len(set(sizes)) == 5
    gated_sizes = [int(gated_field((30, 30), (20, 15), n, 3).sum()) for n in range(1, 6)]
    assert all(g > s for g, s in zip(gated_sizes, sizes))


def test_colour_masks_order_red_green_blue():
    assert torch.equal(group_centre_mask("A"), torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 1, 0]]))
    assert torch.equal(group_centre_mask("B"), torch.tensor([[1.0, 0, 0], [1, 1, 0], [1, 1, 1]]))
    assert channel_groups(6).tolist() == [0, 0, 1, 1, 2, 2]
    m = colour_mask(5, 3, 6, "A")
    assert m.shape == (6, 3, 5, 5)
    assert torch.equal(m[:, :, :2], torch.ones(6, 3, 2, 5))  # rows above: every colour
    assert not m[:, :, 3:].any()  # rows below: nothing


@pytest.mark.parametrize("n_layers", [1, 3])
def test_red_never_sees_green_or_blue_of_its_pixel_and_green_never_sees_blue(n_layers):
    size, (i, j), channels = (7, 7), (4, 3), 2
    fn = masked_stack_function(n_layers, 3, channels=channels, colour=True, seed=1)
    for colour in range(3):
        out = slice(colour * channels, (colour + 1) * channels)
        grad = gradient_field(fn, (1, 3, *size), (0, out, i, j))[0]  # (3, H, W): per input colour
        assert torch.equal(grad, colour_field(size, (i, j), colour, n_layers, 3))
        seen_here = grad[:, i, j].tolist()
        assert seen_here == [colour > 0, colour > 1, False]  # R: nothing; G: R; B: R and G
        outside = ~raster_past(size, (i, j))
        outside[i, j] = False
        assert not (grad.any(0) & outside).any()  # and nothing after the pixel, in any colour
