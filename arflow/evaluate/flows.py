"""Test metrics of the flows: NLL of the 2-D toy flow, bits/dim of RealNVP and Glow on MNIST."""

from __future__ import annotations

import torch

from arflow.data import mnist, to_float
from arflow.data.toy2d import two_moons
from arflow.evaluate.batched import mean_over_batches
from arflow.utils import model_device

EVAL_SEED = 1234  # dequantization noise of evaluations: fixed, so that a metric re-measures exactly


def toy_test_points(limit: int | None = None) -> torch.Tensor:
    """The toy flow's test set: two moons (2,000 points (N, 2), seed 1), the first ``limit``."""
    points = two_moons(2000, seed=1)
    return points[:limit] if limit is not None else points


def toy_nll(model, limit: int | None = None) -> float:
    """Test negative log-likelihood of a 2-D flow, in nats per point."""
    model.eval()
    with torch.no_grad():
        return -model.log_prob(toy_test_points(limit)).mean().item()


def mnist_test_bits_per_dim(model, limit: int | None = None, batch_size: int = 250,
                            uniform_noise: bool = False) -> float:
    """Mean test bits/dim on the first ``limit`` test digits, dequantized with fixed noise
    (uniform noise with ``uniform_noise=True``, even for a flow that learnt its noise)."""
    x = to_float(mnist("test", limit=limit)[0])
    generator = torch.Generator().manual_seed(EVAL_SEED)
    device = model_device(model)
    model.eval()
    return mean_over_batches(lambda chunk: model.nll_bits_per_dim(chunk.to(device), generator, uniform_noise).mean(),
                             x, batch_size)
