"""Whole flows (RealNVP, Glow, the 2-D toy flow): round trips, log-dets against the brute-force
Jacobian of the whole model (float64), shapes, sampling, the recipes, and clear errors."""

import math

import pytest
import torch
from flow_helpers import randomize
from torch.autograd.functional import jacobian

from arflow.data.toy2d import gaussian_ring, two_moons
from arflow.models.gaussian import standard_normal_log_prob
from arflow.models.glow import Glow
from arflow.models.realnvp import RealNVP
from arflow.models.toy_flow import ToyFlow


def tiny_models():
    torch.manual_seed(0)
    return {
        "realnvp": RealNVP((1, 4, 4), n_scales=3, n_couplings=2, hidden=4),
        "realnvp additive": RealNVP((1, 4, 4), n_scales=2, n_couplings=1, hidden=4, affine=False),
        "glow LU": Glow((1, 4, 4), n_levels=2, n_steps=2, hidden=4),
        "glow plain": Glow((1, 4, 4), n_levels=2, n_steps=2, hidden=4, lu=False),
    }


@pytest.mark.parametrize("name", list(tiny_models()))
def test_model_round_trip_and_logdet_against_brute_force_jacobian(name):
    model = tiny_models()[name].double()
    x = torch.rand(6, 1, 4, 4, dtype=torch.float64) * 0.9 + 0.05
    model(x)  # actnorm initialisation on a first batch
    randomize(model)
    zs, logdet = model(x)
    assert sum(z[0].numel() for z in zs) == 16  # a bijection keeps the number of variables
    x_back, inverse_logdet = model.inverse(zs)
    assert torch.allclose(x_back, x, atol=1e-9) and torch.allclose(inverse_logdet, -logdet, atol=1e-9)
    assert torch.allclose(model.decode(model.encode(x)), x, atol=1e-9)
    for i in range(2):
        J = jacobian(lambda v: model.encode(v.view(1, 1, 4, 4)).view(-1), x[i].reshape(-1))
        assert torch.allclose(logdet[i], torch.linalg.slogdet(J)[1], atol=1e-7)
    # log p(x) = sum_k log N(z_k) + logdet
    expected = sum(standard_normal_log_prob(z) for z in zs) + logdet
    assert torch.allclose(model.log_prob(x), expected)


def test_standard_normal_log_prob_is_torch_normal_summed_per_example():
    z = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).flatten(1).sum(1)
    torch.testing.assert_close(standard_normal_log_prob(z), expected)


def test_multiscale_shapes_at_mnist_size():
    realnvp = RealNVP((1, 28, 28), n_scales=2, n_couplings=2, hidden=8)
    assert realnvp.z_shapes == [(2, 14, 14), (2, 14, 14)]
    shapes = [s for _, s in realnvp.describe()]
    assert (4, 14, 14) in shapes and shapes[-1] == (2, 14, 14)
    glow = Glow((1, 28, 28), n_levels=2, n_steps=1, hidden=8)
    assert glow.z_shapes == [(2, 14, 14), (8, 7, 7)]
    zs, logdet = glow(torch.rand(3, 1, 28, 28))
    assert [tuple(z.shape[1:]) for z in zs] == glow.z_shapes and logdet.shape == (3,)


