"""The digit classifier and the sample score: the arithmetic on a classifier with known answers, and
that the shipped classifier tells real digits from what is not a digit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from arflow.data import mnist, to_float
from arflow.evaluate.samples import MAX_SPREAD_BITS, class_spread_bits, score_digits
from arflow.models.digit_classifier import DigitClassifier
from arflow.train.checkpoints import load_checkpoint
from arflow.train.recipes.classifier import outliers, random_shift


class Fixed(torch.nn.Module):
    """A 'classifier' that returns preset logits (N, 10), whatever the images."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.as_tensor(logits, dtype=torch.float32)

    def forward(self, x):
        return self.logits[: len(x)]


def test_score_arithmetic_matches_a_hand_computation():
    probs = np.full((4, 10), 0.01)
    probs[0, 3], probs[1, 3], probs[2, 7], probs[3, 1] = 0.91, 0.91, 0.5, 0.95  # rows need not sum to 1
    score = score_digits(Fixed(np.log(probs)), torch.zeros(4, 1, 28, 28), labels=[3, 2, 7, 1])
    softmax = probs / probs.sum(1, keepdims=True)
    assert score.confident == pytest.approx(np.mean(softmax.max(1) >= 0.9))
    assert score.as_labelled == pytest.approx(3 / 4)  # predicted 3, 3, 7, 1
    histogram = np.array([1, 2, 1]) / 4  # classes 1, 3, 7
    assert score.spread_bits == pytest.approx(-(histogram * np.log2(histogram)).sum())
    assert score.counts[3] == 2 and sum(score.counts) == 4


def test_spread_is_zero_for_one_class_and_log2_10_for_all_ten_equally():
    assert class_spread_bits(torch.full((30,), 4)) == 0.0
    assert class_spread_bits(torch.arange(10).repeat(7)) == pytest.approx(MAX_SPREAD_BITS)
    assert MAX_SPREAD_BITS == pytest.approx(math.log2(10))


@pytest.mark.parametrize("images, message", [
    (torch.zeros(4, 28, 28), "shape"),
    (torch.zeros(0, 1, 28, 28), "at least one"),
    (torch.full((2, 1, 28, 28), 255.0), r"\[0, 1\]"),
])
def test_bad_images_get_a_clear_error(images, message):
    with pytest.raises(ValueError, match=message):
        score_digits(Fixed(torch.zeros(4, 10)), images)


def test_labels_must_match_the_images():
    with pytest.raises(ValueError, match="3 labels for 2 images"):
        score_digits(Fixed(torch.zeros(2, 10)), torch.zeros(2, 1, 28, 28), labels=[1, 2, 3])


def test_classifier_rejects_other_shapes():
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        DigitClassifier()(torch.zeros(2, 1, 32, 32))


def test_random_shift_moves_each_image_within_bounds():
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 14, 14] = 1.0
    moved = random_shift(x, 2, torch.Generator().manual_seed(0))
    rows, cols = moved[:, 0].nonzero(as_tuple=True)[1:]
    assert len(rows) == 64  # every impulse kept, one per image
    assert (rows - 14).abs().max() <= 2 and (cols - 14).abs().max() <= 2
    assert len({(int(r), int(c)) for r, c in zip(rows, cols)}) > 10  # offsets differ between images


def test_outliers_are_images_in_range_and_not_the_digits():
    x, _ = mnist("train", source="embedded", limit=32)
    x = to_float(x)
    out = outliers(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x)


@pytest.fixture(scope="module")
def classifier():
    return load_checkpoint("digit_classifier")


def test_shipped_classifier_is_accurate_on_the_test_digits(classifier):
    images, labels = mnist("test", source="embedded")
    score = score_digits(classifier, to_float(images), labels.astype("int64"))
    assert score.as_labelled >= 0.98
    assert score.confident >= 0.9
    assert score.spread_bits > 3.2


def test_shipped_classifier_is_not_confident_on_noise_or_blobs(classifier):
    generator = torch.Generator().manual_seed(123)  # not the training seed
    noise = score_digits(classifier, torch.rand(300, 1, 28, 28, generator=generator))
    blobs = (F.interpolate(torch.rand(300, 1, 5, 5, generator=generator), size=(28, 28), mode="bilinear") > 0.55)
    blobs = score_digits(classifier, blobs.float())
    assert noise.confident <= 0.05, noise.summary()
    assert blobs.confident <= 0.2, blobs.summary()
