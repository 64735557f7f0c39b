"""Units of likelihoods: nats (the maths), bits, and bits per dimension (what the lectures report).

The one place that divides by ln 2. ``bits_per_dim`` has one meaning everywhere in the course:
a negative log-likelihood in nats, per example, spread over its dimensions and written in bits.
Each function takes floats or tensors (elementwise).
"""

from __future__ import annotations

import math

LN2 = math.log(2.0)


def nats_to_bits(nats):
    """A quantity in nats (float or tensor) -> the same in bits."""
    return nats / LN2


def bits_to_nats(bits):
    """A quantity in bits (float or tensor) -> the same in nats."""
    return bits * LN2


def bits_per_dim(nll_nats, n_dims: int):
    """Negative log-likelihood of one example in nats (float or tensor (B,)) -> bits per dimension."""
    if n_dims <= 0:
        raise ValueError(f"n_dims must be positive, got {n_dims}")
    return nll_nats / (n_dims * LN2)
