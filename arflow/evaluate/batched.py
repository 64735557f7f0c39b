"""The one batched evaluation helper: the mean of a per-batch metric over a data set, without gradients."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch


def _batches(data, batch_size: int) -> Iterable:
    """A tensor (N, ...) or a tuple of tensors with the same N -> chunks; anything else is iterated as is."""
    if isinstance(data, torch.Tensor):
        return data.split(batch_size)
    if isinstance(data, tuple) and data and all(isinstance(t, torch.Tensor) for t in data):
        return zip(*(t.split(batch_size) for t in data))
    return data


def _size(batch) -> int:
    return len(batch[0]) if isinstance(batch, (tuple, list)) else len(batch)


def mean_over_batches(metric: Callable[[object], float | torch.Tensor], data, batch_size: int = 100,
                      max_batches: int | None = None) -> float:
    """Average ``metric(batch)`` (a per-example mean: float or 0-d tensor) weighted by batch size.

    ``data``: a tensor (N, ...) or a tuple of tensors (N, ...) cut into batches of ``batch_size``
    (the last one smaller), or any iterable of batches such as a DataLoader (``batch_size`` unused).
    Runs without gradients; the first ``max_batches`` batches only when given.
    """
    total, count = 0.0, 0
    with torch.no_grad():
        for i, batch in enumerate(_batches(data, batch_size)):
            if max_batches is not None and i >= max_batches:
                break
            n = _size(batch)
            total += float(metric(batch)) * n
            count += n
    if count == 0:
        raise ValueError("the evaluation data yielded no example")
    return total / count if math.isfinite(total) else float("nan")
