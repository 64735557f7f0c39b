"""Causal 1-D convolutions: no output sees a later input (by gradients), fields match the formula."""

import pytest
import torch

from arflow.analysis.fields import causal_field_1d, causal_layers_1d
from arflow.analysis.gradients import gradient_field
from arflow.models.causal_conv import CausalConv1d, receptive_field_size

torch.set_num_threads(1)


def stack(kernel_size, dilations, channels=3):
    torch.manual_seed(0)
    layers = [CausalConv1d(1 if i == 0 else channels, channels, kernel_size, d) for i, d in enumerate(dilations)]

    def fn(x):
        for layer in layers:
            x = torch.tanh(layer.double()(x))
        return x
    return fn


@pytest.mark.parametrize("kernel_size,dilations", [(2, [1]), (3, [1, 1, 1]), (2, [1, 2, 4, 8]), (3, [1, 3, 9])])
def test_gradient_field_equals_the_analytic_field(kernel_size, dilations):
    T = 40
    fn = stack(kernel_size, dilations)
    for t in [0, 5, 17, T - 1]:
        grad = gradient_field(fn, (1, 1, T), (0, slice(None), t))[0, 0]
        assert torch.equal(grad, causal_field_1d(T, t, kernel_size, dilations)), t
        assert not grad[t + 1:].any()  # never a later input
        assert grad[t]  # the causal convolution sees the current input (the shift is in the targets)


def test_field_size_formula_and_contiguity_for_dilations_that_double():
    for depth in range(1, 8):
        dilations = [2 ** i for i in range(depth)]
        T = 300
        field = causal_field_1d(T, T - 1, 2, dilations)
        assert field.sum().item() == receptive_field_size(2, dilations) == 2 ** depth
        assert field[T - 2 ** depth:].all()  # contiguous: no holes with kernel 2 and doubling dilations


def test_dilations_with_gaps_leave_holes():
    field = causal_field_1d(30, 29, 2, [1, 4])  # reaches t, t-1, t-4, t-5 only
    assert torch.nonzero(field)[:, 0].tolist() == [24, 25, 28, 29]


def test_layers_of_the_diagram_start_at_the_output():
    layers = causal_layers_1d(16, 15, 2, [1, 2, 4])
    assert len(layers) == 4
    assert layers[-1].sum() == 1 and layers[-1][15]
    assert [int(layer.sum()) for layer in layers] == [8, 4, 2, 1]


def test_step_with_a_queue_equals_the_convolution():
    torch.manual_seed(0)
    layer = CausalConv1d(3, 5, kernel_size=3, dilation=4)
    x = torch.randn(2, 3, 30)
    full = layer(x)
    queue = layer.new_queue(2)
    outs = []
    for t in range(30):
        out, queue = layer.step(x[:, :, t], queue)
        outs.append(out)
    assert torch.allclose(torch.stack(outs, dim=2), full, atol=1e-6)
    assert torch.allclose(layer.queue_from(x), x[:, :, -9:])


def test_bad_input_raises():
    with pytest.raises(ValueError, match="dilation"):
        CausalConv1d(1, 1, 2, dilation=0)
    with pytest.raises(ValueError, match=r"\(B, C, T\)"):
        CausalConv1d(1, 1, 2)(torch.zeros(4, 10))
    with pytest.raises(IndexError):
        causal_field_1d(10, 10, 2, [1])
