"""The VAEs of the posterior-collapse demonstration: the ELBO's terms against hand computations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from arflow.models.vae import VAE, gaussian_kl

SMALL = {"latent_dim": 4, "hidden": 8, "cond_channels": 2, "pixelcnn_channels": 8, "pixelcnn_layers": 2}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _binary(n: int = 3) -> torch.Tensor:
    return (torch.rand(n, 1, 28, 28) > 0.7).float()


def test_gaussian_kl_matches_torch_distributions():
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-5)
    assert torch.all(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)) == 0)


@pytest.mark.parametrize("decoder", ["factorized", "pixelcnn"])
def test_elbo_terms(decoder):
    model = VAE(decoder=decoder, **SMALL).eval()
    x = _binary()
    out = model(x, generator=torch.Generator().manual_seed(1))
    assert out["mu"].shape == (3, 4) and out["logvar"].shape == (3, 4)
    assert out["loss"].item() == pytest.approx(out["recon"].item() + out["kl"].item(), rel=1e-6)
    assert out["kl"].item() == pytest.approx(gaussian_kl(out["mu"], out["logvar"]).mean().item(), rel=1e-6)
    # the reconstruction term is -log p(x | z) summed over the 784 pixels, in nats
    z = torch.randn(3, 4)
    if decoder == "factorized":
        p = torch.sigmoid(model.decoder(z))
        expected = -(x * p.log() + (1 - x) * (1 - p).log()).sum(dim=(1, 2, 3))
    else:
        log_probs = F.log_softmax(model.pixelcnn(x, cond=model.cond_net(z)), dim=1)
        expected = -log_probs.gather(1, x.long()).sum(dim=(1, 2, 3))
    assert torch.allclose(model.recon_nll(x, z), expected, rtol=1e-4)


def test_gradients_reach_the_encoder_through_the_reparameterisation():
    model = VAE(decoder="factorized", **SMALL)
    model(_binary())["recon"].backward()
    assert model.encoder[-1].weight.grad.abs().sum() > 0


def test_a_decoder_that_ignores_z_shows_no_latent_usage():
    model = VAE(decoder="pixelcnn", **SMALL).eval()
    with torch.no_grad():
        model.cond_net[0].weight.zero_()  # the conditioning map no longer depends on z
    usage = model.latent_usage(_binary(4))
    assert usage["gap"] == pytest.approx(0.0, abs=1e-4)
    model = VAE(decoder="factorized", **SMALL).eval()
    assert abs(model.latent_usage(_binary(4))["gap"]) > 1e-3


@pytest.mark.parametrize("decoder", ["factorized", "pixelcnn"])
def test_samples_are_binary_images(decoder):
    model = VAE(decoder=decoder, **SMALL).eval()
    samples = model.sample(2, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (2, 1, 28, 28)
    assert set(samples.unique().tolist()) <= {0.0, 1.0}
    assert model.reconstruct(_binary(2)).shape == (2, 1, 28, 28)


def test_training_logs_both_terms_of_the_elbo():
    from arflow.train.recipes.vqvae import VAE_MODEL, VAE_TRAINING, build_vae, train_vae

    model = build_vae({**VAE_MODEL, **SMALL, "decoder": "factorized"})
    history = train_vae(model, VAE_TRAINING, {}, fast=True)  # 10 steps
    assert [step for step, _ in history.series["kl"]] == list(range(1, 11))
    assert [step for step, _ in history.series["recon"]] == list(range(1, 11))
    assert all(v > 0 for _, v in history.series["kl"]) and all(v > 0 for _, v in history.series["recon"])
    assert "trace" not in model.state_dict()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="decoder must be one of"):
        VAE(decoder="transformer")
    model = VAE(**SMALL)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        model(torch.rand(2, 28, 28))
    with pytest.raises(ValueError, match="empty batch"):
        model(torch.rand(0, 1, 28, 28))
    with pytest.raises(ValueError, match=r"z must have shape \(B, 4\)"):
        model.decode(torch.zeros(2, 5))
