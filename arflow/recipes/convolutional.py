"""Checkpoints of Part I (convolutional autoregressive models): Gated PixelCNNs on MNIST, a WaveNet.

- ``gated_pixelcnn_mnist``: unconditional Gated PixelCNN, 256-way softmax per pixel.
- ``gated_pixelcnn_mnist_cond``: the same, class-conditional (one learned bias per digit and gate).
- ``wavenet_signal``: a small WaveNet on the synthetic signal of :mod:`arflow.signals`.

Sizes are chosen so that each trains in about 4 minutes on one CPU thread.
"""

from __future__ import annotations

import math

import torch

from arflow.checkpoints import Recipe, register
from arflow.data import make_loader, mnist, to_float
from arflow.models.gated_pixelcnn import GatedPixelCNN
from arflow.training import fit
from arflow.utils import LN2

PIXELCNN_CONFIG = {"channels": 32, "n_layers": 5, "kernel_size": 5, "steps": 2000, "batch_size": 32,
                   "lr": 3e-3}


def _test_data(limit: int | None):
    images, labels = mnist("test", source="embedded", limit=limit)
    return to_float(images), torch.as_tensor(labels.astype("int64"))


def pixelcnn_bits_per_dim(model: GatedPixelCNN, limit: int | None = None, batch_size: int = 100) -> float:
    """Test bits/dim of a Gated PixelCNN on the first ``limit`` embedded test digits (deterministic)."""
    x, y = _test_data(limit)
    device = next(model.parameters()).device
    total = 0.0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
            total += model.nll(xb, yb if model.n_classes else None).item() * len(xb)
    return total / len(x) / LN2


def _build_pixelcnn(n_classes: int):
    def build(config: dict) -> GatedPixelCNN:
        return GatedPixelCNN(256, config["channels"], config["n_layers"], config["kernel_size"],
                             n_classes=n_classes)
    return build


def train_pixelcnn(model: GatedPixelCNN, config: dict, fast: bool):
    """Adam with a cosine learning rate on the embedded MNIST train split; loss in nats per pixel."""
    torch.manual_seed(0)
    limit = 64 if fast else None
    steps = 3 if fast else config["steps"]
    images, labels = mnist("train", source="embedded", limit=limit)
    loader = make_loader(to_float(images), labels, batch_size=config["batch_size"], seed=0)
    device = next(model.parameters()).device

    def loss_fn(net, batch):
        x, y = batch[0].to(device), batch[1].to(device)
        return net.nll(x, y if net.n_classes else None)

    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    return fit(model, loss_fn, loader, steps, optimizer=optimizer, scheduler=scheduler,
               eval_fn=lambda net: pixelcnn_bits_per_dim(net, 16 if fast else 200),
               eval_every=max(1, steps // 4), desc="gated pixelcnn")


register(Recipe(name="gated_pixelcnn_mnist", build=_build_pixelcnn(0), train=train_pixelcnn,
                evaluate=pixelcnn_bits_per_dim, config=PIXELCNN_CONFIG))
register(Recipe(name="gated_pixelcnn_mnist_cond", build=_build_pixelcnn(10), train=train_pixelcnn,
                evaluate=pixelcnn_bits_per_dim, config=PIXELCNN_CONFIG))


# ----------------------------------------------------------------------------- WaveNet

WAVENET_CONFIG = {"channels": 24, "skip_channels": 48, "dilations": [1, 2, 4, 8, 16, 32, 64, 128],
                  "steps": 500, "batch_size": 8, "window": 640, "lr": 3e-3}
WAVENET_TRAIN_SAMPLES = 240_000  # 60 s of the training melody (seed 0) at 4 kHz
WAVENET_TEST_WINDOWS, WAVENET_TEST_PREDICTED = 64, 256


def wavenet_test_windows(receptive_field: int, limit: int | None = None) -> torch.Tensor:
    """Fixed test windows (N, R + 256) of the test melody (seed 1): R samples of context, then 256 scored."""
    from arflow.signals import melody_dataset

    length = receptive_field + WAVENET_TEST_PREDICTED
    x = melody_dataset(WAVENET_TEST_WINDOWS * length, seed=1)
    windows = x.view(WAVENET_TEST_WINDOWS, length)
    return windows[:limit] if limit is not None else windows


def wavenet_bits_per_sample(model, limit: int | None = None) -> float:
    """Test bits per sample of the WaveNet, each prediction with a full receptive field of context."""
    windows = wavenet_test_windows(model.receptive_field, limit).to(next(model.parameters()).device)
    model.eval()
    with torch.no_grad():
        return model.nll(windows, skip_first=model.receptive_field - 1).item() / LN2


def build_wavenet(config: dict):
    from arflow.models.wavenet import WaveNet

    return WaveNet(256, config["channels"], config["skip_channels"], config["dilations"])


def train_wavenet(model, config: dict, fast: bool):
    """Adam with a cosine learning rate on random windows of the training melody."""
    from arflow.signals import melody_dataset, random_windows

    torch.manual_seed(0)
    steps = 3 if fast else config["steps"]
    train = melody_dataset(20_000 if fast else WAVENET_TRAIN_SAMPLES, seed=0)
    generator = torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    skip = model.receptive_field - 1

    class Windows:  # an endless "loader" of random windows
        def __iter__(self):
            while True:
                yield random_windows(train, config["window"], config["batch_size"], generator)

    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    return fit(model, lambda net, batch: net.nll(batch.to(device), skip_first=skip), Windows(), steps,
               optimizer=optimizer, scheduler=scheduler, clip_grad=1.0,
               eval_fn=lambda net: wavenet_bits_per_sample(net, 8 if fast else 16),
               eval_every=max(1, steps // 5), desc="wavenet")


register(Recipe(name="wavenet_signal", build=build_wavenet, train=train_wavenet,
                evaluate=wavenet_bits_per_sample, config=WAVENET_CONFIG, metric="test bits/sample",
                data="synthetic melody of arflow.signals (train seed 0, 60 s; test seed 1), mu-law 256 levels"))
