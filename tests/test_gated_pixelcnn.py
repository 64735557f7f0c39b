"""The Gated PixelCNN: strict causality and no blind spot (by gradients), the loss, fast sampling."""

import math

import pytest
import torch
import torch.nn.functional as F

from arflow.analysis.gradients import pixel_field
from arflow.models.gated_pixelcnn import GatedPixelCNN, gate, shift_down, shift_right

torch.set_num_threads(1)


def causal_set(H, W, i, j):
    """Everything before (i, j) in raster order: rows above, and row i left of j."""
    past = torch.zeros(H, W, dtype=torch.bool)
    past[:i] = True
    past[i, :j] = True
    return past


@pytest.mark.parametrize("kernel_size,n_layers,H,W", [(3, 6, 7, 7), (5, 4, 6, 9), (3, 10, 5, 11)])
def test_field_is_exactly_the_past_no_blind_spot(kernel_size, n_layers, H, W):
    # deep enough for the field to cover the image: then it must be exactly the past
    torch.manual_seed(0)
    model = GatedPixelCNN(channels=4, n_layers=n_layers, kernel_size=kernel_size)
    for i, j in [(0, 0), (0, W - 1), (H - 1, 0), (H // 2, W // 2), (H - 1, W - 1), (2, W - 1)]:
        field = pixel_field(model, (H, W), (i, j))
        assert torch.equal(field, causal_set(H, W, i, j)), (i, j)


def test_pixel_above_right_is_seen_unlike_a_plain_masked_stack():
    # the blind spot of plain masked stacks lies up and to the right; here it is seen after 2 layers
    torch.manual_seed(0)
    model = GatedPixelCNN(channels=4, n_layers=2, kernel_size=3)
    field = pixel_field(model, (8, 8), (5, 3))
    assert field[4, 5] and field[3, 5]  # up-right pixels
    assert not field[5, 3:].any() and not field[6:].any()


def test_shallow_field_is_a_subset_of_the_past_and_bounded_by_the_reach():
    torch.manual_seed(1)
    model = GatedPixelCNN(channels=4, n_layers=2, kernel_size=5)
    H = W = 12
    field = pixel_field(model, (H, W), (9, 6))
    assert not (field & ~causal_set(H, W, 9, 6)).any()
    rows = torch.nonzero(field)[:, 0]
    assert rows.min().item() == 9 - model.field_reach()


def perturbation_field(model, x, i, j, **kw):
    """Which positions of an index input change the logits at (i, j) (index inputs have no gradient)."""
    base = model(x, **kw)[0, :, i, j]
    H, W = x.shape[-2:]
    seen = torch.zeros(H, W, dtype=torch.bool)
    for a in range(H):
        for b in range(W):
            y = x.clone()
            y[0, a, b] = (y[0, a, b] + 1) % model.n_values
            seen[a, b] = not torch.allclose(model(y, **kw)[0, :, i, j], base, atol=0, rtol=0)
    return seen


def test_index_input_with_conditioning_is_causal_on_a_7x7_grid():
    torch.manual_seed(0)
    model = GatedPixelCNN(n_values=16, channels=8, n_layers=6, kernel_size=3, input="index",
                          n_classes=3, cond_channels=2).eval()
    x = torch.randint(0, 16, (1, 7, 7))
    kw = {"labels": torch.tensor([1]), "cond": torch.randn(1, 2, 7, 7)}
    for i, j in [(0, 0), (3, 4), (6, 6)]:
        assert torch.equal(perturbation_field(model, x, i, j, **kw), causal_set(7, 7, i, j))


def test_labels_and_cond_change_the_output():
    torch.manual_seed(0)
    model = GatedPixelCNN(channels=4, n_layers=2, n_classes=10, cond_channels=1).eval()
    x = torch.rand(2, 1, 5, 5)
    cond = torch.randn(2, 1, 5, 5)
    a = model(x, torch.tensor([0, 0]), cond)
    b = model(x, torch.tensor([3, 3]), cond)
    c = model(x, torch.tensor([0, 0]), cond + 1)
    assert not torch.allclose(a, b) and not torch.allclose(a, c)


def test_nll_is_the_mean_cross_entropy_in_nats():
    torch.manual_seed(0)
    model = GatedPixelCNN(channels=4, n_layers=2)
    x = torch.randint(0, 256, (3, 1, 4, 5)).float() / 255
    logits = model(x)
    k = torch.round(x[:, 0] * 255).long()
    by_hand = -torch.log_softmax(logits, 1).gather(1, k[:, None])[:, 0].mean()
    assert torch.allclose(model.nll(x), by_hand)
    # an untrained model is close to uniform: about ln 256 nats
    assert abs(model.nll(x).item() - torch.log(torch.tensor(256.0)).item()) < 0.5


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="odd"):
        GatedPixelCNN(kernel_size=4)
    with pytest.raises(ValueError, match="input must be"):
        GatedPixelCNN(input="rgb")
    model = GatedPixelCNN(channels=4, n_layers=1)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        model(torch.rand(2, 5, 5))
    with pytest.raises(ValueError, match="n_classes=0"):
        model(torch.rand(1, 1, 5, 5), labels=torch.tensor([1]))
    conditional = GatedPixelCNN(channels=4, n_layers=1, n_classes=10)
    with pytest.raises(ValueError, match="labels"):
        conditional(torch.rand(1, 1, 5, 5))


def test_shifts_and_gate():
    x = torch.arange(6.0).view(1, 1, 2, 3)
    assert torch.equal(shift_down(x)[0, 0], torch.tensor([[0.0, 0, 0], [0, 1, 2]]))
    assert torch.equal(shift_right(x)[0, 0], torch.tensor([[0.0, 0, 1], [0, 3, 4]]))
    a = torch.randn(2, 4, 3)
    assert torch.allclose(gate(a), torch.tanh(a[:, :2]) * torch.sigmoid(a[:, 2:]))


@pytest.mark.parametrize("kind", ["intensity", "index"])
def test_fast_sampling_equals_naive_sampling(kind):
    torch.manual_seed(0)
    if kind == "intensity":
        model = GatedPixelCNN(channels=8, n_layers=3, kernel_size=3, n_classes=4)
        kw = {"labels": torch.tensor([0, 3])}
    else:
        model = GatedPixelCNN(n_values=8, channels=8, n_layers=2, kernel_size=5, input="index",
                              cond_channels=2)
        kw = {"cond": torch.randn(2, 2, 6, 9)}
    naive = model.sample(2, (6, 9), generator=torch.Generator().manual_seed(5), fast=False, **kw)
    fast = model.sample(2, (6, 9), generator=torch.Generator().manual_seed(5), fast=True, **kw)
    assert torch.equal(naive, fast)
    if kind == "intensity":
        assert naive.shape == (2, 1, 6, 9) and naive.dtype == torch.float32
        assert torch.equal(torch.round(naive * 255) / 255, naive)
    else:
        assert naive.shape == (2, 6, 9) and naive.dtype == torch.long
        assert naive.min() >= 0 and naive.max() < 8
    assert not torch.equal(naive[0], naive[1])


def test_sampling_follows_the_softmax_of_the_first_pixel():
    # the first pixel sees nothing: its samples follow softmax(logits at (0, 0)) exactly
    torch.manual_seed(0)
    model = GatedPixelCNN(n_values=4, channels=4, n_layers=1, input="index").eval()
    probs = F.softmax(model(torch.zeros(1, 1, 1, dtype=torch.long))[0, :, 0, 0], 0)
    samples = model.sample(4000, (1, 1), generator=torch.Generator().manual_seed(0))[:, 0, 0]
    freq = torch.bincount(samples, minlength=4).float() / 4000
    assert torch.allclose(freq, probs, atol=0.03)


def test_completion_keeps_the_given_prefix():
    torch.manual_seed(0)
    model = GatedPixelCNN(channels=4, n_layers=2, kernel_size=3)
    prefix = torch.randint(0, 256, (2, 1, 5, 5)).float() / 255
    out = model.sample(2, (5, 5), prefix=prefix, start=12, generator=torch.Generator().manual_seed(0))
    flat_in, flat_out = prefix.flatten(1), out.flatten(1)
    assert torch.equal(flat_in[:, :12], flat_out[:, :12])
    assert not torch.equal(flat_in[:, 12:], flat_out[:, 12:])


def test_bits_by_intensity_splits_the_test_bits_per_dim_exactly():
    from arflow.data import mnist, to_float
    from arflow.evaluate.convolutional import pixelcnn_bits_by_intensity, pixelcnn_bits_per_dim

    torch.manual_seed(0)
    model = GatedPixelCNN(256, 8, 2, 3, n_classes=10)
    rows = pixelcnn_bits_by_intensity(model, limit=20, batch_size=7)
    assert [(r["low"], r["high"]) for r in rows] == [(0, 0), (1, 127), (128, 251), (252, 255)]
    assert sum(r["fraction"] for r in rows) == pytest.approx(1.0)
    assert sum(r["share"] for r in rows) == pytest.approx(pixelcnn_bits_per_dim(model, limit=20), rel=1e-5)
    for r in rows:
        assert r["share"] == pytest.approx(r["fraction"] * r["bits_per_pixel"], rel=1e-9, abs=1e-12)
    # by hand: the background band is the pixels whose true value is 0
    images, labels = mnist("test", source="embedded", limit=20)
    x = to_float(images)
    with torch.no_grad():
        cost = F.cross_entropy(model(x, torch.as_tensor(labels.astype("int64"))), model.targets(x), reduction="none")
    zero = model.targets(x) == 0
    assert rows[0]["fraction"] == pytest.approx(zero.double().mean().item())
    assert rows[0]["bits_per_pixel"] == pytest.approx(cost[zero].mean().item() / math.log(2), rel=1e-5)
    with pytest.raises(ValueError, match="cover every value"):
        pixelcnn_bits_by_intensity(model, limit=2, bands=((0, 100), (102, 255)))
