"""The standard normal density: the base distribution of every flow, and the noise the learnt
dequantizer reshapes. One home for log(2 pi), so the flows and the dequantizer cannot disagree."""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """log N(z_i; 0, 1) of every element: (...) -> (...)."""
    return -0.5 * (z ** 2 + LOG_2PI)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over all but the batch axis: (B, ...) -> (B,)."""
    return standard_normal_log_density(z).flatten(1).sum(1)
