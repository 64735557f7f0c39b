"""``make bench``: run every benchmark module of :mod:`arflow.benchmarks` and print its lines.

Timings on a shared machine are noisy: each benchmark compares variants within one run
(ratios) and reports the median of several repetitions. ``python -m arflow.bench NAME ...``
runs only the named modules.
"""

from __future__ import annotations

import importlib
import pkgutil
import statistics
import sys
import time
from collections.abc import Callable

import torch


def median_seconds(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    import matplotlib

    import arflow.benchmarks as package

    matplotlib.use("Agg")  # the explorer benchmarks draw figures, headless

    wanted = set(argv if argv is not None else sys.argv[1:])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if wanted and info.name not in wanted:
            continue
        module = importlib.import_module(f"arflow.benchmarks.{info.name}")
        print(f"\n== {info.name} ==", flush=True)
        began = time.perf_counter()
        for line in module.run():
            print(f"  {line}", flush=True)
        print(f"  ({time.perf_counter() - began:.1f} s)")


if __name__ == "__main__":
    main()
