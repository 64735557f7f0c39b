"""Windows of a 1-D sequence (samples of a signal, bytes of a text): the batches of sequence models."""

from __future__ import annotations

import torch


def windows(sequence: torch.Tensor, length: int, limit: int | None = None) -> torch.Tensor:
    """Non-overlapping windows (M, length) of a sequence (N,); the tail that does not fill one is dropped."""
    if length < 2:
        raise ValueError(f"window length must be >= 2 (an input and a target), got {length}")
    m = len(sequence) // length
    if limit is not None:
        m = min(m, limit)
    return sequence[: m * length].view(m, length)


def random_windows(sequence: torch.Tensor, length: int, batch_size: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``batch_size`` windows (batch_size, length) of a sequence (N,) at uniform random offsets
    0..N - length (the last window included)."""
    if len(sequence) < length:
        raise ValueError(f"the sequence ({len(sequence)}) is shorter than one window ({length})")
    starts = torch.randint(0, len(sequence) - length + 1, (batch_size,), generator=generator)
    return torch.stack([sequence[s:s + length] for s in starts.tolist()])


class RandomWindows:
    """An endless, reproducible stream of batches (batch_size, length) of :func:`random_windows`
    (a "loader" for :func:`arflow.train.loop.fit`)."""

    def __init__(self, sequence: torch.Tensor, length: int, batch_size: int, seed: int = 0):
        self.sequence, self.length, self.batch_size = sequence, length, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        while True:
            yield random_windows(self.sequence, self.length, self.batch_size, self.generator)
