"""The assignment notebook: source and release agree with the contracts, the release is current and leaks nothing."""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from autograder.assignment import load as _load_assignment
from autograder.extract import extract_cells as _extract_cells
from autograder.release import generate, normalized

checks = importlib.import_module("autograder.assignments.10_ar.checks")
reference = importlib.import_module("autograder.assignments.10_ar.reference")

RELEASE = _load_assignment("10_ar").release
SOLUTIONS = _load_assignment("10_ar").solution_names


def extract_cells(path, source=None):
    return _extract_cells(path, _load_assignment("10_ar"))

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "solutions" / "10_ar" / "pixelcnn.ipynb"


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader") or {}


@pytest.fixture(scope="module")
def source():
    return nbformat.read(str(SOURCE), as_version=4)


@pytest.fixture(scope="module")
def release():
    return nbformat.read(str(RELEASE), as_version=4)


def test_only_the_notebooks_live_in_the_assignment_folders():
    assert sorted(p.name for p in SOURCE.parent.iterdir()) == ["pixelcnn.ipynb"]
    assert sorted(p.name for p in RELEASE.parent.iterdir()) == ["pixelcnn.ipynb"]


@pytest.mark.parametrize("path", [SOURCE, RELEASE])
def test_no_outputs_committed(path):
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_each_part_has_a_solution_cell_then_a_visible_and_a_hidden_grade_cell(source):
    ids = [nbgrader_meta(c).get("grade_id") for c in source.cells if nbgrader_meta(c)]
    for part in SOLUTIONS:
        i = ids.index(part)
        assert ids[i + 1] == f"test_{part}" and ids[i + 2] == f"hidden_{part}", ids
    assert "hidden_trained_model" in ids
    points = {nbgrader_meta(c)["grade_id"]: nbgrader_meta(c)["points"] for c in source.cells
              if nbgrader_meta(c).get("grade")}
    for gid in checks.HIDDEN_IDS:  # the notebook's placeholder cells carry the hidden checks' points
        assert points[gid] == _load_assignment("10_ar").max_points(gid), gid
    assert sum(points.values()) == 23


def test_the_release_is_current(tmp_path):
    generated = generate("10_ar", tmp_path)
    assert normalized(generated) == normalized(RELEASE), "run `make release` (python -m autograder release)"


def test_the_release_leaks_no_solution_and_no_hidden_test(release):
    text = RELEASE.read_text()
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    for answer in ("self.weight * self.mask", "torch.multinomial(probs", "F.cross_entropy(logits",
                   "blind_center=True), nn.ReLU()", "torch.round(x[:, 0] * 255)"):
        assert answer not in text, answer
    assert "autograder" not in text
    for cell in release.cells:
        if nbgrader_meta(cell).get("solution"):
            assert "raise NotImplementedError()" in cell.source
    # nothing of the hidden checks' code in the placeholder cells
    hidden = [c.source for c in release.cells if nbgrader_meta(c).get("grade_id", "").startswith("hidden_")]
    assert len(hidden) == 5 and all(not re.search(r"^\s*[a-z_]+\(", s, flags=re.M) for s in hidden)


def test_the_library_holds_no_answer():
    for path in [*(ROOT / "arflow").rglob("*.py"), ROOT / "arflow" / "assignment_checks.py"]:
        tree = ast.parse(path.read_text())
        classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        assert not classes & {"MaskedConv2d", "PixelCNN"}, path
    helpers = ast.parse((ROOT / "arflow" / "assignment_checks.py").read_text())
    functions = {n.name for n in ast.walk(helpers) if isinstance(n, ast.FunctionDef)}
    assert not functions & {"loss_fn", "generate"}


def test_the_solution_cells_are_the_reference(source):
    cells, notes = extract_cells(SOURCE)
    assert not notes
    namespace: dict = {}
    for cell in cells:
        if cell["name"] != "setup":
            exec(compile(cell["source"].replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", ""),
                         cell["name"], "exec"), namespace)
    torch.manual_seed(0)
    ours, ref = namespace["PixelCNN"](), reference.PixelCNN()
    ref.load_state_dict(ours.state_dict())
    x = torch.randint(0, 256, (2, 1, 9, 7)) / 255
    assert torch.allclose(ours(x), ref(x))
    logits = torch.randn(2, 256, 9, 7)
    assert torch.isclose(namespace["loss_fn"](logits, x), reference.loss_fn(logits, x))


def test_the_notebook_defaults_are_the_calibrated_ones(source):
    text = "\n".join(c.source for c in source.cells)
    settings = re.search(r"settings = dict\((.*?)\)", text).group(1)
    values = dict(re.findall(r"(\w+)=([\w.\-]+)", settings))
    for key in ("batch_size", "lr", "steps", "seed"):
        assert float(values[key]) == float(reference.DEFAULTS[key]), key
    signature = re.search(r"def __init__\(self, n_channels=(\d+), kernel_size=(\d+), n_layers=(\d+)\)", text)
    assert tuple(map(int, signature.groups())) == tuple(reference.DEFAULTS[k] for k in
                                                        ("n_channels", "kernel_size", "n_layers"))
    assert f"{checks.BPD_THRESHOLD:.2f} bits/dim" in text
    assert abs(checks.BPD_THRESHOLD - round(checks.REFERENCE_BPD * 1.1, 2)) < 0.006


