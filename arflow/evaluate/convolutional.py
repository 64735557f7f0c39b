"""Test metrics of the convolutional autoregressive models: Gated PixelCNN bits/dim, WaveNet bits/sample."""

from __future__ import annotations

import torch

from arflow.data import mnist, to_float
from arflow.data.signals import melody_dataset
from arflow.evaluate.batched import mean_over_batches
from arflow.units import nats_to_bits

WAVENET_TEST_WINDOWS, WAVENET_TEST_PREDICTED = 64, 256


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def pixelcnn_bits_per_dim(model, limit: int | None = None, batch_size: int = 100) -> float:
    """Test bits/dim of a Gated PixelCNN on the first ``limit`` embedded test digits (deterministic);
    a class-conditional model (``model.n_classes``) is given each digit's label."""
    images, labels = mnist("test", source="embedded", limit=limit)
    x, y = to_float(images), torch.as_tensor(labels.astype("int64"))
    device = _device(model)
    model.eval()
    nats = mean_over_batches(lambda b: model.nll(b[0].to(device), b[1].to(device) if model.n_classes else None),
                             (x, y), batch_size)
    return nats_to_bits(nats)


def wavenet_test_windows(receptive_field: int, limit: int | None = None) -> torch.Tensor:
    """Fixed test windows (N, R + 256) of the test melody (seed 1): R samples of context, then 256 scored."""
    length = receptive_field + WAVENET_TEST_PREDICTED
    windows = melody_dataset(WAVENET_TEST_WINDOWS * length, seed=1).view(WAVENET_TEST_WINDOWS, length)
    return windows[:limit] if limit is not None else windows


def wavenet_bits_per_sample(model, limit: int | None = None) -> float:
    """Test bits per sample of the WaveNet, each prediction with a full receptive field of context."""
    windows = wavenet_test_windows(model.receptive_field, limit).to(_device(model))
    model.eval()
    with torch.no_grad():
        return nats_to_bits(model.nll(windows, skip_first=model.receptive_field - 1).item())
