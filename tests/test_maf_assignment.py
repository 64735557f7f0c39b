"""Assignment 11_maf: every sample scored through LocalBox with CHECKS, the notebook's grade cells
agree with the PLAN, the release leaks nothing, and the answer is nowhere students can read it."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import nbformat
import pytest

from arflow.checks import maf_probes
from arflow.checks.box import LocalBox
from arflow.checks.protocol import run_cells

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "autograder" / "assignments" / "11_maf"
SOURCE = ROOT / "solutions" / "11_maf" / "maf.ipynb"
RELEASE = ROOT / "assignments" / "11_maf" / "maf.ipynb"
spec = importlib.import_module("autograder.assignments.11_maf.spec")
checks = importlib.import_module("autograder.assignments.11_maf.checks")
reference = importlib.import_module("autograder.assignments.11_maf.reference")
EXPECTED = json.loads((HERE / "samples_expected.json").read_text())
#: Lines that give the answer away (the degree rule, the masks' comparisons, the inverse's update, the log-det).
ANSWER_LINES = ("% (D - 1)", "hidden[:, None] >= previous[None, :]", "degrees[:, None] > previous[None, :]",
                "x[:, d] = z[:, d] * torch.exp(log_scale[:, d]) + mu[:, d]", "return z, -log_scale.sum(dim=1)",
                "torch.cat([masks[-1], masks[-1]])")


def grade_id(cell):
    return (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")


def grade_meta(cell):
    return cell.get("metadata", {}).get("nbgrader") or {}


def sample_cells(path: Path) -> list[dict]:
    """The source's setup cell, then the sample's solution cells (by grade id)."""
    source = nbformat.read(str(SOURCE), as_version=4)
    setup = next(c.source for c in source.cells if grade_id(c) == "setup")
    nb = nbformat.read(str(path), as_version=4)
    return [{"name": "setup", "source": setup}] + [{"name": grade_id(c), "source": c.source} for c in nb.cells
                                                   if grade_id(c) in spec.SOLUTION_IDS]


def score(sample: str, seed: int = 0, limit: int | None = 200) -> dict[str, float]:
    folder = HERE / "samples" / sample / "11_maf"
    namespace = {"__name__": "__main__"}
    errors = run_cells(sample_cells(folder / "maf.ipynb"), namespace)
    weights = folder / "maf.pth"
    box = LocalBox(namespace, maf_probes, str(weights) if weights.exists() else None, errors)
    scores = {}
    for n, (gid, check) in enumerate(checks.CHECKS.items()):
        kwargs = {"limit": limit} if gid == "hidden_trained_model" else {}
        scores[gid] = check(box, seed=seed + n, **kwargs).score
    return scores


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_each_sample_scores_as_expected(sample):
    # 200 of the 500 grader-only digits keep this test short; the verdicts are the same on all 500.
    assert score(sample, seed=11) == EXPECTED[sample]["scores"]


def test_the_correct_samples_get_full_marks_and_each_bug_loses_only_its_part():
    full = {gid: float(sum(p for _, p in parts)) for gid, (_, parts) in spec.PLAN.items()}
    full.update({gid: float(points) for gid, (_, points, _) in spec.VISIBLE.items()})
    for sample in ("reference", "unusual"):
        assert EXPECTED[sample]["scores"] == full
    lost = {name: {g for g, s in EXPECTED[name]["scores"].items() if s < full[g]} for name in EXPECTED}
    assert lost["no_weights"] == lost["untrained"] == {"hidden_trained_model"}
    assert lost["inverse_one_pass"] == {"test_maf_layer", "hidden_maf_layer", "test_maf", "hidden_maf"}
    assert lost["logdet_sign"] == {"test_maf_layer", "hidden_maf_layer", "test_maf", "hidden_maf",
                                   "hidden_trained_model"}
    # the off-by-one mask breaks made_masks and everything built on it
    assert {"test_made_masks", "hidden_made_masks", "test_made", "hidden_made"} <= lost["mask_self"]
    assert EXPECTED["untrained"]["scores"]["hidden_trained_model"] == 1  # exact, not trained
    assert EXPECTED["mask_self"]["scores"]["hidden_trained_model"] == 0  # not exact: its bits/dim don't count


def test_every_grade_id_has_a_check_and_the_notebook_carries_the_plans_points():
    source = nbformat.read(str(SOURCE), as_version=4)
    points = {grade_id(c): grade_meta(c)["points"] for c in source.cells if grade_meta(c).get("grade")}
    assert set(points) == set(checks.CHECKS) == set(spec.PLAN) | set(spec.VISIBLE)
    for gid, (_, parts) in spec.PLAN.items():
        assert points[gid] == sum(p for _, p in parts), gid
    for gid, (_, pts, _) in spec.VISIBLE.items():
        assert points[gid] == pts, gid
    solutions = [grade_id(c) for c in source.cells if grade_meta(c).get("solution")]
    assert tuple(solutions) == spec.SOLUTION_IDS
    for part in spec.SOLUTION_IDS:  # each solution cell is followed by its visible, then its hidden grade cell
        ids = [grade_id(c) for c in source.cells if grade_meta(c)]
        i = ids.index(part)
        assert ids[i + 1].startswith("test_") and ids[i + 2].startswith("hidden_"), ids[i:i + 3]
    hidden_cells = [c.source for c in source.cells if (grade_id(c) or "").startswith("hidden_")]
    assert len(hidden_cells) == len(spec.PLAN)
    for text in hidden_cells:
        assert "### BEGIN HIDDEN TESTS" in text and 'run_hidden("11_maf", "' in text
    # the threshold quoted to students is the grader's
    text = "\n".join(c.source for c in source.cells)
    assert f"{checks.BPD_THRESHOLD:.2f} bits/dim" in text
    assert abs(checks.BPD_THRESHOLD - 1.10 * checks.REFERENCE_BPD) < 0.01


def test_the_reference_is_the_solution_code():
    source = nbformat.read(str(SOURCE), as_version=4)
    cells = "\n".join(c.source for c in source.cells if grade_meta(c).get("solution"))
    body = (HERE / "reference.py").read_text().split("class MaskedLinear", 1)[1]
    start = (HERE / "reference.py").read_text().split("def made_masks", 1)[1].split("class MaskedLinear", 1)[0]
    for line in ("def made_masks" + start + "class MaskedLinear" + body).splitlines():
        if line.strip():
            assert line.rstrip() in cells, line


def test_the_release_holds_no_solution_no_hidden_test_and_nothing_of_the_grader():
    text = RELEASE.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "run_hidden", "autograder"):
        assert marker not in text, marker
    for line in ANSWER_LINES:
        assert line not in text, line
    release = nbformat.read(str(RELEASE), as_version=4)
    for cell in release.cells:
        if grade_meta(cell).get("solution"):
            assert "raise NotImplementedError()" in cell.source
    assert sorted(p.name for p in RELEASE.parent.iterdir()) == ["maf.ipynb"]
    for cell in release.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_nothing_students_get_contains_the_reference_code():
    files = [p for folder in ("arflow", "lectures", "assignments") for p in (ROOT / folder).rglob("*")
             if p.is_file() and p.suffix in (".py", ".ipynb", ".md", ".txt")]
    assert files
    for path in files:
        text = path.read_text(errors="ignore")
        for line in ANSWER_LINES:
            assert line not in text, (path, line)
        if "assignments" not in path.relative_to(ROOT).parts[:1]:  # the release has the stubs' signatures
            assert not re.search(r"class MAFLayer\(|def made_masks\(", text), path