def test_extraction_survives_changed_metadata_and_moved_cells(tmp_path, release):
    nb = nbformat.read(str(ROOT / "autograder" / "assignments" / "10_ar" / "samples" / "reference" / "10_ar"
                           / "pixelcnn.ipynb"), as_version=4)
    for cell in nb.cells:
        cell.metadata = {}
        cell.pop("id", None)
    nb.cells.reverse()
    path = tmp_path / "pixelcnn.ipynb"
    path.write_text(json.dumps(nb))
    cells, _ = extract_cells(path)
    assert {c["name"] for c in cells} >= set(SOLUTIONS)
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    cells, notes = extract_cells(broken)
    assert notes and all(c["name"] in ("prelude", "setup") for c in cells)


def test_visible_checks_pass_on_the_reference_and_fail_on_mistakes():
    from arflow import assignment_checks as ac

    ac.check_masked_conv(reference.MaskedConv2d)
    ac.check_pixelcnn(reference.PixelCNN, reference.MaskedConv2d)
    ac.check_loss_fn(reference.loss_fn)
    ac.check_generate(reference.generate)
    with pytest.raises(AssertionError, match="bits"):
        ac.check_loss_fn(lambda logits, x: reference.loss_fn(logits, x) / np.log(2))
    with pytest.raises(AssertionError, match="truncat"):
        ac.check_loss_fn(lambda logits, x: torch.nn.functional.cross_entropy(logits, (x[:, 0] * 255).long()))

    def argmax_generate(net, n, image_size=(28, 28), device="cpu"):
        x = torch.zeros(n, 1, *image_size)
        for i in range(image_size[0]):
            for j in range(image_size[1]):
                x[:, 0, i, j] = net(x)[:, :, i, j].argmax(1) / 255
        return x

    with pytest.raises(AssertionError, match="argmax"):
        ac.check_generate(argmax_generate)


@pytest.mark.slow
@pytest.mark.parametrize("sample, passes", [("blank", False), ("reference", True)])
def test_nbgrader_validate(tmp_path, sample, passes):
    """`nbgrader validate` fails on the blank release and passes on the reference solution (with its weights)."""
    import shutil

    from nbgrader.validator import Validator
    from traitlets.config import Config

    folder = tmp_path / sample
    shutil.copytree(ROOT / "autograder" / "assignments" / "10_ar" / "samples" / sample / "10_ar", folder)
    config = Config()
    config.Execute.timeout = 300
    result = Validator(config=config).validate(str(folder / "pixelcnn.ipynb"))
    assert "changed" not in result and "type_changed" not in result, result
    if passes:
        assert not result.get("failed"), result["failed"]
    else:
        assert len(result.get("failed", [])) >= 4  # the four visible test cells


def test_visible_checks_move_warnings_and_stderr_to_stdout(capsys):
    """nbgrader gives 0 to a test cell that writes to stderr: a warning in a correct answer must cost nothing."""
    import sys
    import warnings

    from arflow import assignment_checks as ac

    def noisy_loss(logits, x):
        warnings.warn("a harmless warning", stacklevel=2)
        print("progress...", file=sys.stderr)
        return reference.loss_fn(logits, x)

    ac.check_loss_fn(noisy_loss)
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "a harmless warning" in captured.out and "progress..." in captured.out


def test_hidden_test_cells_run_the_graders_checks_and_are_not_released(source, release):
    """Each hidden grade cell of the source holds a real nbgrader hidden test (stripped from the
    release, restored by nbgrader autograde) that runs the grader's check of that cell; the release's
    copy holds only the comment saying what is checked."""
    from autograder.hidden import run_hidden

    cells = {nbgrader_meta(c)["grade_id"]: c for c in source.cells
             if nbgrader_meta(c).get("grade_id", "").startswith("hidden_")}
    assert set(cells) == set(checks.HIDDEN_IDS)
    released = {nbgrader_meta(c)["grade_id"]: c.source for c in release.cells
                if nbgrader_meta(c).get("grade_id", "").startswith("hidden_")}
    for gid, cell in cells.items():
        assert "### BEGIN HIDDEN TESTS" in cell.source and f'run_hidden("10_ar", "{gid}", globals())' in cell.source
        assert "run_hidden" not in released[gid] and "autograder" not in released[gid]
    # Run against the reference: full points, as nbgrader's partial credit (the cell's last value).
    namespace = {"__name__": "__main__"}
    exec(compile(Path(reference.__file__).read_text(), "reference", "exec"), namespace)
    assert run_hidden("10_ar", "hidden_loss_fn", namespace, seed=1) == _load_assignment("10_ar").max_points(
        "hidden_loss_fn")
    namespace["loss_fn"] = lambda logits, x: reference.loss_fn(logits, x) + 1.0
    with pytest.raises(AssertionError, match="0 / 2 points"):
        run_hidden("10_ar", "hidden_loss_fn", namespace, seed=1)