def test_sampling_and_bits_per_dim():
    torch.manual_seed(1)
    model = Glow((1, 8, 8), n_levels=2, n_steps=1, hidden=8)
    x = torch.randint(0, 256, (5, 1, 8, 8)).float() / 255
    bpd = model.nll_bits_per_dim(x, torch.Generator().manual_seed(0))
    assert bpd.shape == (5,) and torch.all(torch.isfinite(bpd))
    again = model.nll_bits_per_dim(x, torch.Generator().manual_seed(0))
    assert torch.equal(bpd, again)  # seeded dequantization: a deterministic metric
    samples = model.sample(4, temperature=0.7, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (4, 1, 8, 8) and samples.min() >= 0 and samples.max() <= 1


def test_training_lowers_bits_per_dim():
    torch.manual_seed(2)
    model = RealNVP((1, 8, 8), n_scales=2, n_couplings=1, hidden=8)
    x = (torch.rand(32, 1, 8, 8) > 0.7).float()  # a very peaked toy data set
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = model.nll_bits_per_dim(x).mean().item()
    for _ in range(30):
        loss = model.nll_bits_per_dim(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.nll_bits_per_dim(x).mean().item() < first - 0.5


def test_model_errors():
    with pytest.raises(ValueError, match="cannot be squeezed"):
        RealNVP((1, 6, 6), n_scales=3)
    with pytest.raises(ValueError, match="cannot be squeezed"):
        Glow((1, 28, 28), n_levels=3)
    model = RealNVP((1, 4, 4), n_scales=2, n_couplings=1, hidden=4)
    with pytest.raises(ValueError, match="expected images"):
        model(torch.rand(2, 1, 5, 5))
    with pytest.raises(ValueError, match="flat latents"):
        model.decode(torch.randn(2, 15))


def test_toy_flow_round_trip_logdet_and_density_integrates_to_one():
    torch.manual_seed(3)
    flow = randomize(ToyFlow(n_layers=4, hidden=16), scale=0.2).double()
    x = torch.randn(5, 2, dtype=torch.float64)
    z, logdet = flow(x)
    assert torch.allclose(flow.inverse(z)[0], x, atol=1e-10)
    for i in range(3):
        J = jacobian(lambda v: flow(v[None])[0][0], x[i])
        assert torch.allclose(logdet[i], torch.linalg.slogdet(J)[1], atol=1e-10)
    assert len(flow.intermediate(x)) == 5 and torch.allclose(flow.intermediate(x)[-1], z)
    # The density is normalised: a Riemann sum over a wide grid is close to 1.
    grid = torch.linspace(-8, 8, 321, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="xy")
    with torch.no_grad():
        p = flow.log_prob(torch.stack([xx.flatten(), yy.flatten()], 1)).exp()
    assert math.isclose(p.sum().item() * (grid[1] - grid[0]).item() ** 2, 1.0, abs_tol=0.02)
    with pytest.raises(ValueError, match="expected points"):
        flow(torch.randn(3, 3))


def test_toy_data():
    a, b = two_moons(500, seed=0), two_moons(500, seed=0)
    assert a.shape == (500, 2) and torch.equal(a, b)
    assert abs(a.mean(0)).max() < 0.5
    ring = gaussian_ring(400, k=4, radius=2.0, std=0.01)
    assert torch.allclose(ring.norm(dim=1), torch.full((400,), 2.0), atol=0.05)
    with pytest.raises(ValueError, match="positive"):
        two_moons(0)


def test_recipes_are_registered_and_train_in_fast_mode():
    from arflow.train.checkpoints import load_recipes

    recipes = load_recipes()
    for name in ("toyflow_moons", "realnvp_mnist", "glow_mnist"):
        assert name in recipes
    recipe = recipes["glow_mnist"]
    model = recipe.build(recipe.model_config)
    history = recipe.train(model, recipe.training_config, {}, True)
    assert len(history.train) == 20 and history.eval
    value = recipe.evaluate(model, 20, {})
    assert math.isfinite(value) and value == recipe.evaluate(model, 20, {})


def test_learnt_noise_recipes_start_from_their_base_flow():
    from arflow.data import mnist, to_float
    from arflow.train.checkpoints import load_recipes

    recipes = load_recipes()
    for name, base_name in (("glow_mnist_vd", "glow_mnist"), ("realnvp_mnist_vd", "realnvp_mnist")):
        recipe, base_recipe = recipes[name], recipes[base_name]
        assert recipe.requires == (base_name,)
        state = recipe.build(recipe.model_config).state_dict()
        base_state = base_recipe.build(base_recipe.model_config).state_dict()
        # the same flow (names and shapes) plus a dequantizer
        assert {k: v.shape for k, v in state.items() if not k.startswith("dequantizer.")} == \
            {k: v.shape for k, v in base_state.items()}
        assert len(state) > len(base_state)
    # the run starts from the base flow's weights: with lr 0 nothing moves during its (fast) training
    recipe, base_recipe = recipes["glow_mnist_vd"], recipes["glow_mnist"]
    torch.manual_seed(0)
    base = base_recipe.build(base_recipe.model_config)
    with torch.no_grad():
        base.nll_bits_per_dim(to_float(mnist("train", limit=64)[0]))  # actnorm's data-dependent start
    model = recipe.build(recipe.model_config)
    recipe.train(model, {**recipe.training_config, "lr": 0.0}, {"glow_mnist": base}, True)
    state = model.state_dict()
    assert all(torch.equal(state[key], value) for key, value in base.state_dict().items())
    with pytest.raises(ValueError, match="glow_mnist does not fit"):
        recipe.train(recipe.build(recipe.model_config), recipe.training_config,
                     {"glow_mnist": recipes["realnvp_mnist"].build(recipes["realnvp_mnist"].model_config)}, True)


def test_flow_plots_area_ratio_interpolation_and_architecture():
    from arflow.analysis.flows import cell_area_ratios, interpolate, sinh_map
    from arflow.viz.flows import draw_architecture

    A = torch.tensor([[2.0, 0.5], [0.3, 1.5]], dtype=torch.float64)
    ratio, det = cell_area_ratios(lambda z: z @ A.T, n=5)
    assert torch.allclose(ratio, torch.full((5, 5), 2.85, dtype=torch.float64))  # |det A| = 3 - 0.15
    assert torch.allclose(det, ratio)
    g, f = sinh_map(1.7)
    z = torch.linspace(-3, 3, 7)
    assert torch.allclose(f(g(z)), z, atol=1e-5)
    model = Glow((1, 4, 4), n_levels=2, n_steps=1, hidden=4)
    xa, xb = torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4)
    path = interpolate(model, xa, xb, n=5)
    centre = lambda x: (torch.round(x * 255) + 0.5) / 256  # noqa: E731
    assert path.shape == (5, 1, 4, 4)
    assert torch.allclose(path[0], centre(xa)[0], atol=1e-5) and torch.allclose(path[-1], centre(xb)[0], atol=1e-5)
    fig = draw_architecture(model.describe())
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "step of flow x1" in texts and "Split" in texts and "z: 2x2x2" in texts
