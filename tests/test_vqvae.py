"""VQ-VAE and VQ-VAE-2: shapes, codes, bad input, and the causality of the priors over the code grids."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from arflow.evaluate.autoencoders import code_histogram, reconstruction_mse
from arflow.models.gated_pixelcnn import GatedPixelCNN
from arflow.models.vqvae import VQVAE
from arflow.models.vqvae2 import VQVAE2, HierarchicalPrior, change_stroke_width, restyle_strokes, top_condition
from arflow.train.recipes.vqvae import fit_vqvae


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_vqvae_shapes_and_codes():
    model = VQVAE(num_embeddings=16, embedding_dim=4, hidden=16).eval()
    x = torch.rand(3, 1, 28, 28)
    out = model(x)
    assert out["x_hat"].shape == x.shape and out["z_e"].shape == (3, 4, 7, 7)
    assert out["indices"].shape == (3, 7, 7) and out["indices"].dtype == torch.long
    codes = model.encode(x)
    assert torch.equal(codes, out["indices"])
    images = model.decode(codes)
    assert images.shape == x.shape and images.min() >= 0 and images.max() <= 1
    # the decoder sees exactly the code vectors: decoding the codes reproduces the forward pass
    assert torch.allclose(images, out["x_hat"].clamp(0, 1), atol=1e-6)
    assert out["total_loss"].item() == pytest.approx(out["recon_loss"].item() + out["loss"].item(), rel=1e-6)


def test_encoding_never_updates_the_codebook():
    model = VQVAE(num_embeddings=8, embedding_dim=4, hidden=16, ema=True).train()
    before = model.quantizer.codebook.clone()
    model.encode(torch.rand(4, 1, 28, 28))
    assert torch.equal(model.quantizer.codebook, before) and model.training


def test_the_encoder_gets_the_decoders_gradient_through_the_quantizer():
    model = VQVAE(num_embeddings=8, embedding_dim=4, hidden=16, commitment_cost=0.0, ema=True).train()
    captured = {}
    model.decoder[0].register_forward_hook(lambda m, inputs, output: captured.update(z_q=inputs[0]))
    out = model(torch.rand(2, 1, 28, 28))
    out["z_e"].retain_grad()
    captured["z_q"].retain_grad()
    out["recon_loss"].backward()
    assert captured["z_q"].grad.abs().sum() > 0
    assert torch.allclose(out["z_e"].grad, captured["z_q"].grad)


def test_training_lowers_the_reconstruction_error_and_records_curves():
    x = torch.rand(32, 1, 28, 28).round()
    model = VQVAE(num_embeddings=8, embedding_dim=4, hidden=16, reseed_threshold=0.1)
    before = reconstruction_mse(model, x)
    history = fit_vqvae(model, x, steps=30, batch_size=16, lr=3e-3, log_every=10, progress=False)
    assert [step for step, _ in history.series["dead"]] == [10, 20, 30]
    assert [step for step, _ in history.series["reseeded"]] == [10, 20, 30]
    assert set(history.series) >= {"recon", "commitment", "perplexity", "used", "dead", "reseeded"}
    assert len(history.series["recon"]) == 30
    assert all(1.0 <= p <= 8.0 for _, p in history.series["perplexity"])
    assert reconstruction_mse(model, x) < before
    counts = code_histogram(model, x)
    assert counts.shape == (8,) and counts.sum().item() == 32 * 49


@pytest.mark.parametrize("bad, error, match", [
    (torch.rand(2, 1, 14, 14), ValueError, r"\(B, 1, 28, 28\)"),
    (torch.rand(0, 1, 28, 28), ValueError, "empty batch"),
    (torch.zeros(2, 1, 28, 28, dtype=torch.uint8), TypeError, "float"),
])
def test_vqvae_refuses_bad_images(bad, error, match):
    with pytest.raises(error, match=match):
        VQVAE(hidden=16)(bad)


def test_vqvae_refuses_bad_codes():
    model = VQVAE(num_embeddings=8, embedding_dim=4, hidden=16)
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        model.decode(torch.full((1, 7, 7), 8))
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        model.decode(torch.zeros(49, dtype=torch.long))


def test_vqvae2_shapes_and_round_trip():
    model = VQVAE2(num_embeddings_top=8, num_embeddings_bottom=8, embedding_dim=4, hidden=16).eval()
    x = torch.rand(2, 1, 28, 28)
    out = model(x)
    assert out["top"]["indices"].shape == (2, 4, 4) and out["bottom"]["indices"].shape == (2, 7, 7)
    top, bottom = model.encode(x)
    assert torch.allclose(model.decode(top, bottom), out["x_hat"].clamp(0, 1), atol=1e-6)
    with pytest.raises(ValueError, match=r"top codes \(B, 4, 4\)"):
        model.decode(bottom, top)


def test_vqvae2_top_only_term_is_the_error_of_the_top_codes_decoded_alone():
    torch.manual_seed(0)
    plain = VQVAE2(num_embeddings_top=8, num_embeddings_bottom=4, embedding_dim=4, hidden=16)
    weighted = VQVAE2(num_embeddings_top=8, num_embeddings_bottom=4, embedding_dim=4, hidden=16, top_only_weight=2.0)
    weighted.load_state_dict(plain.state_dict())
    x = torch.rand(3, 1, 28, 28)
    plain.eval(), weighted.eval()  # no codebook updates between the two calls
    out, out_w = plain(x), weighted(x)
    assert "top_only_loss" not in out
    top, _ = weighted.encode(x)
    by_hand = torch.nn.functional.mse_loss(weighted._decode_vectors(weighted.vq_t.lookup(top),
                                                                    torch.zeros(3, 4, 7, 7)), x)
    assert out_w["top_only_loss"].item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert out_w["total_loss"].item() == pytest.approx(out["total_loss"].item() + 2.0 * by_hand.item(), rel=1e-5)
    assert torch.allclose(weighted.decode_top(top), weighted._decode_vectors(
        weighted.vq_t.lookup(top), torch.zeros(3, 4, 7, 7)).clamp(0, 1))
    with pytest.raises(ValueError, match=r"top codes \(B, 4, 4\)"):
        weighted.decode_top(torch.zeros(3, 7, 7, dtype=torch.long))


def test_change_stroke_width_thickens_and_thins_in_place():
    from arflow.data import mnist, to_float
    from arflow.evaluate.strokes import stroke_thickness

    x = to_float(mnist("test", source="embedded", limit=64)[0])
    before = stroke_thickness(x)
    thicker = stroke_thickness(change_stroke_width(x, torch.ones(64)))
    thinner = stroke_thickness(change_stroke_width(x, -torch.ones(64)))
    assert (thicker > before).all() and thicker.mean() - before.mean() > 1.0
    assert (thinner <= before).all() and before.mean() - thinner.mean() > 0.5
    half = change_stroke_width(x, torch.full((64,), 0.5))
    assert torch.allclose(half, 0.5 * x + 0.5 * F.max_pool2d(x, 3, 1, 1))
    # values stay in [0, 1], and nothing changes farther than one pixel from the ink
    out = restyle_strokes(x, 1.0, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    far = F.max_pool2d((x > 0).float(), 3, 1, 1) == 0
    assert torch.equal(out[far], x[far])
    assert torch.equal(restyle_strokes(x, 0.0), x)


def test_top_restyle_feeds_the_top_encoder_a_restyled_digit_in_training_only():
    torch.manual_seed(0)
    model = VQVAE2(num_embeddings_top=8, num_embeddings_bottom=4, embedding_dim=4, hidden=16, top_restyle=1.0)
    x = torch.rand(3, 1, 28, 28)
    seen = []
    model.enc_b.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    model.eval()
    model(x)
    assert len(seen) == 1 and torch.equal(seen[0], x)  # evaluation: one encoder pass, on x itself
    seen.clear()
    model.train()
    torch.manual_seed(5)
    model(x)
    torch.manual_seed(5)
    expected = restyle_strokes(x, 1.0)
    assert len(seen) == 2 and torch.equal(seen[0], x) and torch.equal(seen[1], expected)
    with pytest.raises(ValueError, match="top_restyle"):
        VQVAE2(top_restyle=-1.0)


def test_top_condition_is_the_nearest_top_code():
    top = torch.arange(16).reshape(1, 4, 4)
    cond = top_condition(top, 16)
    assert cond.shape == (1, 16, 7, 7)
    for i in range(7):
        for j in range(7):
            assert cond[0, :, i, j].argmax().item() == top[0, 4 * i // 7, 4 * j // 7].item()


def _code_gradients(prior: GatedPixelCNN, codes: torch.Tensor, position: tuple[int, int], cond=None):
    """|d logits(position) / d embedding of every code| (H, W): which codes the prediction sees."""
    leaf = {}

    def swap(module, inputs, output):
        leaf["e"] = output.detach().requires_grad_(True)
        return leaf["e"]

    handle = prior.embed.register_forward_hook(swap)
    try:
        logits = prior(codes, cond=cond)
        logits[0, :, position[0], position[1]].sum().backward()
    finally:
        handle.remove()
    return leaf["e"].grad[0].abs().sum(-1)  # embedding output is (B, H, W, C)


@pytest.mark.parametrize("position", [(0, 0), (3, 3), (6, 2), (2, 6)])
def test_prior_over_the_code_grid_is_causal(position):
    prior = GatedPixelCNN(16, channels=8, n_layers=4, kernel_size=3, input="index")
    codes = torch.randint(16, (1, 7, 7))
    grad = _code_gradients(prior, codes, position)
    i, j = position
    before = torch.zeros(7, 7, dtype=torch.bool)
    before.view(-1)[:i * 7 + j] = True  # strictly earlier in raster order
    assert torch.all(grad[~before] == 0), "the prediction of a code sees itself or a later code"
    if i > 0 or j > 0:
        assert grad[before].sum() > 0


def test_bottom_prior_is_causal_in_the_bottom_codes_and_sees_the_top():
    prior = HierarchicalPrior(8, 8, channels=8, n_layers=3, kernel_size=3)
    top = torch.randint(8, (1, 4, 4))
    bottom = torch.randint(8, (1, 7, 7))
    cond = top_condition(top, 8).requires_grad_(True)
    grad = _code_gradients(prior.bottom, bottom, (4, 3), cond=cond)
    later = torch.ones(7, 7, dtype=torch.bool)
    later.view(-1)[:4 * 7 + 3] = False
    assert torch.all(grad[later] == 0)
    assert cond.grad[0, :, 4, 3].abs().sum() > 0  # the top code above the position is seen


def test_hierarchical_prior_samples_and_bits():
    prior = HierarchicalPrior(8, 6, channels=8, n_layers=2, kernel_size=3)
    top, bottom = prior.sample(3, generator=torch.Generator().manual_seed(0))
    assert top.shape == (3, 4, 4) and bottom.shape == (3, 7, 7)
    assert top.max() < 8 and bottom.max() < 6 and top.min() >= 0 and bottom.min() >= 0
    nll_t, nll_b = prior.nll(top, bottom)
    bits = prior.bits_per_image(top, bottom).item()
    assert bits == pytest.approx((16 * nll_t.item() + 49 * nll_b.item()) / 0.6931471805599453, rel=1e-5)
    with pytest.raises(ValueError, match="long codes"):
        top_condition(top.float(), 8)
