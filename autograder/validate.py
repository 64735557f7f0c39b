"""``python -m autograder validate NOTEBOOK [...]``: nbgrader's validation, with an exit status.

``nbgrader validate`` prints what failed but exits 0 either way, so a script or a pre-submission
hook cannot tell. This runs nbgrader's own :class:`nbgrader.validator.Validator` (the notebook
executed top to bottom, every test cell checked), prints what failed, and exits
1 when a test cell failed, a grade cell was changed or changed type, 2 when a notebook is missing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

FAILING = ("failed", "changed", "type_changed")


def validate(path: str | Path) -> dict:
    """nbgrader's validation results for one notebook (``{"failed": [...], "passed": [...], ...}``)."""
    from nbgrader.validator import Validator

    os.environ.setdefault("NBGRADER_VALIDATING", "1")
    return Validator().validate(str(path))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder validate", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", help="the notebooks to validate")
    args = parser.parse_args(argv)
    status = 0
    for name in args.notebooks:
        if not Path(name).is_file():
            print(f"error: no notebook {name}", file=sys.stderr)
            status = max(status, 2)
            continue
        results = validate(name)
        for kind in FAILING:
            for cell in results.get(kind, []):
                print(f"--- {kind.replace('_', ' ')} cell:\n{cell.get('source', '')[:600]}")
                if cell.get("error"):
                    print(cell["error"][-1500:])
        bad = [f"{len(results[kind])} {kind.replace('_', ' ')}" for kind in FAILING if results.get(kind)]
        if bad:
            print(f"{name}: NOT VALID ({', '.join(bad)})")
            status = max(status, 1)
        else:
            print(f"{name}: valid")
    return status
