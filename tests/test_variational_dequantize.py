"""Variational dequantization: q(u | k)'s density by brute force, the bound it gives, and Glow's use of it."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from arflow.models.dequantize import discrete_bits_per_dim
from arflow.models.glow import Glow
from arflow.models.variational_dequantize import INITIAL_SIGMA, VariationalDequantizer


def _randomized(channels: int = 1, seed: int = 0) -> VariationalDequantizer:
    """A dequantizer whose mu and sigma depend on the image (the fresh one's do not)."""
    torch.manual_seed(seed)
    q = VariationalDequantizer(channels, hidden=8)
    with torch.no_grad():
        q.net[-1].weight.normal_(0, 0.3)
        q.net[-1].bias.normal_(0, 0.3)
    return q


def test_log_q_is_the_change_of_variables_from_the_normal_noise():
    """log q(u | k) = log N(eps) - log|du/deps|, the Jacobian taken by autograd (eps -> u is elementwise)."""
    q = _randomized(channels=2)
    x = torch.randint(0, 256, (1, 2, 3, 3)).float() / 255
    eps = torch.randn(1, 2, 3, 3, dtype=torch.float64)
    q = q.double()
    u, log_q = q.noise(x.double(), eps)
    jac = jacobian(lambda e: q.noise(x.double(), e)[0], eps).reshape(18, 18)
    assert torch.allclose(jac, torch.diag(torch.diagonal(jac)))  # each u reads only its own eps
    normal = -0.5 * (eps ** 2 + math.log(2 * math.pi)).sum()
    brute = normal - torch.log(torch.diagonal(jac).abs()).sum()
    assert log_q.item() == pytest.approx(brute.item(), abs=1e-9)
    assert bool(((u > 0) & (u < 1)).all())


def test_noise_stays_in_the_pixels_bin_and_depends_on_the_image():
    q = _randomized()
    k = torch.randint(0, 256, (64, 1, 5, 5))
    v, _ = q(k.float() / 255, torch.Generator().manual_seed(0))
    assert torch.equal(torch.floor(v * 256).long(), k)
    # mu and sigma read the neighbourhood: the same pixel value gets different noise in different images
    _, log_q_a = q.noise(torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 5, 5))
    _, log_q_b = q.noise(torch.ones(1, 1, 5, 5), torch.zeros(1, 1, 5, 5))
    assert not torch.allclose(log_q_a, log_q_b)


def test_the_bound_lies_below_the_discrete_log_likelihood_and_tightens_as_q_fits():
    """One pixel, p(v) = 2v on [0, 1]: P(k) = ((k+1)^2 - k^2) / 256^2 exactly. E_q[log p(v) - log q] - log 256
    must stay below log P(k), for the fresh (near-uniform) q and for any other q; a q that is
    wrong for this density (sigma 0.3, centred) must be looser than the near-uniform one."""
    k = torch.full((20000, 1, 1, 1), 3.0)
    exact = math.log(((3 + 1) ** 2 - 3 ** 2) / 256 ** 2)
    generator = torch.Generator().manual_seed(0)

    def bound(q):
        with torch.no_grad():
            v, log_q = q(k / 255, generator)
            return (torch.log(2 * v).flatten(1).sum(1) - log_q - math.log(256)).mean().item()

    fresh = VariationalDequantizer(1, hidden=4)
    narrow = VariationalDequantizer(1, hidden=4)
    with torch.no_grad():
        narrow.net[-1].bias[1] = math.log(0.3)
    assert bound(fresh) <= exact + 1e-3
    assert bound(narrow) <= exact + 1e-3
    assert bound(narrow) < bound(fresh) - 0.05
    assert bound(fresh) > exact - 0.05  # near-uniform noise: close to the uniform bound, which is tight here


def test_fresh_dequantizer_starts_near_uniform_noise():
    q = VariationalDequantizer(1)
    assert torch.allclose(q.net[-1].bias, torch.tensor([0.0, math.log(INITIAL_SIGMA)]))
    u, _ = q.noise(torch.zeros(1, 1, 100, 100), torch.randn(1, 1, 100, 100, generator=torch.Generator().manual_seed(0)))
    histogram = torch.histc(u, bins=4, min=0, max=1) / u.numel()
    assert torch.all((histogram > 0.2) & (histogram < 0.3))  # each quarter of the bin holds about a quarter


def test_glow_trains_its_dequantizer_on_the_bound():
    torch.manual_seed(0)
    flow = Glow((1, 8, 8), n_levels=2, n_steps=1, hidden=8, variational_dequantization=True)
    x = torch.randint(0, 256, (4, 1, 8, 8)).float() / 255
    bits = flow.nll_bits_per_dim(x, torch.Generator().manual_seed(1))
    v, log_q = flow.dequantizer(x, torch.Generator().manual_seed(1))
    assert torch.allclose(bits, discrete_bits_per_dim(flow.log_prob(v) - log_q, 64))
    bits.mean().backward()
    assert flow.dequantizer.net[-1].weight.grad.abs().sum() > 0
    assert Glow((1, 8, 8), n_levels=1, n_steps=1, hidden=8).dequantizer is None


def test_uniform_noise_scores_a_learnt_noise_flow_as_if_it_had_none():
    from arflow.models.dequantize import dequantize

    torch.manual_seed(0)
    flow = Glow((1, 8, 8), n_levels=2, n_steps=1, hidden=8, variational_dequantization=True)
    x = torch.randint(0, 256, (4, 1, 8, 8)).float() / 255
    uniform = flow.nll_bits_per_dim(x, torch.Generator().manual_seed(1), uniform_noise=True)
    by_hand = discrete_bits_per_dim(flow.log_prob(dequantize(x, torch.Generator().manual_seed(1))), 64)
    assert torch.allclose(uniform, by_hand)
    assert not torch.allclose(uniform, flow.nll_bits_per_dim(x, torch.Generator().manual_seed(1)))
    assert flow.dequantizer is not None  # nothing was switched off


def test_integer_images_are_refused():
    with pytest.raises(TypeError, match="float k/255"):
        VariationalDequantizer(1)(torch.zeros(1, 1, 2, 2, dtype=torch.uint8))
