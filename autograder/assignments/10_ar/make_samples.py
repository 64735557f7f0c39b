"""Build the sample submissions of assignment 10_ar in ``autograder/assignments/10_ar/samples/``.

``python -m autograder.assignments.10_ar.make_samples REF_WEIGHTS``

Each sample is the released notebook with its solution cells filled in (the reference
solution, or the reference with one typical mistake) and, for some, a weights file. Their
expected scores are in ``samples_expected.json`` (checked by tests/test_grader_samples.py), beside
``samples/`` since every entry of a submissions folder is graded.
``REF_WEIGHTS`` is the reference PixelCNN trained with the notebook's defaults
(``python -m autograder calibrate --save REF_WEIGHTS``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import nbformat
import torch

from autograder.assignment import load
from autograder.extract import grade_id
from autograder.samples import with_edits

ASSIGNMENT = load("10_ar")
RELEASE, SOURCE, SAMPLES = ASSIGNMENT.release, ASSIGNMENT.source, ASSIGNMENT.samples
SOLUTIONS = ASSIGNMENT.solution_names

# (old, new) edits of the reference solution for each typical mistake.
MISTAKES = {
    "mask_centre": {"masked_conv": [("mask[c, c + (0 if blind_center else 1):] = 0", "mask[c, c + 1:] = 0")]},
    "mask_once": {"masked_conv": [('self.register_buffer("mask", mask)', "self.weight.data *= mask"),
                                  ("return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)",
                                   "return F.conv2d(x, self.weight, self.bias, padding=self.padding)")]},
    "loss_truncated": {"loss_fn": [("torch.round(x[:, 0] * 255).long()", "(x[:, 0] * 255).long()")]},
    "generate_argmax": {"generate": [("torch.multinomial(probs, 1)[:, 0]", "probs.argmax(dim=1)")]},
    "generate_columns": {"generate": [("for i in range(H):\n            for j in range(W):",
                                       "for j in range(W):\n            for i in range(H):")]},
    # one draw per pixel, copied into every image of the batch
    "generate_shared": {"generate": [("torch.multinomial(probs, 1)[:, 0].float() / 255",
                                      "torch.multinomial(probs[:1], 1)[0, 0].float().expand(n_samples) / 255")]},
}
EXPECTED = {
    # visible: masked_conv 2, pixelcnn 2, loss 1, generate 2; hidden: 3, 3, 2, 3, trained 5.
    "reference": 23, "blank": 0, "partial": 10, "mask_centre": 11, "mask_once": 20, "loss_truncated": 16,
    "generate_argmax": 15, "generate_columns": 15, "generate_shared": 15,
}


def solution_sources() -> dict[str, str]:
    nb = nbformat.read(str(SOURCE), as_version=4)
    return {grade_id(c): _clean(c.source) for c in nb.cells if grade_id(c) in SOLUTIONS}


def _clean(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line)


def write_sample(name: str, fills: dict[str, str], weights: dict | None) -> None:
    nb = nbformat.read(str(RELEASE), as_version=4)
    for cell in nb.cells:
        if grade_id(cell) in fills:
            cell.source = fills[grade_id(cell)]
    folder = SAMPLES / name / "10_ar"
    shutil.rmtree(SAMPLES / name, ignore_errors=True)
    folder.mkdir(parents=True)
    nbformat.write(nb, str(folder / "pixelcnn.ipynb"))
    if weights is not None:
        torch.save(weights, folder / "pixelcnn.pth")


def non_causal_weights(beta: float = 4.0) -> dict:
    """A PixelCNN whose first layer sees the pixel it predicts and copies it: a tiny loss, not a model.

    Built by hand (no training): two channels carry a = relu(x - 1/2) and b = relu(1/2 - x) through
    the centre taps of every layer, and the output logits are beta (k u - k^2 / 2) with
    u = 255 (a - b + 1/2) = 255 x, a softmax peaked at the pixel's own value k = 255 x.
    """
    from . import reference

    model = reference.PixelCNN()
    state = {key: torch.zeros_like(value) for key, value in model.state_dict().items()}
    convs = [name for name in state if name.endswith(".mask")]
    for key in convs:  # every mask sees the centre: the first layer is not blind
        state[key] = reference.causal_mask(state[key].shape[0], blind_center=False)
    c = state[convs[0]].shape[0] // 2
    first, *rest = [key.rsplit(".", 1)[0] for key in convs]
    state[f"{first}.weight"][0, 0, c, c], state[f"{first}.weight"][1, 0, c, c] = 1.0, -1.0
    for layer in rest:
        state[f"{layer}.weight"][0, 0, c, c] = state[f"{layer}.weight"][1, 1, c, c] = 1.0
    k = torch.arange(256, dtype=torch.float32)
    last = [key for key in state if key.endswith(".weight") and state[key].dim() == 4 and state[key].shape[0] == 256][0]
    state[last][:, 0, 0, 0], state[last][:, 1, 0, 0] = beta * 255 * k, -beta * 255 * k
    state[last.replace("weight", "bias")] = beta * (127.5 * k - k ** 2 / 2)
    return state


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.assignments.10_ar.make_samples", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ref_weights", type=Path, help="pixelcnn.pth of the reference trained with the defaults")
    args = parser.parse_args(argv)
    ref_state = torch.load(args.ref_weights, map_location="cpu", weights_only=True)
    good = solution_sources()
    write_sample("reference", good, ref_state)
    write_sample("blank", {}, None)
    write_sample("partial", {k: good[k] for k in ("masked_conv", "pixelcnn")}, None)
    for name, edits in MISTAKES.items():
        fills = with_edits(good, edits, name)
        weights = None
        if name == "mask_centre":
            weights = non_causal_weights()
        elif name == "mask_once":  # no mask buffers; the masked weights are zero in the file
            weights = {}
            for key, value in ref_state.items():
                prefix = key.rsplit(".", 1)[0]
                if key.endswith(".weight") and prefix + ".mask" in ref_state:
                    value = value * ref_state[prefix + ".mask"]
                if not key.endswith(".mask"):
                    weights[key] = value
        write_sample(name, fills, weights)
    # The per-cell scores are the grader's, recorded from a grading run of these samples (tests hold both
    # grading paths to them); they are kept when the samples are rebuilt, and must add up to the totals.
    path = ASSIGNMENT.folder / "samples_expected.json"
    before = json.loads(path.read_text()) if path.exists() else {}
    expected = {name: {"total": total, **{k: v for k, v in before.get(name, {}).items() if k == "scores"}}
                for name, total in EXPECTED.items()}
    path.write_text(json.dumps(expected, indent=1) + "\n")
    print(f"samples written to {SAMPLES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
