"""Small shared helpers: seeding, device choice, fast mode, tensors to numpy."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


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


def to_numpy(x) -> np.ndarray:
    """A tensor (any device, with or without gradient) or an array-like -> numpy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)
