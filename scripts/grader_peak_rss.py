"""Peak memory of the grading process for one submission: ``python scripts/grader_peak_rss.py [SAMPLE]``.

Runs every check (``autograder.verdicts.run_checks``: visible, hidden and the trained model on the
500 grader-only digits) on one sample submission (default: the reference, with its weights), in this
process as a grading worker does, and prints this process's peak resident memory (``VmHWM``; the
black box runs in a child process and is not counted) and the total.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "autograder" / "assignments" / "10_ar" / "samples"


def vm_hwm_mib() -> float:
    """The process's peak resident set size in MiB (the grading worker's own measure)."""
    from autograder.worker import peak_memory

    return peak_memory() / 2**20


def main(argv: list[str]) -> int:
    from autograder.assignment import load
    from autograder.extract import extract_cells
    from autograder.verdicts import run_checks

    folder = SAMPLES / (argv[0] if argv else "reference") / "10_ar"
    cells, _ = extract_cells(folder / "pixelcnn.ipynb", load("10_ar"))
    before = vm_hwm_mib()
    t0 = time.perf_counter()
    results = run_checks(load("10_ar"), cells, folder / "pixelcnn.pth", seed=1234)
    total = sum(r.score for r in results.values())
    print(f"sample {folder.parent.name}: total {total:g} of {sum(r.max_points for r in results.values()):g}, "
          f"{time.perf_counter() - t0:.0f} s; peak RSS after imports {before:.0f} MiB, "
          f"after grading {vm_hwm_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
