"""Learning-rate schedules of the recipes: one cosine, with optional linear warm-up and floor."""

from __future__ import annotations

import math

import torch


def cosine_factor(step: int, steps: int, warmup: int = 0, floor: float = 0.0) -> float:
    """The learning-rate factor at ``step``: linear warm-up over ``warmup`` steps, then a cosine
    from 1 down to ``floor`` at step ``steps`` (and ``floor`` after it)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def cosine(optimizer: torch.optim.Optimizer, steps: int, warmup: int = 0, floor: float = 0.0):
    """A LambdaLR scheduler of :func:`cosine_factor` (call ``scheduler.step()`` after each step)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_factor(step, steps, warmup, floor))
