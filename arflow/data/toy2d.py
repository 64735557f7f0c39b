"""2-D toy densities generated in code (no files): two moons and a ring of Gaussians."""

from __future__ import annotations

import math

import torch


def two_moons(n: int, noise: float = 0.08, seed: int | None = 0) -> torch.Tensor:
    """n points (n, 2) float32 from two interleaved half circles with Gaussian noise, centred near 0."""
    if n < 1:
        raise ValueError(f"n must be a positive number of points, got {n}")
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    upper = torch.rand(n, generator=g) < 0.5
    angle = math.pi * torch.rand(n, generator=g)
    x = torch.where(upper, torch.cos(angle), 1 - torch.cos(angle))
    y = torch.where(upper, torch.sin(angle), 0.5 - torch.sin(angle))
    points = torch.stack([x - 0.5, y - 0.25], dim=1) * 1.5
    return points + noise * torch.randn(n, 2, generator=g)


def gaussian_ring(n: int, k: int = 8, radius: float = 2.0, std: float = 0.15,
                  seed: int | None = 0) -> torch.Tensor:
    """n points (n, 2) from k Gaussians evenly spaced on a circle (an exercise's harder density)."""
    if n < 1 or k < 1:
        raise ValueError(f"n and k must be positive, got n={n}, k={k}")
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    angle = 2 * math.pi * torch.randint(k, (n,), generator=g).float() / k
    centres = radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return centres + std * torch.randn(n, 2, generator=g)
