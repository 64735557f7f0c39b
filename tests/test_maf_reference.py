"""The maths of the reference MADE / MAF of assignment 11_maf (autograder/assignments/11_maf/reference.py).

Dependencies by gradients (strictly triangular in the ordering), round trips, log_det against the
brute-force Jacobian (``torch.autograd.functional.jacobian`` + slogdet), sampling = the inverse of
Gaussian noise, and the data helpers of :mod:`arflow.checks.maf` against hand-computed values.
Training within the time budget is measured by hand (see checks.REFERENCE_BPD), not here.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch

from arflow.checks import maf as helpers

reference = importlib.import_module("autograder.assignments.11_maf.reference")

ORDERINGS = {"natural": [0, 1, 2, 3, 4], "reversed": [4, 3, 2, 1, 0], "shuffled": [2, 0, 4, 1, 3]}


def jacobian(fn, x: torch.Tensor) -> torch.Tensor:
    """(B, D_out, D) Jacobian of a row-wise function, example by example, in float64."""
    return torch.stack([torch.autograd.functional.jacobian(lambda v: fn(v[None])[0], row) for row in x])


@pytest.mark.parametrize("name", ORDERINGS)
@pytest.mark.parametrize("hidden", [(), (4,), (9, 7), (5, 12, 6)])
def test_mask_connectivity_is_strictly_triangular_in_the_ordering(name, hidden):
    ordering = ORDERINGS[name]
    masks = [m.numpy() for m in reference.made_masks(5, hidden, ordering)]
    assert [m.shape for m in masks] == list(zip([*hidden, 5], [5, *hidden]))
    assert all(set(np.unique(m)) <= {0.0, 1.0} for m in masks)
    reach = helpers.connectivity(masks)
    assert not (reach & ~helpers.allowed(ordering)).any()
    if all(h >= 4 for h in hidden):  # wide enough: every allowed pair is connected, every unit used
        assert np.array_equal(reach, helpers.allowed(ordering))
        for k in range(len(hidden)):
            assert masks[k].any(axis=1).all() and masks[k + 1].any(axis=0).all()


def test_mask_counts_by_hand():
    # D = 3, natural order, hidden (2,): degrees 0, 1. Unit 0 sees input 0; unit 1 sees inputs 0, 1.
    # Output 1 reads unit 0; output 2 reads both; output 0 reads nothing.
    m1, m2 = (m.numpy() for m in reference.made_masks(3, [2], [0, 1, 2]))
    assert m1.tolist() == [[1, 0, 0], [1, 1, 0]]
    assert m2.tolist() == [[0, 0], [1, 0], [1, 1]]
    assert helpers.allowed([0, 1, 2]).sum() == 3  # D (D - 1) / 2 pairs


@pytest.mark.parametrize("bad", [[0, 0, 1, 2], [1, 2, 3, 4], [0, 1, 2]])
def test_a_bad_ordering_is_refused(bad):
    with pytest.raises(ValueError, match="permutation"):
        reference.made_masks(4, [5], bad)


@pytest.mark.parametrize("name", ORDERINGS)
@pytest.mark.parametrize("hidden", [(16,), (24, 24)])
def test_made_dependency_by_gradients_is_exactly_the_allowed_one(name, hidden):
    ordering = ORDERINGS[name]
    torch.manual_seed(0)
    made = reference.MADE(5, hidden, ordering).double()
    x = torch.randn(32, 5, dtype=torch.float64)
    for index in (0, 1):  # mu, log_scale
        jac = jacobian(lambda v, i=index: made(v)[i], x)
        dep = helpers.dependency(jac.numpy())
        assert np.array_equal(dep, helpers.allowed(ordering)), (index, dep.astype(int))


def test_made_masks_survive_training():
    torch.manual_seed(1)
    made = reference.MADE(4, (12,), [3, 1, 0, 2])
    optimizer = torch.optim.Adam(made.parameters(), lr=0.5)
    for _ in range(5):
        optimizer.zero_grad()
        mu, log_scale = made(torch.randn(8, 4))
        (mu * torch.randn(8, 4) + log_scale * torch.randn(8, 4)).sum().backward()
        optimizer.step()
    jac = jacobian(lambda v: made(v)[0], torch.randn(16, 4))
    assert not (helpers.dependency(jac.detach().numpy()) & ~helpers.allowed([3, 1, 0, 2])).any()


@pytest.mark.parametrize("name", ORDERINGS)
def test_layer_round_trip_log_det_and_triangular_jacobian(name):
    ordering = ORDERINGS[name]
    torch.manual_seed(2)
    layer = reference.MAFLayer(5, (16, 16), ordering).double()
    x = torch.randn(6, 5, dtype=torch.float64)
    z, log_det = layer(x)
    assert z.shape == (6, 5) and log_det.shape == (6,)
    jac = jacobian(lambda v: layer(v)[0], x)
    brute = torch.linalg.slogdet(jac).logabsdet
    assert torch.allclose(log_det, brute, atol=1e-10)
    dep = helpers.dependency(jac.detach().numpy())
    assert np.array_equal(dep, helpers.allowed(ordering) | np.eye(5, dtype=bool))
    with torch.no_grad():
        assert torch.allclose(layer.inverse(z), x, atol=1e-10)
        w = torch.randn(6, 5, dtype=torch.float64)
        assert torch.allclose(layer(layer.inverse(w))[0], w, atol=1e-10)


def test_one_pass_is_not_an_inverse():
    """The D sequential passes matter: the MADE evaluated once at z (or at 0) does not invert the layer."""
    torch.manual_seed(3)
    layer = reference.MAFLayer(4, (8,)).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    with torch.no_grad():
        z, _ = layer(x)
        mu, log_scale = layer.made(z)
        assert (z * torch.exp(log_scale) + mu - x).abs().max() > 1e-3


def test_maf_log_prob_is_the_change_of_variables_with_the_brute_force_jacobian():
    torch.manual_seed(4)
    maf = reference.MAF(n_inputs=4, n_layers=3, hidden_sizes=(10,)).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    jac = jacobian(lambda v: maf(v)[0], x)
    z, log_det = maf(x)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1) + torch.linalg.slogdet(jac).logabsdet
    assert torch.allclose(maf.log_prob(x), expected, atol=1e-10)
    assert torch.allclose(log_det, torch.linalg.slogdet(jac).logabsdet, atol=1e-10)
    # alternating orderings: the stack is not triangular in one ordering, only its layers are
    assert not helpers.is_acyclic(helpers.dependency(jac.detach().numpy()))
    with torch.no_grad():
        assert torch.allclose(maf.inverse(z), x, atol=1e-9)


def test_a_1d_maf_integrates_to_one():
    """With D = 2 the density can be integrated on a grid: it must sum to 1 (up to the grid's error)."""
    torch.manual_seed(5)
    maf = reference.MAF(n_inputs=2, n_layers=2, hidden_sizes=(8,)).double()
    side = torch.linspace(-9, 9, 601, dtype=torch.float64)
    gx, gy = torch.meshgrid(side, side, indexing="ij")
    with torch.no_grad():
        density = maf.log_prob(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)).exp()
    cell = float(side[1] - side[0]) ** 2
    assert abs(float(density.sum()) * cell - 1) < 1e-2


