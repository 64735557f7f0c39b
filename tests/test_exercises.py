"""The lectures' write-and-check exercises (``arflow.exercises``, solutions in ``exercises/solutions/``).

(a) ``make test`` runs every lecture with its solutions filled in (build/lectures) and every check must pass
    there (ARFLOW_EXERCISES_STRICT=1); here, that the filled copies are complete and the strict mode fails a run;
(b) each check passes on the solution and fails, with the expected explanation, on typical wrong answers;
(c) the shipped stubs give "not written yet" without raising;
(d) every exercise cell has a check cell and a solution, and every solution an exercise cell.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

import arflow.exercises as exercises
from arflow.exercises import VERIFIERS, evaluate
from arflow.exercises.core import STRICT_ENV
from arflow.exercises.fill import CHECK_TAG, exercise_cells, fill, fill_all, main, read_solutions

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "exercises" / "solutions"
LECTURES = sorted(p for p in (ROOT / "lectures").glob("*.ipynb") if exercise_cells(nbformat.read(p, as_version=4)))
MUST_HAVE = [f"{n:02d}" for n in range(1, 8)]  # lectures 01-07 each have at least one exercise


def check_call(nb, name: str) -> tuple[str, list[str]]:
    """(checker, argument names) of the check cell right after exercise cell ``name``."""
    cells = nb.cells
    k = next(k for k, c in enumerate(cells) if c is exercise_cells(nb)[name])
    assert k + 1 < len(cells) and CHECK_TAG in cells[k + 1].metadata.get("tags", []), \
        f"exercise {name}: the next cell must be its check cell (tag {CHECK_TAG!r})"
    calls = [n for n in ast.walk(ast.parse(cells[k + 1].source))
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id.startswith("check_")]
    assert len(calls) == 1, f"exercise {name}: the check cell must call one check_* function"
    return calls[0].func.id, [a.id for a in calls[0].args]


def solution_namespace(stem: str) -> dict:
    namespace: dict = {}
    exec(compile((SOLUTIONS / f"{stem}.py").read_text(), f"{stem}.py", "exec"), namespace)
    return namespace


# ----------------------------------------------------------------------------- (d) structure
def test_lectures_01_to_07_have_exercises():
    assert [p.name[:2] for p in LECTURES if p.name[:2] in MUST_HAVE] == MUST_HAVE


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem)
def test_every_exercise_has_a_check_and_a_solution(lecture):
    nb = nbformat.read(lecture, as_version=4)
    solutions = SOLUTIONS / f"{lecture.stem}.py"
    assert solutions.exists(), f"{lecture.name} has exercises but no {solutions.relative_to(ROOT)}"
    cells = exercise_cells(nb)
    assert set(cells) == set(read_solutions(solutions)), "exercise cells and solution sections must match one to one"
    for name, cell in cells.items():
        assert name in VERIFIERS, f"no verifier for exercise {name!r} in arflow.exercises.VERIFIERS"
        checker, _ = check_call(nb, name)
        assert checker == f"check_{name}" and hasattr(exercises, checker)
        assert "raise NotImplementedError" in cell.source, "the shipped exercise cell is a stub"
        assert not cell.get("outputs")


def test_every_solution_file_belongs_to_a_lecture():
    stems = {p.stem for p in LECTURES}
    assert {p.stem for p in SOLUTIONS.glob("*.py")} <= stems


def test_fill_reports_a_missing_or_extra_solution(tmp_path):
    nb = nbformat.read(LECTURES[0], as_version=4)
    with pytest.raises(ValueError, match="without a solution"):
        fill(nb, {})
    solutions = read_solutions(SOLUTIONS / f"{LECTURES[0].stem}.py")
    with pytest.raises(ValueError, match="solutions without an exercise: \\['extra'\\]"):
        fill(nb, {**solutions, "extra": "# exercise: extra\npass"})
    twice = tmp_path / "twice.py"
    twice.write_text("# exercise: a\nx = 1\n# exercise: a\nx = 2\n")
    with pytest.raises(ValueError, match="more than one section"):
        read_solutions(twice)


def test_fill_command_writes_a_filled_copy(tmp_path, capsys):
    out = tmp_path / "filled.ipynb"
    main([str(LECTURES[0]), str(SOLUTIONS / f"{LECTURES[0].stem}.py"), str(out)])
    filled = exercise_cells(nbformat.read(out, as_version=4))
    assert all("NotImplementedError" not in c.source for c in filled.values())
    assert "filled" in capsys.readouterr().out


# ----------------------------------------------------------------------------- (c) the shipped stubs
@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem)
def test_the_shipped_stubs_say_not_written_yet(lecture, capsys):
    nb = nbformat.read(lecture, as_version=4)
    for name, cell in exercise_cells(nb).items():
        namespace = {"torch": torch, "math": math, "F": F}  # what the lectures' first cells import
        exec(cell.source, namespace)
        checker, args = check_call(nb, name)
        getattr(exercises, checker)(*[namespace[a] for a in args])  # prints, never raises
        assert capsys.readouterr().out.startswith(f"[{name}] not written yet:")


# ----------------------------------------------------------------------------- (b) right and wrong answers
@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem)
def test_the_solutions_pass_their_checks(lecture):
    nb = nbformat.read(lecture, as_version=4)
    namespace = solution_namespace(lecture.stem)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for name in exercise_cells(nb):
        _, args = check_call(nb, name)
        verdict = evaluate(name, VERIFIERS[name], *[namespace[a] for a in args])
        assert verdict.passed, verdict.line
    assert torch.equal(torch.rand(3), expected), "a check changed the notebook's random state"


def _conv_same(x, w, d):  # a centred window (padding="same"): sees the future
    reach = (w.shape[-1] - 1) * d
    return F.conv1d(F.pad(x, (reach // 2, reach - reach // 2)), w, dilation=d)


def _conv_pad_right(x, w, d):
    return F.conv1d(F.pad(x, (0, (w.shape[-1] - 1) * d)), w, dilation=d)


def _conv_one_step_too_far(x, w, d):  # the shifted-input convention: output t misses x_t
    return F.conv1d(F.pad(x, ((w.shape[-1] - 1) * d + 1, 0)), w, dilation=d)[..., :-1]


def _conv_no_dilation(x, w, d):
    return F.conv1d(F.pad(x, ((w.shape[-1] - 1) * d, 0)), w)


def _conv_flipped(x, w, d):
    return F.conv1d(F.pad(x, ((w.shape[-1] - 1) * d, 0)), w.flip(-1), dilation=d)


def _masks(k, first_layer, centre_first=False, row_first=False, left_half=False, no_centre_later=False):
    p = k // 2
    v, h = torch.zeros(k, k), torch.zeros(k, k)
    v[:p] = 1
    if left_half:
        v[:p, p + 1:] = 0
    h[p, :p] = 1
    if not first_layer:
        v[p] = 1
        h[p, p] = 0 if no_centre_later else 1
    if first_layer and centre_first:
        h[p, p] = 1
    if first_layer and row_first:
        v[p] = 1
    return v, h


def _nearest(z_e, codebook):
    return torch.cdist(z_e.detach(), codebook).argmin(1)


def _vq_no_straight_through(z_e, codebook):
    i = _nearest(z_e, codebook)
    return codebook[i], i


def _vq_no_detach(z_e, codebook):
    i = _nearest(z_e, codebook)
    return z_e + (codebook[i] - z_e), i


def _vq_farthest(z_e, codebook):
    i = torch.cdist(z_e.detach(), codebook).argmax(1)
    return z_e + (codebook[i] - z_e).detach(), i


def _vq_inner_product(z_e, codebook):
    i = (z_e.detach() @ codebook.T).argmax(1)
    return z_e + (codebook[i] - z_e).detach(), i


def _attention(q, k, v, mask="tril", scale=True, after=False):
    T, D = q.shape[-2:]
    scores = q @ k.transpose(-2, -1) / (math.sqrt(D) if scale else 1)
    ones = torch.ones(T, T, dtype=torch.bool)
    allowed = {"tril": torch.tril(ones), "none": ones, "triu": torch.triu(ones), "strict": torch.tril(ones, -1)}[mask]
    if after:
        return (torch.softmax(scores, -1) * allowed) @ v
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), -1) @ v


def _strided(n, l, causal_b=True, local_reach=None, self_in_local=True):
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    back = i - j
    local = ((back >= 0) if self_in_local else (back > 0)) & (back < (local_reach or l))
    strided = (back % l == 0) & ((back >= 0) if causal_b else True)
    return torch.stack([local, strided])


def _sinh_forward(z, a, sign=1.0, summed=True, a_inside=True):
    log_d = torch.log(torch.cosh(a * z if a_inside else z))
    return torch.sinh(a * z) / a, sign * (log_d.sum(1) if summed else log_d)


def _sinh_inverse(x, a):
    return torch.asinh(a * x) / a


def _coupling_forward(x, mask, net, all_s=False, sign=1.0, whole_x=False):
    s, t = net(x if whole_x else mask * x)
    y = mask * x + (1 - mask) * (x * torch.exp(s) + t)
    return y, sign * (s if all_s else (1 - mask) * s).sum(1)


def _coupling_inverse(y, mask, net, sign=-1.0, whole_y=False):
    s, t = net(y if whole_y else mask * y)
    return mask * y + (1 - mask) * (y - t) * torch.exp(sign * s)


def _chain(joint, normalise=True, independent=False, axis=-1):
    D, tables = joint.ndim, []
    for d in range(D):
        upto = joint.sum(dim=tuple(range(d + 1, D))) if d + 1 < D else joint
        if independent:  # p(x_d) alone, as if the variables were independent
            alone = upto.sum(dim=tuple(range(d))) if d else upto
            upto = alone.expand((2,) * (d + 1))
        tables.append(upto / upto.sum(dim=axis, keepdim=True) if normalise else upto)
    return tables


def _raises(*args):
    raise ValueError("shapes do not fit")


WRONG = {  # exercise -> [(typical bug, the answer (a tuple of functions), words the explanation must contain)]
    "chain_rule": [
        ("marginals, as if independent", (lambda j: _chain(j, independent=True),), "the chain rule p(x) = prod_d"),
        ("joint marginals, not divided by the past", (lambda j: _chain(j, normalise=False),), "does not sum to 1"),
        ("normalised over the first variable", (lambda j: _chain(j, axis=0),), "does not sum to 1 over x_2"),
        ("one table too few", (lambda j: _chain(j)[:-1],), "a list of 3 tables"),
    ],
    "causal_conv": [
        ("a centred window, as padding='same'", (_conv_same,), "which comes after it"),
        ("zeros on the right", (_conv_pad_right,), "which comes after it"),
        ("off by one: one zero too many", (_conv_one_step_too_far,), "does not depend on x_t itself"),
        ("dilation forgotten", (_conv_no_dilation,), "received shape (2, 4, 18)"),
        ("kernel flipped", (_conv_flipped,), "do not flip the kernel"),
        ("code that crashes", (_raises,), "raised ValueError: shapes do not fit"),
    ],
    "gated_masks": [
        ("centre in the first horizontal mask", (lambda k, f: _masks(k, f, centre_first=True),), "itself"),
        ("row i in the first vertical mask", (lambda k, f: _masks(k, f, row_first=True),),
         "to its right in its own row"),
        ("vertical mask cut to the left half", (lambda k, f: _masks(k, f, left_half=True),), "a blind spot"),
        ("later horizontal masks without the centre", (lambda k, f: _masks(k, f, no_centre_later=True),),
         "already exclude pixel (i, j)"),
    ],
    "quantizer": [
        ("no straight-through estimator", (_vq_no_straight_through,), "no gradient reaches the encoder"),
        ("straight-through without detach", (_vq_no_detach,), "detach the difference"),
        ("argmax of the distances", (_vq_farthest,), "farthest code"),
        ("largest inner product", (_vq_inner_product,), "largest inner product"),
    ],
    "causal_attention": [
        ("no mask", (lambda q, k, v: _attention(q, k, v, mask="none"),), "a later one"),
        ("upper-triangular mask", (lambda q, k, v: _attention(q, k, v, mask="triu"),), "a later one"),
        ("diagonal excluded", (lambda q, k, v: _attention(q, k, v, mask="strict"),), "NaN"),
        ("mask after the softmax", (lambda q, k, v: _attention(q, k, v, after=True),), "after the softmax"),
        ("no 1/sqrt(D)", (lambda q, k, v: _attention(q, k, v, scale=False),), "divide q kᵀ by √D"),
    ],
    "strided_pattern": [
        ("strided head looks ahead", (lambda n, l: _strided(n, l, causal_b=False),), "a later position"),
        ("local head one too wide", (lambda n, l: _strided(n, l, local_reach=l + 1),), "steps back, stride"),
        ("local head without itself", (lambda n, l: _strided(n, l, self_in_local=False),), "attends to nothing"),
        ("local head only", (lambda n, l: torch.stack([_strided(n, l)[0]] * 2),), "still does not depend"),
    ],
    "sinh_flow": [
        ("log-det with the wrong sign", (lambda z, a: _sinh_forward(z, a, sign=-1.0), _sinh_inverse), "wrong sign"),
        ("log-det not summed", (lambda z, a: _sinh_forward(z, a, summed=False), _sinh_inverse),
         "one number per example"),
        ("inverse without the scale a", (_sinh_forward, lambda x, a: torch.asinh(x) / a), "is not the inverse"),
        ("cosh(z) for cosh(a z)", (lambda z, a: _sinh_forward(z, a, a_inside=False), _sinh_inverse), "the a inside"),
    ],
    "coupling": [
        ("s summed over the kept entries too", (lambda x, m, n: _coupling_forward(x, m, n, all_s=True),
                                               _coupling_inverse), "also the kept ones"),
        ("log-det with the wrong sign", (lambda x, m, n: _coupling_forward(x, m, n, sign=-1.0), _coupling_inverse),
         "wrong sign"),
        ("inverse with exp(+s)", (_coupling_forward, lambda y, m, n: _coupling_inverse(y, m, n, sign=1.0)),
         "is not the inverse"),
        ("net fed the whole x", (lambda x, m, n: _coupling_forward(x, m, n, whole_x=True),
                                 lambda y, m, n: _coupling_inverse(y, m, n, whole_y=True)), "fed the whole x"),
    ],
}


def test_every_exercise_has_wrong_answers():
    assert set(WRONG) == set(VERIFIERS) and all(len(bugs) >= 2 for bugs in WRONG.values())


@pytest.mark.parametrize("name,bug,answer,words", [(name, *case) for name, cases in WRONG.items() for case in cases],
                         ids=[f"{name}: {case[0]}" for name, cases in WRONG.items() for case in cases])
def test_a_wrong_answer_fails_with_its_explanation(name, bug, answer, words):
    verdict = evaluate(name, VERIFIERS[name], *answer)
    assert verdict.status == "not right yet", f"{bug}: {verdict.line}"
    assert words in verdict.message, f"{bug}: expected {words!r} in: {verdict.message}"


# ----------------------------------------------------------------------------- (a) the lectures, filled in
# `make test` executes every whole lecture with its solutions filled in (`python -m arflow.exercises.fill --all`
# into build/lectures, under nbval with ARFLOW_EXERCISES_STRICT=1, where a check that does not pass raises).
# Here: that the filled copies are complete and that the strict mode does fail the run.
def test_fill_all_writes_every_lecture_with_its_exercises_filled(tmp_path):
    written = fill_all(ROOT / "lectures", SOLUTIONS, tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in (ROOT / "lectures").glob("*.ipynb"))
    for path in written:
        cells = exercise_cells(nbformat.read(path, as_version=4))
        assert all("NotImplementedError" not in c.source for c in cells.values()), path.name
    assert {p.stem for p in LECTURES} <= {p.stem for p in written}


def test_strict_mode_turns_a_failed_check_into_an_error(monkeypatch, capsys):
    def stub(x, weight, dilation):
        raise NotImplementedError("write me")

    exercises.check_causal_conv(stub)  # at home: a line, no exception
    assert "not written yet" in capsys.readouterr().out
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(AssertionError, match="did not pass"):
        exercises.check_causal_conv(stub)
    namespace = solution_namespace("01_causal_convolutions_wavenet")
    exercises.check_causal_conv(namespace["causal_conv1d"])  # a correct answer passes in strict mode
    assert "correct" in capsys.readouterr().out
