"""Grader-only test digits: 500 real MNIST digits (50 per class) that students never get. SECRET.

They were split off the embedded test split by ``scripts/make_mnist_subset.py`` (the last 50
test digits of each class), so the trained-model check measures a submission on digits outside
everything shipped in ``arflow/``: a model that memorises the students' data gains nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PATH = Path(__file__).with_name("mnist_grader_digits.npz")


def grader_digits(limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 1, 28, 28), labels uint8 (N,)): the first ``limit`` grader-only digits (all when None)."""
    with np.load(PATH) as archive:
        images, labels = archive["images"], archive["labels"]
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be a positive number of digits, got {limit}")
        images, labels = images[:limit], labels[:limit]
    return images, labels
