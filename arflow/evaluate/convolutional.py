"""Test metrics of the convolutional autoregressive models: Gated PixelCNN bits/dim (and where those
bits go, by intensity), WaveNet bits/sample."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from arflow.data import mnist, to_float
from arflow.data.signals import melody_dataset
from arflow.evaluate.batched import mean_over_batches
from arflow.units import nats_to_bits
from arflow.utils import model_device

WAVENET_TEST_WINDOWS, WAVENET_TEST_PREDICTED = 64, 256


def _test_digits(limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``limit`` embedded test digits (N, 1, 28, 28) in [0, 1] and their labels (N,) long."""
    images, labels = mnist("test", source="embedded", limit=limit)
    return to_float(images), torch.as_tensor(labels.astype("int64"))


def pixelcnn_bits_per_dim(model, limit: int | None = None, batch_size: int = 100) -> float:
    """Test bits/dim of a Gated PixelCNN on the first ``limit`` embedded test digits (deterministic);
    a class-conditional model (``model.n_classes``) is given each digit's label."""
    x, y = _test_digits(limit)
    device = model_device(model)
    model.eval()
    nats = mean_over_batches(lambda b: model.nll(b[0].to(device), b[1].to(device) if model.n_classes else None),
                             (x, y), batch_size)
    return nats_to_bits(nats)


INTENSITY_BANDS = ((0, 0), (1, 127), (128, 251), (252, 255))  # background, grey edges (dark, light), full ink


def pixelcnn_bits_by_intensity(model, limit: int | None = None, bands=INTENSITY_BANDS,
                               batch_size: int = 100) -> list[dict]:
    """Where a Gated PixelCNN's test bits go: the test pixels split by their true intensity k.

    ``bands``: inclusive ranges (low, high) of k covering 0..n_values-1. Returns one dict per band:
    ``low``, ``high``, ``fraction`` (of all test pixels), ``bits_per_pixel`` (mean -log2 p of those
    pixels) and ``share``, their part of the test bits/dim (fraction * bits_per_pixel): the shares sum
    to :func:`pixelcnn_bits_per_dim` on the same digits.
    """
    covered = sorted(k for low, high in bands for k in range(low, high + 1))
    if covered != list(range(model.n_values)):
        raise ValueError(f"bands must cover every value 0..{model.n_values - 1} exactly once, got {bands}")
    x, y = _test_digits(limit)
    device = model_device(model)
    model.eval()
    costs, targets = [], []
    with torch.no_grad():
        for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
            xb = xb.to(device)
            logits = model(xb, yb.to(device) if model.n_classes else None)
            k = model.targets(xb)
            costs.append(nats_to_bits(F.cross_entropy(logits, k, reduction="none")).flatten().cpu())
            targets.append(k.flatten().cpu())
    cost, k = torch.cat(costs).double(), torch.cat(targets)
    rows = []
    for low, high in bands:
        inside = (k >= low) & (k <= high)
        fraction = inside.double().mean().item()
        bits = cost[inside].mean().item() if inside.any() else 0.0
        rows.append({"low": low, "high": high, "fraction": fraction, "bits_per_pixel": bits,
                     "share": cost[inside].sum().item() / len(cost)})
    return rows


def wavenet_test_windows(receptive_field: int, limit: int | None = None) -> torch.Tensor:
    """Fixed test windows (N, R + 256) of the test melody (seed 1): R samples of context, then 256 scored."""
    length = receptive_field + WAVENET_TEST_PREDICTED
    windows = melody_dataset(WAVENET_TEST_WINDOWS * length, seed=1).view(WAVENET_TEST_WINDOWS, length)
    return windows[:limit] if limit is not None else windows


def wavenet_bits_per_sample(model, limit: int | None = None) -> float:
    """Test bits per sample of the WaveNet, each prediction with a full receptive field of context."""
    windows = wavenet_test_windows(model.receptive_field, limit).to(model_device(model))
    model.eval()
    with torch.no_grad():
        return nats_to_bits(model.nll(windows, skip_first=model.receptive_field - 1).item())
