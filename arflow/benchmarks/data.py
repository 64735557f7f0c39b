"""How long the embedded MNIST subset takes to load (cold, from the .npz)."""

from __future__ import annotations

import time

from arflow import data
from arflow.data import digits


def run() -> list[str]:
    digits._load_embedded.cache_clear()
    began = time.perf_counter()
    images, _ = data.mnist("train", source="embedded")
    data.mnist("test", source="embedded")
    cold = time.perf_counter() - began
    return [f"embedded MNIST subset, cold load of both splits: {cold * 1000:.1f} ms ({len(images)} train images)"]