def test_sampling_is_the_inverse_of_gaussian_noise():
    torch.manual_seed(6)
    maf = reference.MAF(n_inputs=3, n_layers=2, hidden_sizes=(6,))
    torch.manual_seed(7)
    samples = maf.sample(2000)
    torch.manual_seed(7)
    noise = torch.randn(2000, 3)
    with torch.no_grad():
        assert torch.allclose(samples, maf.inverse(noise))
        z, _ = maf(samples)
    assert torch.allclose(z, noise, atol=1e-4)
    assert z.mean(0).abs().max() < 0.1 and (z.std(0) - 1).abs().max() < 0.1


def test_data_helpers_by_hand():
    images = np.zeros((1, 1, 28, 28), np.uint8)
    images[0, 0, :2, :2] = [[0, 255], [255, 255]]  # mean 191.25 -> 191
    k = helpers.downscale(images)
    assert k.shape == (1, 196) and k[0, 0] == 191 and k[0, 1:].sum() == 0
    x, log_jac = helpers.to_logit(np.array([[0.0, 255.0]]), np.array([[0.5, 0.5]]))
    s = 0.05 + 0.9 * np.array([0.5, 255.5]) / 256
    assert np.allclose(x, np.log(s / (1 - s)), atol=1e-6)
    assert np.isclose(log_jac[0], np.sum(np.log(0.9 / (s * (1 - s)))))
    assert np.allclose(helpers.from_logit(x), np.array([[0.5, 255.5]]) / 256, atol=1e-6)
    # a uniform density on [0, 1]^D scores exactly 8 bits/dim: log p_y = 0 = log p_x + log_jac
    assert helpers.bits_per_dim(-log_jac, log_jac, n_dims=2) == pytest.approx(8.0)
    assert helpers.bits_per_dim(np.array([-2 * math.log(2)]) - log_jac, log_jac, 2) == pytest.approx(9.0)


def test_is_acyclic():
    assert helpers.is_acyclic(np.tril(np.ones((4, 4)), -1) > 0)
    assert helpers.is_acyclic(helpers.allowed([2, 0, 3, 1]))
    assert not helpers.is_acyclic(np.array([[0, 1], [1, 0]], bool))
