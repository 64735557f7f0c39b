"""MNIST for the whole course: the embedded real subset by default, full MNIST when present.

One API for the lectures, the assignment and the grader::

    images, labels = mnist("train")            # uint8 (N, 1, 28, 28), uint8 (N,)
    x = to_float(images)                        # float32 k/255 in [0, 1]
    loader = make_loader(x, labels, batch_size=64)

``source="auto"`` (default) uses full MNIST when ``ARFLOW_MNIST_DIR`` (or ``root=``) points at
the four IDX files, else the embedded 4,500-digit subset shipped in the package.
``source="full"`` asks for full MNIST: it is read from ``root``, optionally downloaded with
checksums (``download=True``); when it is absent and cannot be fetched, a clear warning is given
and the embedded subset is used instead, never a hang.
"""

from __future__ import annotations

import json
import os
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from arflow.data.idx import DataError, download_files, read_idx

EMBEDDED_PATH = Path(__file__).resolve().parents[1] / "datasets" / "mnist_subset.npz"
ENV_DIR = "ARFLOW_MNIST_DIR"
DEFAULT_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"

#: The four files of full MNIST with their MD5 checksums (the values torchvision checks).
MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
SPLITS = ("train", "test")
SOURCES = ("auto", "embedded", "full")

def download_mnist(root: str | os.PathLike, mirror: str = DEFAULT_MIRROR, files: dict | None = None,
                   timeout: float = 10.0) -> Path:
    """Download the four MNIST IDX files into ``root``, checksums checked (see
    :func:`arflow.data.idx.download_files`); files already there with the right checksum are kept."""
    return download_files(root, mirror, files or MNIST_FILES, timeout)


def _full_mnist_dir(root: str | os.PathLike | None) -> Path | None:
    root = root if root is not None else os.environ.get(ENV_DIR)
    if not root:
        return None
    root = Path(root).expanduser()
    if all(_find_idx(root, name) is not None for name, _ in MNIST_FILES.values()):
        return root
    return None


def _find_idx(root: Path, gz_name: str) -> Path | None:
    """The IDX file under ``root``, gzip-compressed or not (people unpack them)."""
    for candidate in (root / gz_name, root / gz_name.removesuffix(".gz")):
        if candidate.exists():
            return candidate
    return None


@lru_cache(maxsize=4)
def _load_full(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(_find_idx(root, MNIST_FILES[f"{split}_images"][0]))
    labels = read_idx(_find_idx(root, MNIST_FILES[f"{split}_labels"][0]))
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (len(images),):
        raise DataError(f"{root}: {split} images {images.shape} and labels {labels.shape} do not match; "
                        "expected (N, 28, 28) and (N,)")
    return images[:, None].astype(np.uint8), labels.astype(np.uint8)


@lru_cache(maxsize=1)
def _load_embedded() -> dict[str, np.ndarray]:
    with np.load(EMBEDDED_PATH) as archive:
        return {key: archive[key] for key in archive.files}


def mnist_provenance() -> dict:
    """Where the embedded subset comes from, its licence and split (see ``datasets/README.md``)."""
    return json.loads(str(_load_embedded()["provenance"]))


def mnist(split: str = "train", source: str = "auto", root: str | os.PathLike | None = None,
          download: bool = False, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits as uint8 images (N, 1, 28, 28) and uint8 labels (N,).

    Args:
        split: ``"train"`` or ``"test"``.
        source: ``"auto"`` (full MNIST if found, else embedded), ``"embedded"`` (the shipped
            4,000 / 500 subset) or ``"full"`` (full MNIST; falls back to the embedded subset with
            a warning when absent and not downloadable).
        root: directory with the IDX files; defaults to ``$ARFLOW_MNIST_DIR``.
        download: with ``source="full"``, fetch missing files into ``root`` (checksums checked).
        limit: keep only the first ``limit`` examples (fast mode, tests).

    The arrays are read-only views shared between calls; copy before modifying in place.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of examples, got {limit}")

    images = labels = None
    if source in ("auto", "full"):
        full_dir = _full_mnist_dir(root)
        if full_dir is None and source == "full" and download:
            target = Path(root or os.environ.get(ENV_DIR) or Path.home() / ".cache" / "arflow" / "mnist")
            try:
                full_dir = download_mnist(target, mirror=DEFAULT_MIRROR)
            except (OSError, DataError) as err:
                warnings.warn(f"full MNIST could not be downloaded into {target} ({err}); "
                              "using the embedded 4,500-digit subset instead", stacklevel=2)
        elif full_dir is None and source == "full":
            warnings.warn(f"full MNIST was asked for but no IDX files were found (set {ENV_DIR} or pass "
                          "root=, or download=True); using the embedded 4,500-digit subset instead",
                          stacklevel=2)
        if full_dir is not None:
            images, labels = _load_full(full_dir, split)
    if images is None:
        data = _load_embedded()
        images, labels = data[f"{split}_images"], data[f"{split}_labels"]
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


# --------------------------------------------------------------------------- conversions
def _check_images(images, name: str = "images") -> None:
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"{name} must have shape (N, 1, H, W), got {tuple(images.shape)}")


def to_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 1, H, W) with values 0..255 -> float32 tensor k/255 in [0, 1]."""
    _check_images(images)
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8 (values 0..255), got {images.dtype}")
        return torch.from_numpy(np.array(images, dtype=np.float32)) / 255.0
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8 (values 0..255), got {images.dtype}")
    return images.float() / 255.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images k/255 in [0, 1] (N, 1, H, W) -> integer intensities 0..255 (long). Inverse of to_float."""
    _check_images(x, "x")
    if not torch.is_floating_point(x):
        raise TypeError(f"x must be a float tensor of values k/255, got {x.dtype}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"x must lie in [0, 1], got values in [{x.min().item():.3g}, {x.max().item():.3g}]")
    return torch.round(x * 255).long()


def binarize(images: np.ndarray | torch.Tensor, threshold: int = 128) -> torch.Tensor:
    """uint8 images (N, 1, H, W) -> float32 tensor of 0/1 (pixel >= threshold)."""
    return (to_float(images) >= threshold / 255.0).float()


def make_loader(x: torch.Tensor, labels=None, batch_size: int = 64, shuffle: bool = True,
                seed: int = 0) -> DataLoader:
    """A DataLoader over ``x`` (N, ...) and optional labels (N,), reproducible through ``seed``.

    Batches are tuples ``(x,)`` or ``(x, y)``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__} (convert with to_float)")
    tensors = [x]
    if labels is not None:
        labels = torch.as_tensor(np.array(labels), dtype=torch.long)
        if labels.shape != (len(x),):
            raise ValueError(f"labels must have shape ({len(x)},) to match x, got {tuple(labels.shape)}")
        tensors.append(labels)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle, generator=generator)
