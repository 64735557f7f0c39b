"""Units, device choice, receptive fields by gradients, and the plotting helpers (headless)."""

from __future__ import annotations

import math

import matplotlib.figure
import numpy as np
import pytest
import torch

from arflow import units, utils
from arflow.analysis import gradients as receptive
from arflow.viz import primitives as plotting
from arflow.viz import receptive_fields as rf


def test_bits_per_dim_matches_hand_computation():
    # A uniform distribution over 256 values costs exactly 8 bits per pixel.
    assert units.bits_per_dim(784 * math.log(256), 784) == pytest.approx(8.0)
    assert units.nats_to_bits(math.log(2)) == pytest.approx(1.0)
    assert units.bits_to_nats(1.0) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="n_dims must be positive"):
        units.bits_per_dim(1.0, 0)


def test_pick_device(monkeypatch):
    monkeypatch.delenv("ARFLOW_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert utils.pick_device().type == expected
    monkeypatch.setenv("ARFLOW_DEVICE", "cpu")
    assert utils.pick_device().type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            utils.pick_device("cuda")


def test_to_device_moves_every_tensor_of_a_nested_batch_and_keeps_its_shape():
    batch = {"x": torch.ones(2, 3), "pair": (torch.zeros(1), [torch.arange(3), "label"]), "n": 4}
    moved = utils.to_device(batch, "meta")  # a second device on a CPU-only machine
    assert moved["x"].device.type == "meta" and moved["x"].shape == (2, 3)
    assert isinstance(moved["pair"], tuple) and isinstance(moved["pair"][1], list)
    assert moved["pair"][0].device.type == moved["pair"][1][0].device.type == "meta"
    assert moved["pair"][1][1] == "label" and moved["n"] == 4
    assert batch["x"].device.type == "cpu"  # the input is left as it was


def test_model_device_is_where_the_parameters_are():
    assert utils.model_device(torch.nn.Linear(2, 1, device="meta")).type == "meta"
    assert utils.model_device(torch.nn.Linear(2, 1)).type == "cpu"
    assert utils.model_device(torch.nn.ReLU()).type == "cpu"  # no parameters


def test_fast_mode_reads_the_environment(monkeypatch):
    for value, expected in [("1", True), ("0", False), ("", False), ("yes", True)]:
        monkeypatch.setenv("ARFLOW_FAST", value)
        assert utils.fast_mode() is expected


def test_seed_everything_reproduces():
    utils.seed_everything(3)
    a = (torch.rand(3), np.random.rand(3))
    utils.seed_everything(3)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_gradient_field_of_a_known_convolution():
    # A 3x3 convolution without padding: output (0, 0) sees exactly the top-left 3x3 inputs.
    conv = torch.nn.Conv2d(1, 1, 3, bias=False).double()
    field = receptive.gradient_field(conv, (1, 1, 6, 6), (0, 0, 0, 0))
    expected = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
    expected[..., :3, :3] = True
    assert torch.equal(field, expected)


def test_pixel_field_respects_zeroed_weights_and_keeps_the_model_dtype():
    conv = torch.nn.Conv2d(1, 2, 3, padding=1)
    with torch.no_grad():
        conv.weight[:, :, 2, :] = 0  # nothing from the row below
    field = receptive.pixel_field(conv, (5, 5), (2, 2))
    assert field[1:3, 1:4].all() and not field[3].any() and field.sum() == 6
    assert conv.weight.dtype == torch.float32
    with pytest.raises(IndexError, match="outside an image"):
        receptive.pixel_field(conv, (5, 5), (5, 0))


def test_plotting_helpers_return_titled_figures():
    images = torch.rand(6, 1, 4, 4)
    fig = plotting.image_grid(images, nrow=2, title="grid")
    assert isinstance(fig, matplotlib.figure.Figure) and fig._suptitle.get_text() == "grid"
    fig = plotting.image_grid(images, nrow=2, row_labels=["label 0", "label 1"])
    assert [t.get_text() for t in fig.axes[0].texts] == ["label 0"] and fig.axes[3].texts[0].get_text() == "label 1"
    with pytest.raises(ValueError, match="3 entries for 2 rows"):
        plotting.image_grid(images, nrow=2, row_labels=["a", "b", "c"])
    fig = rf.show_mask(np.tril(np.ones((5, 5))), title="mask")
    assert fig.axes[0].get_title() == "mask" and fig.axes[0].get_xlabel() == "kernel column"
    field = np.zeros((5, 5), bool)
    field[:2] = True
    fig = rf.show_receptive_field(field, (2, 2))
    assert "10 input pixels" in fig.axes[0].get_title() and fig.axes[0].get_ylabel() == "row (pixels)"
    fig = plotting.bar_distribution(np.full(256, 1 / 256), true_value=3)
    assert fig.axes[0].get_ylabel() == "probability"
    with pytest.raises(ValueError, match=r"\(N, 1\|3, H, W\)"):
        plotting.image_grid(torch.rand(2, 2, 4, 4))
    with pytest.raises(ValueError, match="2-D"):
        rf.show_mask(np.ones((1, 3, 3)))


def test_sequence_support_of_a_cumulative_sum_is_lower_triangular():
    support = receptive.sequence_support(lambda h: h.cumsum(dim=1), torch.rand(1, 5, 3))
    assert torch.equal(support, torch.tril(torch.ones(5, 5, dtype=torch.bool)))
    with pytest.raises(ValueError, match=r"\(1, T, C\)"):
        receptive.sequence_support(lambda h: h, torch.rand(2, 5, 3))


def test_plot_history_draws_train_and_test_in_one_unit_or_on_two_axes():
    from arflow.train.loop import History

    history = History(train=[(1, math.log(2) * 6.0), (2, math.log(2) * 5.0)], eval=[(2, 5.5)])
    fig = plotting.plot_history(history, ylabel="bits per sample", train_scale=1 / math.log(2), window=1)
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and ax.get_ylabel() == "bits per sample"
    assert np.allclose(ax.lines[0].get_ydata(), [6.0, 5.0])  # nats drawn as bits: the test unit
    fig = plotting.plot_history(history, ylabel="loss (nats, weighted)", eval_ylabel="test (bits per token)")
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "test (bits per token)"
    assert np.allclose(fig.axes[1].lines[0].get_ydata(), [5.5])
