"""The vector quantizer of VQ-VAE: nearest neighbours, straight-through gradients, EMA updates, dead codes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arflow.models.vector_quantizer import VectorQuantizer, VectorQuantizerEMA, perplexity


def numpy_nearest(flat: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Brute force: every distance, in float64."""
    d = ((flat[:, None, :].astype(np.float64) - codebook[None, :, :].astype(np.float64)) ** 2).sum(-1)
    return d.argmin(1)


@pytest.mark.parametrize("cls", [VectorQuantizer, VectorQuantizerEMA])
def test_assignments_equal_numpy_nearest_neighbour(cls):
    torch.manual_seed(0)
    vq = cls(num_embeddings=20, embedding_dim=5).eval()
    with torch.no_grad():
        vq.codebook.copy_(torch.randn(20, 5))
    z_e = torch.randn(3, 5, 4, 6)
    out = vq(z_e)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 5).numpy()
    expected = numpy_nearest(flat, vq.codebook.detach().numpy()).reshape(3, 4, 6)
    np.testing.assert_array_equal(out["indices"].numpy(), expected)
    # quantize holds the chosen code vectors, channel-first like the input
    np.testing.assert_allclose(out["quantize"].permute(0, 2, 3, 1).detach().numpy(),
                               vq.codebook.detach().numpy()[expected], rtol=1e-6, atol=1e-6)
    # encodings are the one-hot of the indices
    assert out["encodings"].shape == (3, 4, 6, 20)
    assert torch.equal(out["encodings"].argmax(-1), out["indices"])
    assert torch.all(out["encodings"].sum(-1) == 1)


def test_flat_input_and_shapes():
    vq = VectorQuantizer(8, 3).eval()
    out = vq(torch.randn(10, 3))
    assert out["quantize"].shape == (10, 3) and out["indices"].shape == (10,)
    assert out["encodings"].shape == (10, 8)
    assert out["loss"].shape == () and out["perplexity"].shape == ()
    assert vq.lookup(out["indices"]).shape == (10, 3)
    assert vq.lookup(torch.zeros(2, 7, 7, dtype=torch.long)).shape == (2, 3, 7, 7)


def test_straight_through_gradient_reaches_the_encoder_unchanged():
    """dL/dz_e equals dL/dz_q: the decoder's input gradient is copied to the encoder's output."""
    torch.manual_seed(1)
    vq = VectorQuantizer(16, 4, commitment_cost=0.0).eval()
    z_e = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = vq(z_e)
    z_q = out["quantize"]
    z_q.retain_grad()
    weights = torch.randn_like(z_q)
    ((z_q * weights).sum() + (z_q ** 3).sum()).backward()  # any "decoder loss" of z_q
    assert torch.allclose(z_e.grad, z_q.grad)
    expected = weights + 3 * z_q.detach() ** 2
    assert torch.allclose(z_e.grad, expected, atol=1e-6)


def test_losses_match_their_definitions():
    torch.manual_seed(2)
    vq = VectorQuantizer(6, 3, commitment_cost=0.7).eval()
    z_e = torch.randn(5, 3, requires_grad=True)
    out = vq(z_e)
    z_k = vq.codebook[out["indices"]].detach()
    expected = ((z_e.detach() - z_k) ** 2).mean()
    assert out["commitment_loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert out["codebook_loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert out["loss"].item() == pytest.approx(1.7 * expected.item(), rel=1e-6)
    # the commitment term moves only the encoder, the codebook term only the codebook
    out["commitment_loss"].backward()
    assert vq.codebook.grad is None or torch.all(vq.codebook.grad == 0)
    assert torch.allclose(z_e.grad, 2 * (z_e.detach() - z_k) / z_e.numel())
    z_e.grad = None
    vq(z_e)["codebook_loss"].backward()
    assert z_e.grad is None or torch.all(z_e.grad == 0)
    assert vq.codebook.grad.abs().sum() > 0


def test_ema_update_against_a_hand_computation():
    vq = VectorQuantizerEMA(3, 2, decay=0.9, epsilon=0.0).train()
    codebook = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    with torch.no_grad():
        vq.embedding.copy_(codebook)
        vq.embed_sum.copy_(codebook)
    z_e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [9.0, 1.0]])  # codes 0, 0, 1; code 2 unused
    out = vq(z_e)
    assert out["indices"].tolist() == [0, 0, 1]
    # N_k <- 0.9 * 1 + 0.1 * n_k, with n = (2, 1, 0)
    n_k = torch.tensor([0.9 + 0.2, 0.9 + 0.1, 0.9])
    assert torch.allclose(vq.cluster_size, n_k)
    # m_k <- 0.9 m_k + 0.1 * (sum of the outputs assigned to k)
    m_k = torch.stack([0.9 * codebook[0] + 0.1 * torch.tensor([1.0, 1.0]),
                       0.9 * codebook[1] + 0.1 * torch.tensor([9.0, 1.0]),
                       0.9 * codebook[2]])
    assert torch.allclose(vq.embed_sum, m_k)
    assert torch.allclose(vq.codebook, m_k / n_k[:, None])
    # the quantized output used the codebook from before the update
    assert torch.allclose(out["quantize"], codebook[[0, 0, 1]])
    # EMA: the only loss is the commitment term, and the codebook is not a parameter
    assert out["loss"].item() == pytest.approx(0.25 * out["commitment_loss"].item())
    assert all(p is not vq.codebook for p in vq.parameters())


