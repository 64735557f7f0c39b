"""Flows: the cost of the 1x1 convolution's log-determinant (plain W vs LU) against the number of
channels c, and the sampling time of the shipped RealNVP and Glow (same data, similar size)."""

from __future__ import annotations

import torch

from arflow.bench import median_seconds
from arflow.models.invconv import InvConv1x1, InvConv1x1LU

CHANNELS = (8, 32, 128, 512)


def logdet_costs(channels=CHANNELS, repeat: int = 5) -> tuple[list[float], list[float]]:
    """Median seconds of log|det W| plus its backward pass, for the plain and the LU 1x1 convolution."""
    plain_times, lu_times = [], []
    for c in channels:
        for layer, times in ((InvConv1x1(c), plain_times), (InvConv1x1LU(c), lu_times)):
            def step(layer=layer):
                layer.zero_grad(set_to_none=True)
                layer.log_abs_det().backward()
            times.append(median_seconds(step, repeat=repeat))
    return plain_times, lu_times


def sampling_seconds(model, n: int = 64, repeat: int = 3) -> float:
    """Median seconds to draw ``n`` samples (one batch) from a flow."""
    generator = torch.Generator().manual_seed(0)
    return median_seconds(lambda: model.sample(n, generator=generator), repeat=repeat)


def run() -> list[str]:
    lines = []
    plain, lu = logdet_costs()
    for c, p, q in zip(CHANNELS, plain, lu):
        lines.append(f"log|det W| + backward, c={c:4d}: plain {p * 1e6:9.1f} us, LU {q * 1e6:7.1f} us "
                     f"(plain / LU = {p / q:6.1f})")
    from arflow.train.checkpoints import CHECKPOINT_DIR, load_checkpoint

    times = {}
    for name in ("realnvp_mnist", "glow_mnist"):
        if not (CHECKPOINT_DIR / f"{name}.pt").exists():
            lines.append(f"{name}: no checkpoint, sampling not measured")
            continue
        model = load_checkpoint(name)
        times[name] = sampling_seconds(model)
        params = sum(p.numel() for p in model.parameters())
        lines.append(f"{name}: 64 samples in {times[name] * 1000:.0f} ms ({params} parameters)")
    if len(times) == 2:
        lines.append(f"sampling time Glow / RealNVP = {times['glow_mnist'] / times['realnvp_mnist']:.2f}")
    return lines
