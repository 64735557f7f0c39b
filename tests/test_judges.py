"""The judges of generated samples (arflow.evaluate.judges): periodicity against a sine and noise,
the top-code swap on autoencoders whose answer is known, and the split prior of the flows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arflow.data import mnist, to_float
from arflow.data.signals import mu_law_encode
from arflow.evaluate import judges
from arflow.models.glow import Glow
from arflow.models.realnvp import RealNVP
from arflow.train.checkpoints import load_checkpoint


def test_periodicity_finds_a_sines_period_and_not_in_noise():
    t = np.arange(400)
    peak, lag = judges.periodicity(np.sin(2 * np.pi * t / 25))
    assert lag == 25 and peak > 0.9
    noise_peak, _ = judges.periodicity(np.random.default_rng(0).standard_normal(400))
    assert noise_peak < 0.3
    # a brute-force autocorrelation at the found lag
    x = np.sin(2 * np.pi * t / 25)
    x = x - x.mean()
    assert peak == pytest.approx((x[:-25] * x[25:]).sum() / (x * x).sum())


def test_window_periodicity_scores_each_whole_window():
    t = np.arange(1000)
    wave = np.where(t < 600, 0.5 * np.sin(2 * np.pi * t / 20), 0.0)
    wave[600:] = np.random.default_rng(1).uniform(-0.5, 0.5, 400)
    scores = judges.window_periodicity(mu_law_encode(wave), window=200)
    assert scores.shape == (5,)
    # a steady note: (200 - 20) / 200 = 0.9 (the sum runs over the overlap only); noise near 0
    assert (scores[:3] > 0.85).all() and (scores[3:] < 0.4).all()


class SwapProbe(torch.nn.Module):
    """An 'autoencoder' whose top codes are the image itself and bottom codes nothing, or the reverse."""

    def __init__(self, identity_in: str):
        super().__init__()
        self.identity_in = identity_in

    def encode(self, x):
        index = torch.arange(len(x))
        return (index, torch.zeros_like(index)) if self.identity_in == "top" else (torch.zeros_like(index), index)

    def decode(self, top, bottom):
        return self.x[top if self.identity_in == "top" else bottom]


@pytest.mark.parametrize("identity_in", ["top", "bottom"])
def test_top_swap_says_which_level_carries_the_digit(identity_in):
    images, labels = mnist("test", source="embedded", limit=200)
    model = SwapProbe(identity_in)
    model.x = to_float(images)
    result = judges.top_swap(model, load_checkpoint("digit_classifier"), model.x, torch.as_tensor(np.array(labels)))
    follows, other = ("follows_top", "follows_bottom") if identity_in == "top" else ("follows_bottom", "follows_top")
    assert result["pairs"] > 150
    assert result[follows] > 0.95 and result[other] < 0.05  # the classifier is right on ~99 % of test digits
    # the decoded picture *is* one source's digit: its stroke style correlates 1 with that source's
    level, other_level = follows.split("_")[1], other.split("_")[1]
    for style in ("thickness", "slant"):
        assert result[f"{style}_follows_{level}"] == pytest.approx(1.0)
        assert abs(result[f"{style}_follows_{other_level}"]) < 0.3  # unrelated digits


@pytest.mark.parametrize("flow", [Glow(n_levels=2, n_steps=1, hidden=8, learned_prior=True),
                                  RealNVP(n_scales=2, n_couplings=1, hidden=8, learned_prior=True)])
def test_learned_split_prior_is_a_gaussian_on_the_factored_half(flow):
    """log p(x) with the prior's coupling = log N(x_out; mu(h), sigma(h)^2) computed by hand."""
    from arflow.models.coupling import Coupling
    from arflow.models.split import Split

    torch.manual_seed(0)
    for p in flow.parameters():
        p.data.add_(0.05 * torch.randn_like(p))  # away from the identity start
    priors = [m for m in flow.modules() if isinstance(m, Coupling) and "prior" in m.label]
    assert len(priors) == 1
    prior = priors[0]
    split = next(m for m in flow.modules() if isinstance(m, Split))
    h = torch.randn(3, *split.input_shape)
    c = h.shape[1] // 2
    s, t = prior.scale_shift(h * prior.mask)
    z, logdet = prior(h)
    # the kept half is untouched; the factored half is standardised: z = x e^s + t
    assert torch.equal(z[:, :c], h[:, :c])
    mu, log_sigma = -t[:, c:] * torch.exp(-s[:, c:]), -s[:, c:]
    by_hand = torch.distributions.Normal(mu, log_sigma.exp()).log_prob(h[:, c:]).flatten(1).sum(1)
    via_flow = torch.distributions.Normal(0, 1).log_prob(z[:, c:]).flatten(1).sum(1) + logdet
    torch.testing.assert_close(via_flow, by_hand, atol=1e-4, rtol=1e-5)
    x, back = prior.inverse(z)
    torch.testing.assert_close(x, h, atol=1e-5, rtol=1e-5)
