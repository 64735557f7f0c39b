"""Checkpoint recipes of the flow lectures (06, 07): a 2-D toy flow, RealNVP and Glow on MNIST.

``realnvp_mnist_vd`` and ``glow_mnist_vd`` are the same two flows trained further with learnt
(variational) dequantization noise, starting from the shipped uniform-noise weights.

RealNVP and Glow train on the same data with the same optimiser and schedule; their sizes and step
counts, and the time each took, are in their manifests.
"""

from __future__ import annotations

import dataclasses

import torch

from arflow.data import make_loader, mnist, to_float
from arflow.data.toy2d import two_moons
from arflow.evaluate.flows import mnist_test_bits_per_dim, toy_nll, toy_test_points
from arflow.evaluate.judges import judge_flow
from arflow.models.glow import Glow
from arflow.models.realnvp import RealNVP
from arflow.models.toy_flow import ToyFlow
from arflow.train.checkpoints import digit_classifier
from arflow.train.loop import History, fit
from arflow.train.recipe import Recipe
from arflow.train.schedules import cosine


# --------------------------------------------------------------------------- 2-D toy flow
def train_toy(model: ToyFlow, config: dict, inputs: dict, fast: bool) -> History:
    data = two_moons(512 if fast else config["n_train"], seed=0)
    loader = make_loader(data, batch_size=config["batch_size"], seed=0)
    steps = 30 if fast else config["steps"]
    test = toy_test_points(500)
    return fit(model, lambda m, batch: -m.log_prob(batch[0]).mean(), loader, steps, lr=config["lr"],
               eval_fn=lambda m: -m.log_prob(test).mean().item(), eval_every=max(steps // 10, 1),
               desc="toy flow")


TOYFLOW = Recipe(
    name="toyflow_moons",
    build=lambda config: ToyFlow(**config),
    train=train_toy,
    evaluate=lambda model, limit, inputs: toy_nll(model, limit),
    model_config={"dim": 2, "n_layers": 8, "hidden": 64},
    training_config={"n_train": 20000, "batch_size": 256, "steps": 3000, "lr": 2e-3},
    metric="test NLL (nats per 2-D point)",
    data="two moons generated in code (arflow.data.toy2d.two_moons: 20,000 train, seed 0; 2,000 test, seed 1)",
)


# --------------------------------------------------------------------------- MNIST flows
def train_mnist_flow(model, config: dict, inputs: dict, fast: bool) -> History:
    """Adam with a linear warm-up and a cosine learning rate; loss in bits/dim of dequantized digits."""
    images, _ = mnist("train", limit=256 if fast else None)
    loader = make_loader(to_float(images), batch_size=config["batch_size"], seed=0)
    steps = 20 if fast else config["steps"]
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    return fit(model, lambda m, batch: m.nll_bits_per_dim(batch[0]).mean(), loader, steps,
               optimizer=optimizer, scheduler=cosine(optimizer, steps, warmup=min(config["warmup"], steps)),
               clip_grad=config.get("clip_grad"), eval_fn=lambda m: mnist_test_bits_per_dim(m, 64 if fast else 200),
               eval_every=max(steps // 8, 1), desc=type(model).__name__)


# Both flows: multi-scale, the logit transform, Glow's learnt prior for every split, long cosine schedules.
FLOW_TRAINING = {"batch_size": 64, "lr": 1e-3, "warmup": 200, "clip_grad": 50.0}

REALNVP = Recipe(
    name="realnvp_mnist",
    build=lambda config: RealNVP(**config),
    train=train_mnist_flow,
    evaluate=lambda model, limit, inputs: mnist_test_bits_per_dim(model, limit),
    judge=lambda model, inputs: judge_flow(model, digit_classifier(), temperature=0.7),
    model_config={"input_shape": [1, 28, 28], "n_scales": 3, "n_couplings": 4, "hidden": 64, "learned_prior": True},
    training_config={**FLOW_TRAINING, "steps": 3000},
)

GLOW = Recipe(
    name="glow_mnist",
    build=lambda config: Glow(**config),
    train=train_mnist_flow,
    evaluate=lambda model, limit, inputs: mnist_test_bits_per_dim(model, limit),
    judge=lambda model, inputs: judge_flow(model, digit_classifier(), temperature=0.7),
    model_config={"input_shape": [1, 28, 28], "n_levels": 2, "n_steps": 8, "hidden": 96, "lu": True,
                  "learned_prior": True},
    training_config={**FLOW_TRAINING, "steps": 4000},
)


def learnt_noise_from(base: str):
    """A recipe's ``train``: start from the shipped flow ``base`` (trained on uniform noise) and train it
    further together with a fresh variational dequantizer, on the tighter bound; same loop and schedule."""

    def train(model, config: dict, inputs: dict, fast: bool) -> History:
        try:
            missing, unexpected = model.load_state_dict(inputs[base].state_dict(), strict=False)
        except RuntimeError as err:  # same names, other shapes
            raise ValueError(f"{base} does not fit this model: {err}") from None
        if unexpected or any(not key.startswith("dequantizer.") for key in missing):
            raise ValueError(f"{base} does not fit this model: missing {missing}, unexpected {unexpected}")
        return train_mnist_flow(model, config, inputs, fast)

    return train


# The same flows, continued with learnt dequantization noise (arflow.models.variational_dequantize).
LEARNT_NOISE_TRAINING = {**FLOW_TRAINING, "lr": 5e-4}


def with_learnt_noise(base: Recipe, steps: int) -> Recipe:
    """The recipe ``<base>_vd``: the same flow with a variational dequantizer, trained on for ``steps`` from
    ``base``'s shipped weights; built, measured and judged as ``base``."""
    return dataclasses.replace(base, name=f"{base.name}_vd", train=learnt_noise_from(base.name),
                               model_config={**base.model_config, "variational_dequantization": True},
                               training_config={**LEARNT_NOISE_TRAINING, "steps": steps}, requires=(base.name,))


REALNVP_LEARNT_NOISE = with_learnt_noise(REALNVP, steps=3000)
GLOW_LEARNT_NOISE = with_learnt_noise(GLOW, steps=6000)

RECIPES = [TOYFLOW, REALNVP, GLOW, REALNVP_LEARNT_NOISE, GLOW_LEARNT_NOISE]
