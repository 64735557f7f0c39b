"""What a picture of a digit shows, judged by the digit classifier (:mod:`arflow.models.digit_classifier`).

:func:`score_digits` scores a batch of images, generated or real, with three numbers:

- ``confident``: the fraction classified with probability at least 0.9 (looks like *some* digit);
- ``spread_bits``: the entropy, in bits, of the histogram of predicted classes (log2 10 = 3.32
  when the ten digits are equally common; 0 when every image is the same digit: a model that
  draws only ones scores high on ``confident`` and 0 here);
- ``as_labelled``: for images generated from a label or a caption, the fraction classified as
  that label.

Real test digits score about 0.99 confident, uniform noise almost 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

CONFIDENCE = 0.9
MAX_SPREAD_BITS = math.log2(10)


@dataclass(frozen=True)
class SampleScore:
    """The classifier's verdict on ``n`` images (see the module docstring)."""

    n: int
    confident: float
    spread_bits: float
    as_labelled: float | None
    counts: tuple[int, ...]  # predicted class histogram, 10 entries

    def summary(self) -> str:
        """One line for under a figure."""
        text = (f"digit classifier on {self.n} images: {100 * self.confident:.0f}% confidently a digit "
                f"(p >= {CONFIDENCE}), spread over classes {self.spread_bits:.2f} of {MAX_SPREAD_BITS:.2f} bits")
        if self.as_labelled is not None:
            text += f", {100 * self.as_labelled:.0f}% classified as their label"
        return text

    def as_dict(self) -> dict:
        return {"n": self.n, "confident": self.confident, "spread_bits": self.spread_bits,
                "as_labelled": self.as_labelled}


def class_spread_bits(predicted: torch.Tensor) -> float:
    """Entropy in bits of the histogram of ``predicted`` class indices (N,)."""
    counts = torch.bincount(predicted.long().flatten(), minlength=10).double()
    p = counts[counts > 0] / counts.sum()
    return max(0.0, float(-(p * p.log2()).sum())) if len(p) else 0.0


def score_digits(classifier: torch.nn.Module, images: torch.Tensor, labels=None) -> SampleScore:
    """Score images (N, 1, 28, 28) with values in [0, 1] (floats k/255, or 0/1 for binarized models).

    ``labels`` (N,) ints, or None: what each image was generated from (a class or a caption's digit).
    """
    if images.dim() != 4 or images.shape[1:] != (1, 28, 28):
        raise ValueError(f"score_digits expects images of shape (N, 1, 28, 28), got {tuple(images.shape)}")
    if len(images) == 0:
        raise ValueError("score_digits needs at least one image")
    images = images.detach().float()
    if images.min() < 0 or images.max() > 1:
        raise ValueError(f"images must hold values in [0, 1], got [{float(images.min()):.3g}, "
                         f"{float(images.max()):.3g}]")
    probs = classifier.probabilities(images) if hasattr(classifier, "probabilities") else \
        torch.softmax(classifier(images), -1)
    confidence, predicted = probs.max(-1)
    as_labelled = None
    if labels is not None:
        if isinstance(labels, torch.Tensor):
            labels = labels.detach().cpu().long().flatten()
        else:  # a copy: the shipped label arrays are read-only
            labels = torch.as_tensor(np.array(labels, dtype=np.int64)).flatten()
        if len(labels) != len(images):
            raise ValueError(f"{len(labels)} labels for {len(images)} images")
        as_labelled = float((predicted == labels).double().mean())
    counts = torch.bincount(predicted, minlength=10)
    return SampleScore(n=len(images), confident=float((confidence >= CONFIDENCE).double().mean()),
                       spread_bits=class_spread_bits(predicted), as_labelled=as_labelled,
                       counts=tuple(int(c) for c in counts))


def classifier_accuracy(classifier: torch.nn.Module, images: torch.Tensor, labels) -> float:
    """Fraction of images (N, 1, 28, 28) classified as ``labels`` (N,)."""
    return score_digits(classifier, images, labels).as_labelled
