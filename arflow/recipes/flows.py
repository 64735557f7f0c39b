"""Checkpoint recipes of the flow lectures (07, 08): a 2-D toy flow, RealNVP and Glow on MNIST.

RealNVP and Glow are compared at a similar number of parameters on the same data, and their
step counts are set so that both train for about the same wall-clock time on one CPU thread
(a RealNVP step costs about three Glow steps: its first couplings run at full 28x28 resolution).
"""

from __future__ import annotations

import torch

from arflow.checkpoints import Recipe, register
from arflow.data import make_loader, mnist, to_float
from arflow.models.glow import Glow
from arflow.models.realnvp import RealNVP
from arflow.models.toy_flow import ToyFlow
from arflow.toy_data import two_moons
from arflow.training import fit

EVAL_SEED = 1234  # dequantization noise of evaluations: fixed, so that a metric re-measures exactly


# --------------------------------------------------------------------------- 2-D toy flow
def toy_test_points(limit: int | None = None) -> torch.Tensor:
    points = two_moons(2000, seed=1)
    return points[:limit] if limit is not None else points


def _train_toy(model: ToyFlow, config: dict, fast: bool):
    data = two_moons(512 if fast else config["n_train"], seed=0)
    loader = make_loader(data, batch_size=config["batch_size"], seed=0)
    steps = 30 if fast else config["steps"]
    test = toy_test_points(500)
    return fit(model, lambda m, batch: -m.log_prob(batch[0]).mean(), loader, steps, lr=config["lr"],
               eval_fn=lambda m: -m.log_prob(test).mean().item(), eval_every=max(steps // 10, 1),
               desc="toy flow")


def _evaluate_toy(model: ToyFlow, limit: int | None) -> float:
    model.eval()
    with torch.no_grad():
        return -model.log_prob(toy_test_points(limit)).mean().item()


register(Recipe(
    name="toyflow_moons",
    build=lambda config: ToyFlow(**config["model"]),
    train=_train_toy,
    evaluate=_evaluate_toy,
    config={"model": {"dim": 2, "n_layers": 8, "hidden": 64}, "n_train": 20000, "batch_size": 256,
            "steps": 3000, "lr": 2e-3},
    metric="test NLL (nats per 2-D point)",
    data="two moons generated in code (arflow.toy_data.two_moons: 20,000 train, seed 0; 2,000 test, seed 1)",
))


# --------------------------------------------------------------------------- MNIST flows
def mnist_test_bits_per_dim(model, limit: int | None = None, batch_size: int = 250) -> float:
    """Mean test bits/dim on the first ``limit`` test digits, dequantized with fixed noise."""
    x = to_float(mnist("test", limit=limit)[0])
    generator = torch.Generator().manual_seed(EVAL_SEED)
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    with torch.no_grad():
        for chunk in x.split(batch_size):
            total += model.nll_bits_per_dim(chunk.to(device), generator).sum().item()
    return total / len(x)


def _train_mnist(model, config: dict, fast: bool):
    images, _ = mnist("train", limit=256 if fast else None)
    device = next(model.parameters()).device
    loader = make_loader(to_float(images), batch_size=config["batch_size"], seed=0)
    steps = 20 if fast else config["steps"]
    return fit(model, lambda m, batch: m.nll_bits_per_dim(batch[0].to(device)).mean(), loader, steps,
               lr=config["lr"], clip_grad=config.get("clip_grad"),
               eval_fn=lambda m: mnist_test_bits_per_dim(m, 64 if fast else 200),
               eval_every=max(steps // 5, 1), desc=config["desc"])


register(Recipe(
    name="realnvp_mnist",
    build=lambda config: RealNVP(**config["model"]),
    train=_train_mnist,
    evaluate=mnist_test_bits_per_dim,
    config={"model": {"input_shape": [1, 28, 28], "n_scales": 2, "n_couplings": 2, "hidden": 32},
            "batch_size": 64, "steps": 400, "lr": 1e-3, "clip_grad": 50.0, "desc": "RealNVP"},
))

register(Recipe(
    name="glow_mnist",
    build=lambda config: Glow(**config["model"]),
    train=_train_mnist,
    evaluate=mnist_test_bits_per_dim,
    config={"model": {"input_shape": [1, 28, 28], "n_levels": 2, "n_steps": 3, "hidden": 24, "lu": True},
            "batch_size": 64, "steps": 1200, "lr": 1e-3, "clip_grad": 50.0, "desc": "Glow"},
))
