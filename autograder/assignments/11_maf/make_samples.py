"""Build the sample submissions of assignment 11_maf in ``autograder/assignments/11_maf/samples/``.

``python -m autograder.assignments.11_maf.make_samples REF_WEIGHTS UNUSUAL_WEIGHTS [--out DIR]``

Each sample is the released notebook (``assignments/11_maf/maf.ipynb``) with its solution cells
filled in: the reference solution (the source notebook's solution cells), another correct
solution written in another style (:data:`.unusual.UNUSUAL`), or the reference with one typical
mistake (:data:`MISTAKES`); most get a ``maf.pth`` beside the notebook. The weights come from:

- ``REF_WEIGHTS``: the ``maf.pth`` that the source notebook writes when its setup, solution and
  training cells run with their defaults (``skip_training = False``: ``MAF()``, 3,000 steps of
  batch 100, Adam 1e-3, seed 0): the model whose bits/dim on the grader's digits is
  ``checks.REFERENCE_BPD``. Given to ``reference``, ``logdet_sign`` and ``inverse_one_pass``;
- ``UNUSUAL_WEIGHTS``: the same training cell run after the unusual solution's cells. Given to
  ``unusual``;
- made here: an untrained ``MAF()`` (torch seed 0) for ``untrained``, and the reference weights
  under the sample's own (wrong) masks for ``mask_self``.

The committed samples hold such files (``samples/reference/11_maf/maf.pth``,
``samples/unusual/11_maf/maf.pth``), which may be given as the arguments: both are read before
anything is written. ``--out DIR`` writes the samples elsewhere (default: the assignment's
``samples/``); every sample's folder there is replaced. The expected scores
(``samples_expected.json``, beside ``samples/``) are recorded from a grading run and are not
written here.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from pathlib import Path

import nbformat
import torch

from arflow.checks.protocol import run_cells
from autograder.assignment import load
from autograder.extract import grade_id
from autograder.samples import with_edits

from .unusual import UNUSUAL

ASSIGNMENT = load("11_maf")

#: sample -> {solution grade id: [(old, new)]}: the edits of the reference solution for each typical mistake.
MISTAKES = {
    # every output sees its own input
    "mask_self": {"made_masks": [("masks.append(degrees[:, None] > previous[None, :])",
                                  "masks.append(degrees[:, None] >= previous[None, :])")]},
    "logdet_sign": {"maf_layer": [("return z, -log_scale.sum(dim=1)", "return z, log_scale.sum(dim=1)")]},
    # one MADE pass at z instead of D sequential passes
    "inverse_one_pass": {"maf_layer": [("""        x = torch.zeros_like(z)
        # In the layer's ordering, x_d needs only the x_j already computed: one pass per dimension.
        for d in torch.argsort(self.made.ordering).tolist():
            mu, log_scale = self.made(x)
            x = x.clone()
            x[:, d] = z[:, d] * torch.exp(log_scale[:, d]) + mu[:, d]
        return x""", """        mu, log_scale = self.made(z)  # one pass, at z instead of x
        return z * torch.exp(log_scale) + mu""")]},
}
#: sample -> (its solution cells: "reference", "unusual", a MISTAKES key or None for the release as is,
#: its weights: "reference", "unusual", "untrained", "own" (the reference's under its own masks) or None).
SAMPLES = {
    "reference": ("reference", "reference"),
    "unusual": ("unusual", "unusual"),
    "blank": (None, None),
    "mask_self": ("mask_self", "own"),
    "logdet_sign": ("logdet_sign", "reference"),
    "inverse_one_pass": ("inverse_one_pass", "reference"),
    "untrained": ("reference", "untrained"),
    "no_weights": ("reference", None),
}


def solution_sources() -> dict[str, str]:
    """The reference solution: the source notebook's solution cells without the nbgrader markers."""
    source = nbformat.read(str(ASSIGNMENT.source), as_version=4)
    return {grade_id(c): _clean(c.source) for c in source.cells if grade_id(c) in ASSIGNMENT.solution_ids}


def _clean(source: str) -> str:
    return "\n".join(line for line in source.splitlines()
                     if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


def with_mistake(reference: dict[str, str], name: str) -> dict[str, str]:
    """The reference cells with the edits of ``MISTAKES[name]`` (each ``old`` must be found)."""
    return with_edits(reference, MISTAKES[name], name)


def new_model(cells: dict[str, str]) -> torch.nn.Module:
    """``MAF()`` as these solution cells define it, after the source notebook's setup cell."""
    source = nbformat.read(str(ASSIGNMENT.source), as_version=4)
    setup = next(c.source for c in source.cells if grade_id(c) == "setup")
    namespace = {"__name__": "__main__"}
    errors = run_cells([{"name": "setup", "source": setup}]
                       + [{"name": gid, "source": text} for gid, text in cells.items()], namespace)
    if errors:
        raise RuntimeError(f"the cells did not run: {errors}")
    return namespace["MAF"]()


def sample_weights(kind: str | None, cells: dict[str, str] | None, trained: dict[str, bytes]) -> bytes | dict | None:
    """A sample's ``maf.pth``: a trained file's bytes, a state dict made here, or None (no weights)."""
    if kind is None:
        return None
    if kind in trained:
        return trained[kind]
    torch.manual_seed(0)
    model = new_model(cells)
    if kind == "own":  # the reference's weights and biases, under this sample's own (wrong) masks
        reference = torch.load(io.BytesIO(trained["reference"]), map_location="cpu", weights_only=True)
        state = model.state_dict()
        state.update({key: value for key, value in reference.items() if not key.endswith("mask")})
        model.load_state_dict(state)
    elif kind != "untrained":
        raise ValueError(f"unknown kind of weights {kind!r}")
    return model.state_dict()


def write_sample(out: Path, name: str, cells: dict[str, str] | None, weights: bytes | dict | None) -> None:
    """``out/<name>/11_maf/maf.ipynb``: the release with ``cells`` in its solution cells (+ ``maf.pth``)."""
    notebook = nbformat.read(str(ASSIGNMENT.release), as_version=4)
    for cell in notebook.cells:
        if cells is not None and grade_id(cell) in cells:
            cell.source = cells[grade_id(cell)]
    folder = out / name / ASSIGNMENT.name
    shutil.rmtree(out / name, ignore_errors=True)
    folder.mkdir(parents=True)
    nbformat.write(notebook, str(folder / f"{ASSIGNMENT.notebook}.ipynb"))
    if isinstance(weights, bytes):
        (folder / ASSIGNMENT.weights).write_bytes(weights)
    elif weights is not None:
        torch.save(weights, folder / ASSIGNMENT.weights)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.assignments.11_maf.make_samples",
                                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ref_weights", type=Path, help="maf.pth of the reference solution trained with the defaults")
    parser.add_argument("unusual_weights", type=Path, help="maf.pth of the unusual solution trained with the defaults")
    parser.add_argument("--out", type=Path, default=ASSIGNMENT.samples,
                        help="where to write the samples (default: %(default)s)")
    args = parser.parse_args(argv)
    trained = {"reference": args.ref_weights.read_bytes(), "unusual": args.unusual_weights.read_bytes()}
    reference = solution_sources()
    for name, (code, weights) in SAMPLES.items():
        cells = (None if code is None else reference if code == "reference" else UNUSUAL if code == "unusual"
                 else with_mistake(reference, code))
        data = sample_weights(weights, cells, trained)
        write_sample(args.out, name, cells, data)
        print(f"{name}: {'with' if data is not None else 'no'} {ASSIGNMENT.weights}")
    print(f"samples written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
