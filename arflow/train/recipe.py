"""A :class:`Recipe`: how one shipped model is built, trained and evaluated, and what it needs.

A recipe declares everything it reads: the model's configuration (what ``build`` takes), the
training configuration (what ``train`` takes), and ``requires``, the shipped checkpoints it
needs (a prior needs its autoencoder, to encode the data). The functions receive all of that
as arguments; none reads a module global::

    build(model_config) -> nn.Module
    train(model, training_config, inputs, fast) -> History   # trains in place
    evaluate(model, limit, inputs) -> float                   # the metric on the first `limit` test examples
    judge(model, inputs) -> dict                              # optional: what its samples show (fixed seeds)

``inputs`` maps each required checkpoint's name to its loaded model; ``fast`` asks for a few
steps on tiny data (CI).

``any_device``: ``train`` and ``evaluate`` follow the device of the model they are given (batches
are moved by :func:`arflow.train.loop.fit`; every tensor they make is made there), so
``python -m arflow.train.checkpoints train NAME --device cuda`` may train it on a GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from arflow.train.loop import History

Inputs = dict[str, torch.nn.Module]


@dataclass(frozen=True)
class Recipe:
    """One shipped model: build, train, evaluate, configs and requirements (see the module docstring)."""

    name: str
    build: Callable[[dict], torch.nn.Module]
    train: Callable[[torch.nn.Module, dict, Inputs, bool], History]
    evaluate: Callable[[torch.nn.Module, int | None, Inputs], float]
    model_config: dict = field(default_factory=dict)
    training_config: dict = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    metric: str = "test bits/dim"
    data: str = "embedded MNIST subset (4,000 train / 500 test)"
    seed: int = 0
    tolerance: float = 1e-3  # absolute, on the re-measured metric
    # what the model's samples show (arflow.evaluate.judges): a flat dict of numbers, recorded in the
    # manifest under "samples" and drawn again by the tests
    judge: Callable[[torch.nn.Module, Inputs], dict] | None = None
    any_device: bool = False  # see the module docstring

    @property
    def config(self) -> dict:
        """Both configurations, as the manifest records them."""
        return {"model": self.model_config, "training": self.training_config}

    @property
    def command(self) -> str:
        return f"python -m arflow.train.checkpoints train {self.name}"
