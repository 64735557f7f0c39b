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


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a model's parameters live on (CPU for a model without parameters)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def to_device(batch, device: torch.device | str):
    """``batch`` with every tensor in it moved to ``device``: a tensor, or tuples, lists and dicts of
    them (nested), as data loaders yield them; anything else is returned as it is."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


def fast_mode() -> bool:
    """True when ``ARFLOW_FAST=1`` (CI): notebooks use tiny data and few steps."""
    return os.environ.get("ARFLOW_FAST", "0").strip().lower() not in ("", "0", "false", "no")


def to_numpy(x) -> np.ndarray:
    """A tensor (any device, with or without gradient) or an array-like -> numpy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where a progress bar is a widget), False in scripts and tests."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress(iterable, desc: str, total: int | None = None, min_total: int = 50, show: bool | None = None):
    """``iterable`` wrapped in a tqdm bar that disappears when done, in notebooks only (``show=None``).

    Sampling loops call it so that no lecture waits in silence; a loop of fewer than ``min_total``
    steps gets no bar. ``show=True`` forces a bar anywhere (scripts), ``False`` never shows one.
    """
    total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
    wanted = in_notebook() if show is None else show
    if not wanted or (total is not None and total < min_total):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)
