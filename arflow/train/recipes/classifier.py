"""The digit classifier that judges every lecture's samples (``arflow.evaluate.samples``).

- ``digit_classifier``: :class:`~arflow.models.digit_classifier.DigitClassifier` trained on the
  embedded train split with random shifts of up to 2 pixels and, for a quarter of the batches,
  binarized inputs (some of the course's models draw 0/1 digits). Its metric is the test accuracy.

Trained on digits alone, a classifier is confidently wrong on anything else (uniform noise gets
p > 0.9 for one class). So it also sees *outliers* (:func:`outliers`: noise, smooth blobs,
pixel-shuffled digits, two digits on top of each other) whose target is the uniform distribution
over the ten classes ("outlier exposure", Hendrycks et al. 2019): then "confidently a digit"
means something.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from arflow.data import make_loader, mnist, to_float
from arflow.evaluate.samples import classifier_accuracy
from arflow.models.digit_classifier import DigitClassifier
from arflow.train.loop import History, fit
from arflow.train.recipe import Recipe
from arflow.train.schedules import cosine

MODEL = {"channels": [32, 64], "hidden": 128, "dropout": 0.3}
TRAINING = {"steps": 3000, "batch_size": 64, "lr": 2e-3, "max_shift": 2, "binarize_fraction": 0.25,
            "outlier_weight": 0.5}


def build(config: dict) -> DigitClassifier:
    return DigitClassifier(tuple(config["channels"]), config["hidden"], config["dropout"])


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image of x (B, 1, H, W) moved by its own random integer offset in [-max_shift, max_shift]^2 (zeros fill)."""
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (b, 2), generator=generator)
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets.tolist())])


def outliers(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Images (B, 1, 28, 28) in [0, 1] that are not digits, made from a batch of digits x (B, 1, 28, 28).

    A quarter each: uniform noise; smooth blobs (7x7 noise upsampled, thresholded); each digit's
    pixels shuffled (the same intensities, no shape); two digits superimposed (pixelwise max).
    """
    b = len(x)
    noise = torch.rand(x.shape, generator=generator)
    coarse = torch.rand(b, 1, 7, 7, generator=generator)
    blobs = (F.interpolate(coarse, size=x.shape[-2:], mode="bilinear", align_corners=False) > 0.6).float()
    order = torch.argsort(torch.rand(b, 28 * 28, generator=generator), dim=1)
    shuffled = torch.gather(x.flatten(1), 1, order).view_as(x)
    overlaid = torch.maximum(x, x.roll(1, dims=0))
    kind = torch.randint(0, 4, (b,), generator=generator).view(b, 1, 1, 1)
    return torch.where(kind == 0, noise, torch.where(kind == 1, blobs, torch.where(kind == 2, shuffled, overlaid)))


def test_split(limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The embedded test digits (N, 1, 28, 28) in [0, 1] and their labels (N,)."""
    images, labels = mnist("test", source="embedded", limit=limit)
    return to_float(images), torch.as_tensor(labels.astype("int64"))


def train(model: DigitClassifier, config: dict, inputs: dict, fast: bool) -> History:
    """Adam with a cosine schedule: cross-entropy of augmented train digits, plus ``outlier_weight``
    times the cross-entropy between the uniform distribution and the prediction on outliers."""
    images, labels = mnist("train", source="embedded", limit=256 if fast else None)
    loader = make_loader(to_float(images), labels.astype("int64"), batch_size=config["batch_size"], seed=0)
    generator = torch.Generator().manual_seed(0)
    steps = 20 if fast else config["steps"]

    def loss(net, batch):
        x, y = batch
        x = random_shift(x, config["max_shift"], generator)
        if torch.rand((), generator=generator) < config["binarize_fraction"]:
            x = (x >= 0.5).float()
        digits = F.cross_entropy(net(x), y)
        unsure = -net(outliers(x, generator)).log_softmax(-1).mean()  # cross-entropy to uniform (+ log 10)
        return {"loss": digits + config["outlier_weight"] * unsure, "digits": digits, "outliers": unsure}

    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    scheduler = cosine(optimizer, steps) if steps else None
    return fit(model, loss, loader, steps, optimizer=optimizer, scheduler=scheduler, desc="digit classifier",
               eval_fn=lambda net: classifier_accuracy(net, *test_split()), eval_every=max(steps // 10, 1))


def evaluate(model: DigitClassifier, limit: int | None, inputs: dict) -> float:
    return classifier_accuracy(model, *test_split(limit))


RECIPES = [Recipe(name="digit_classifier", build=build, train=train, evaluate=evaluate, model_config=MODEL,
                  training_config=TRAINING, metric="test accuracy (fraction of digits classified correctly)",
                  tolerance=1e-6)]
