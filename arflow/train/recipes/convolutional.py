"""Checkpoints of Part I, lectures 01 and 02 (convolutional autoregressive models): Gated PixelCNNs on MNIST, a WaveNet.

- ``gated_pixelcnn_mnist``: unconditional Gated PixelCNN, 256-way softmax per pixel, 10 layers (a
  receptive field 21 rows high, enough to see most of the digit it draws).
- ``gated_pixelcnn_mnist_cond``: the same, class-conditional (one learned bias per digit and gate): the
  two differ only in the label.
- ``wavenet_signal``: a small WaveNet on the synthetic signal of :mod:`arflow.data.signals`.

How long each trained, and on how many threads, is in its manifest (``train_seconds``, ``torch_threads``).
"""

from __future__ import annotations

import torch

from arflow.data import make_loader, mnist, to_float
from arflow.data.signals import melody_dataset
from arflow.data.windows import RandomWindows
from arflow.evaluate.convolutional import pixelcnn_bits_per_dim, wavenet_bits_per_sample
from arflow.evaluate.judges import judge_pixelcnn, judge_wavenet_period
from arflow.models.gated_pixelcnn import GatedPixelCNN
from arflow.models.wavenet import WaveNet
from arflow.train.checkpoints import digit_classifier
from arflow.train.loop import History, fit
from arflow.train.recipe import Recipe
from arflow.train.schedules import cosine

PIXELCNN_MODEL = {"n_values": 256, "channels": 32, "n_layers": 10, "kernel_size": 5}
PIXELCNN_TRAINING = {"steps": 4000, "batch_size": 32, "lr": 3e-3}


def build_pixelcnn(config: dict) -> GatedPixelCNN:
    return GatedPixelCNN(config["n_values"], config["channels"], config["n_layers"], config["kernel_size"],
                         n_classes=config["n_classes"])


def train_pixelcnn(model: GatedPixelCNN, config: dict, inputs: dict, fast: bool) -> History:
    """Adam with a cosine learning rate on the embedded MNIST train split; loss in nats per pixel."""
    torch.manual_seed(0)
    steps = 3 if fast else config["steps"]
    images, labels = mnist("train", source="embedded", limit=64 if fast else None)
    loader = make_loader(to_float(images), labels, batch_size=config["batch_size"], seed=0)

    def loss_fn(net, batch):
        x, y = batch
        return net.nll(x, y if net.n_classes else None)

    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    return fit(model, loss_fn, loader, steps, optimizer=optimizer, scheduler=cosine(optimizer, steps),
               eval_fn=lambda net: pixelcnn_bits_per_dim(net, 16 if fast else 200),
               eval_every=max(1, steps // 4), desc="gated pixelcnn")


GATED_PIXELCNN = Recipe(name="gated_pixelcnn_mnist", build=build_pixelcnn, train=train_pixelcnn,
                        evaluate=lambda model, limit, inputs: pixelcnn_bits_per_dim(model, limit),
                        judge=lambda model, inputs: judge_pixelcnn(model, digit_classifier()),
                        model_config={**PIXELCNN_MODEL, "n_classes": 0}, training_config=PIXELCNN_TRAINING,
                        any_device=True)
GATED_PIXELCNN_COND = Recipe(name="gated_pixelcnn_mnist_cond", build=build_pixelcnn, train=train_pixelcnn,
                             evaluate=lambda model, limit, inputs: pixelcnn_bits_per_dim(model, limit),
                             judge=lambda model, inputs: judge_pixelcnn(model, digit_classifier()),
                             model_config={**PIXELCNN_MODEL, "n_classes": 10}, training_config=PIXELCNN_TRAINING,
                             any_device=True)


# ----------------------------------------------------------------------------- WaveNet
# two stacks of dilations 1..128 (receptive field 511 samples, 128 ms): enough steps and width for the
# samples to keep a note's period (arflow.evaluate.judges.judge_wavenet_period)
WAVENET_MODEL = {"n_values": 256, "channels": 32, "skip_channels": 64, "dilations": [2 ** k for k in range(8)] * 2}
WAVENET_TRAINING = {"steps": 3000, "batch_size": 16, "window": 640, "lr": 3e-3, "train_samples": 240_000}


def build_wavenet(config: dict) -> WaveNet:
    return WaveNet(config["n_values"], config["channels"], config["skip_channels"], config["dilations"])


def train_wavenet(model: WaveNet, config: dict, inputs: dict, fast: bool) -> History:
    """Adam with a cosine learning rate on random windows of the training melody (seed 0;
    ``train_samples`` = 60 s at 4 kHz)."""
    torch.manual_seed(0)
    steps = 3 if fast else config["steps"]
    train = melody_dataset(20_000 if fast else config["train_samples"], seed=0)
    skip = model.receptive_field - 1
    windows = RandomWindows(train, config["window"], config["batch_size"], seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    return fit(model, lambda net, batch: net.nll(batch, skip_first=skip), windows, steps,
               optimizer=optimizer, scheduler=cosine(optimizer, steps), clip_grad=1.0,
               eval_fn=lambda net: wavenet_bits_per_sample(net, 8 if fast else 16),
               eval_every=max(1, steps // 5), desc="wavenet")


WAVENET = Recipe(name="wavenet_signal", build=build_wavenet, train=train_wavenet,
                 evaluate=lambda model, limit, inputs: wavenet_bits_per_sample(model, limit),
                 judge=lambda model, inputs: judge_wavenet_period(model),
                 model_config=WAVENET_MODEL, training_config=WAVENET_TRAINING, metric="test bits/sample",
                 data="synthetic melody of arflow.data.signals (train seed 0, 60 s; test seed 1), mu-law 256 levels",
                 any_device=True)

RECIPES = [GATED_PIXELCNN, GATED_PIXELCNN_COND, WAVENET]