def test_ema_with_laplace_smoothing_keeps_the_total_count():
    vq = VectorQuantizerEMA(4, 2, decay=0.5, epsilon=1e-3).train()
    vq(torch.randn(7, 2))
    n = vq.cluster_size.sum()
    smoothed = (vq.cluster_size + 1e-3) / (n + 4e-3) * n
    assert smoothed.sum().item() == pytest.approx(n.item(), rel=1e-6)
    assert torch.allclose(vq.codebook, vq.embed_sum / smoothed[:, None])


def test_eval_mode_never_changes_the_codebook():
    vq = VectorQuantizerEMA(5, 2).eval()
    before = vq.codebook.clone()
    vq(torch.randn(9, 2))
    assert torch.equal(vq.codebook, before)


def test_perplexity():
    one_code = torch.nn.functional.one_hot(torch.zeros(10, dtype=torch.long), 4)
    all_codes = torch.nn.functional.one_hot(torch.arange(8) % 4, 4)
    assert perplexity(one_code).item() == pytest.approx(1.0, abs=1e-5)
    assert perplexity(all_codes).item() == pytest.approx(4.0, rel=1e-5)


@pytest.mark.parametrize("cls", [VectorQuantizer, VectorQuantizerEMA])
def test_dead_codes_are_reseeded_onto_encoder_outputs(cls):
    torch.manual_seed(3)
    vq = cls(4, 2, reseed_threshold=0.5, usage_decay=0.0).train()
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 100.0], [100.0, -100.0]]))
        if cls is VectorQuantizerEMA:
            vq.embed_sum.copy_(vq.codebook)
    z_e = torch.randn(16, 2) * 0.1  # all nearest to code 0: codes 1, 2, 3 are dead
    vq(z_e)
    assert vq.n_reseeded.item() == 3
    for k in (1, 2, 3):
        assert torch.isclose(vq.codebook[k], z_e).all(dim=1).any(), f"code {k} not moved onto an encoder output"
    assert (vq(z_e)["encodings"].sum(0) > 0).sum() > 1  # now more than one code is used


def test_no_reseeding_by_default():
    vq = VectorQuantizer(4, 2).train()
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 100.0], [100.0, -100.0]]))
    for _ in range(3):
        vq(torch.randn(16, 2) * 0.1)
    assert vq.n_reseeded.item() == 0 and vq.codebook[1, 0].item() == 100.0


@pytest.mark.parametrize("bad, error, match", [
    (torch.randn(2, 3, 4, 4), ValueError, "D=5"),
    (torch.randn(0, 5, 4, 4), ValueError, "empty batch"),
    (torch.randn(2, 5, 4), ValueError, r"\(B, D, H, W\)"),
    (torch.zeros(2, 5, dtype=torch.long), TypeError, "float"),
    (np.zeros((2, 5)), TypeError, "torch.Tensor"),
])
def test_bad_input_is_refused(bad, error, match):
    with pytest.raises(error, match=match):
        VectorQuantizer(8, 5)(bad)


def test_bad_indices_and_settings_are_refused():
    vq = VectorQuantizer(8, 5)
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        vq.lookup(torch.tensor([8]))
    with pytest.raises(TypeError, match="long"):
        vq.lookup(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="decay"):
        VectorQuantizerEMA(8, 5, decay=1.0)
    with pytest.raises(ValueError, match="commitment_cost"):
        VectorQuantizer(8, 5, commitment_cost=-1)
