"""Small shared helpers: seeding, device choice, fast mode, and units (nats, bits, bits/dim)."""

from __future__ import annotations

import math
import os
import random

import numpy as np
import torch

LN2 = math.log(2.0)


def seed_everything(seed: int = 0) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) so that a notebook reruns identically."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(prefer: str | None = None) -> torch.device:
    """The device to use: ``prefer`` if given, else CUDA when present, else CPU.

    ``$ARFLOW_DEVICE`` overrides the automatic choice (for example ``cpu`` on a GPU machine).
    """
    choice = prefer or os.environ.get("ARFLOW_DEVICE")
    if choice:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} was asked for but CUDA is not available; use 'cpu'")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def fast_mode() -> bool:
    """True when ``ARFLOW_FAST=1`` (CI): notebooks use tiny data and few steps."""
    return os.environ.get("ARFLOW_FAST", "0").strip().lower() not in ("", "0", "false", "no")


def nats_to_bits(nats: float) -> float:
    return nats / LN2


def bits_to_nats(bits: float) -> float:
    return bits * LN2


def bits_per_dim(nll_nats: float, n_dims: int) -> float:
    """Negative log-likelihood of one example in nats -> bits per dimension (e.g. per pixel)."""
    if n_dims <= 0:
        raise ValueError(f"n_dims must be positive, got {n_dims}")
    return nll_nats / (n_dims * LN2)


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
