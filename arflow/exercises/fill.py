"""Fill a lecture's exercise cells with their solutions: ``python -m arflow.exercises.fill LECTURE SOLUTIONS OUT``.

An exercise cell of a lecture is a code cell tagged ``exercise`` whose first line is the marker
``# exercise: NAME``. A solutions file (``exercises/solutions/<lecture stem>.py``) holds one section per
exercise, each starting with the same marker line and running to the next marker (everything before the
first marker is a header: a docstring for readers, not copied). :func:`fill` replaces each exercise cell's
source with its section; every exercise needs exactly one solution and every solution one exercise.
"""

from __future__ import annotations

import argparse
import copy
import re
from pathlib import Path

import nbformat

MARKER = re.compile(r"^# exercise: (\w+)[ \t]*$", flags=re.M)
TAG = "exercise"
CHECK_TAG = "exercise-check"


def read_solutions(path: str | Path) -> dict[str, str]:
    """NAME -> the source of its section (marker line included, trailing blank lines removed)."""
    text = Path(path).read_text()
    starts = list(MARKER.finditer(text))
    names = [m.group(1) for m in starts]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: more than one section for exercise(s) {duplicates}")
    ends = [m.start() for m in starts[1:]] + [len(text)]
    return {m.group(1): text[m.start():end].rstrip() for m, end in zip(starts, ends)}


def exercise_name(cell) -> str | None:
    """The NAME of an exercise cell (tag ``exercise`` and marker first line), else None."""
    if cell.cell_type != "code" or TAG not in cell.get("metadata", {}).get("tags", []):
        return None
    first = cell.source.splitlines()[0] if cell.source else ""
    match = MARKER.match(first)
    if not match:
        raise ValueError(f"a cell tagged {TAG!r} must start with '# exercise: NAME', starts with {first!r}")
    return match.group(1)


def exercise_cells(nb) -> dict[str, object]:
    """NAME -> cell, for every exercise cell of a notebook (names must be unique)."""
    found = {}
    for cell in nb.cells:
        name = exercise_name(cell)
        if name is not None:
            if name in found:
                raise ValueError(f"two exercise cells are named {name!r}")
            found[name] = cell
    return found


def fill(nb, solutions: dict[str, str]):
    """A copy of ``nb`` with every exercise cell's source replaced by its solution; a ValueError names any
    exercise without a solution or solution without an exercise."""
    nb = copy.deepcopy(nb)
    cells = exercise_cells(nb)
    unsolved, unused = sorted(set(cells) - set(solutions)), sorted(set(solutions) - set(cells))
    if unsolved or unused:
        raise ValueError(f"exercises without a solution: {unsolved}; solutions without an exercise: {unused}")
    for name, cell in cells.items():
        cell.source = solutions[name]
    return nb


def fill_all(lectures: str | Path, solutions: str | Path, out: str | Path) -> list[Path]:
    """Every notebook of ``lectures`` written to ``out``, its exercises filled from ``solutions/<stem>.py``
    (a notebook without exercises is copied as is). Returns the written paths."""
    lectures, solutions, out = Path(lectures), Path(solutions), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(lectures.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if exercise_cells(nb):
            nb = fill(nb, read_solutions(solutions / f"{path.stem}.py"))
        nbformat.write(nb, out / path.name)
        written.append(out / path.name)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m arflow.exercises.fill", description=__doc__.splitlines()[0])
    parser.add_argument("lecture", type=Path, help="the lecture notebook (.ipynb), or with --all the lectures' folder")
    parser.add_argument("solutions", type=Path, help="its solutions file (exercises/solutions/<stem>.py), or with "
                                                     "--all the solutions' folder")
    parser.add_argument("out", type=Path, help="where to write the filled copy (.ipynb), or with --all a folder")
    parser.add_argument("--all", action="store_true", help="fill every lecture of a folder (make test runs these)")
    args = parser.parse_args(argv)
    if args.all:
        written = fill_all(args.lecture, args.solutions, args.out)
        print(f"wrote {len(written)} lecture(s) to {args.out}, exercises filled in")
        return
    nb = fill(nbformat.read(args.lecture, as_version=4), read_solutions(args.solutions))
    nbformat.write(nb, args.out)
    print(f"wrote {args.out}: {len(exercise_cells(nb))} exercise cell(s) of {args.lecture.name} filled in")


if __name__ == "__main__":
    main()
