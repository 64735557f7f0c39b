"""The hidden checks of assignment 11_maf. SECRET: never released.

Each check asks the submission's box (:class:`arflow.checks.box.LocalBox` under nbgrader, the
jailed box in the course's grader) questions with probes chosen here (random orderings, sizes
and inputs from a secret seed) and judges the plain arrays it returns: by properties (who
depends on whom, by gradients; log-determinants against the brute-force Jacobian; round trips)
and against :mod:`.reference`. Every reason shown is written here; what the student's code said
while answering a hidden probe never reaches a report (see :func:`arflow.checks.box.student_error`).
"""

from __future__ import annotations

import math
import secrets

import numpy as np

from arflow.checks import maf as visible
from arflow.checks.box import StudentError
from arflow.checks.maf import allowed, connectivity, dependency, mask_problem, slogdet
from arflow.checks.result import CheckResult

from . import reference
from .spec import PLAN

#: Calibration: the notebook's setup, solution and training cells run with their default settings
#: (reference.DEFAULTS: MAF() of 5 layers x 128 hidden units, 3,000 steps of batch 100, Adam 1e-3,
#: gradients clipped to norm 10, seed 0; 107 s on one busy core) gave REFERENCE_BPD on the 500
#: grader-only digits (14 x 14, dequantization noise NOISE_SEED); its weights are the reference
#: sample's maf.pth. The threshold is 10 % above it. (The same model scores 3.67 on the students'
#: 500 test digits, which hold a few digits unlike any training digit.)
REFERENCE_BPD = 3.4103
BPD_THRESHOLD = 3.75  # REFERENCE_BPD * 1.10 = 3.751, rounded
#: The grader's dequantization noise for the test digits (fixed, so a regrade gives the same number).
NOISE_SEED = 20250611
LOG_2PI = math.log(2 * math.pi)


def _rng(seed):
    return np.random.default_rng(secrets.randbits(63) if seed is None else seed)


def _plan(grade_id):
    return PLAN[grade_id]


def _new(grade_id):
    return CheckResult(grade_id, PLAN[grade_id][0])


def _add(result, index, ok, message=""):
    name, points = PLAN[result.grade_id][1][index]
    return result.add(name, points, ok, "" if ok else message)


def _f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def _ordering(rng, D):
    return [int(o) for o in rng.permutation(D)]


# --------------------------------------------------------------------------- made_masks
def check_made_masks(box, seed=None) -> CheckResult:
    rng = _rng(seed)
    result = _new("hidden_made_masks")
    auto, full, form = [], [], []
    cases = [(2, [3]), (int(rng.integers(3, 9)), []), (int(rng.integers(3, 9)), [int(rng.integers(1, 12))])]
    cases += [(int(rng.integers(3, 10)), [int(h) for h in rng.integers(1, 14, L)]) for L in (1, 2, 3)]
    # and wide ones (every hidden layer of at least D - 1 units), where every allowed pair must be connected
    for L in (1, 2, 3):
        D = int(rng.integers(3, 10))
        cases.append((D, [int(h) for h in rng.integers(D - 1, D + 6, L)]))
    for D, hidden in cases:
        ordering = _ordering(rng, D)
        label = f"D = {D}, {len(hidden)} hidden layer(s)"
        try:
            masks = visible._masks(box, D, hidden, ordering)
        except StudentError as err:
            auto.append(f"{label}: {err}"), full.append(f"{label}: {err}"), form.append(f"{label}: {err}")
            continue
        shape_problem = mask_problem(masks, D, hidden, ordering, full=False)
        if shape_problem and "not autoregressive" not in shape_problem and "hidden layer" not in shape_problem:
            form.append(f"{label}: masks of the wrong shapes or values")
            auto.append(f"{label}: masks of the wrong shapes or values")
            full.append(f"{label}: masks of the wrong shapes or values")
            continue
        reach = connectivity(masks)
        if (reach & ~allowed(ordering)).any():
            auto.append(f"{label}: an output is connected to itself or to a later input")
        wide = all(h >= D - 1 for h in hidden)
        if wide and any(not masks[k].any(axis=1).all() or not masks[k + 1].any(axis=0).all()
                        for k in range(len(hidden))):
            full.append(f"{label}: a hidden unit has no input or no output connection")
        ref = connectivity([m.numpy() for m in reference.made_masks(D, hidden, ordering)])
        if wide and not np.array_equal(reach, ref):
            full.append(f"{label}, every hidden layer of at least D - 1 units: the connections differ from the "
                        "allowed ones (some output misses an earlier input, or sees a later one)")
        try:
            again = visible._masks(box, D, hidden, ordering)
            if len(again) != len(masks) or any(not np.array_equal(a, b) for a, b in zip(again, masks)):
                form.append(f"{label}: a second call gave other masks (the rule must be deterministic)")
        except StudentError as err:
            form.append(f"{label}: {err}")
    # An ordering that is not a permutation of 0..D-1 must be refused.
    for bad in ([0, 1, 1, 3], [1, 2, 3, 4]):
        reply, _ = box.request({"op": "masks", "n_inputs": 4, "hidden_sizes": [5], "ordering": bad})
        if reply.get("ok") or reply.get("error_type") != "ValueError":
            form.append("an ordering that is not a permutation of 0..D-1 was not refused with ValueError")
            break
    _add(result, 0, not auto, "; ".join(auto[:2]))
    _add(result, 1, not full, "; ".join(full[:2]))
    _add(result, 2, not form, "; ".join(form[:2]))
    return result


# --------------------------------------------------------------------------- MADE
def check_made(box, seed=None) -> CheckResult:
    rng = _rng(seed)
    result = _new("hidden_made")
    auto, full, trained = [], [], []
    for n in range(4):
        D = int(rng.integers(2, 8))
        L = 1 + n % 3
        # At least 6 units per degree: a ReLU path dead for every input is then (practically) impossible.
        hidden = [int(rng.integers(6 * (D - 1), 6 * (D - 1) + 8)) for _ in range(L)]
        ordering = _ordering(rng, D)
        label = f"MADE with D = {D}, {L} hidden layer(s)"
        oid = f"h_made{n}"
        x = _f32(rng.standard_normal((64, D)))  # many: every allowed path is on for some example
        ok = allowed(ordering)
        try:
            box.call({"op": "made_build", "id": oid, "n_inputs": D, "hidden_sizes": hidden, "ordering": ordering,
                      "seed": int(rng.integers(1 << 30))})
            _, out = box.call({"op": "made_forward", "id": oid}, {"x": x})
            if out["mu"].shape != (64, D) or out["log_scale"].shape != (64, D):
                raise StudentError("mu or log_scale of the wrong shape")
            deps = []
            for of in ("mu", "log_scale"):
                _, out = box.call({"op": "made_jacobian", "id": oid, "of": of}, {"x": x})
                deps.append(dependency(out["jac"]))
            if any((dep & ~ok).any() for dep in deps):
                auto.append(f"{label}: an output depends on its own input or a later one")
            if any(not np.array_equal(dep, ok) for dep in deps):
                full.append(f"{label}: an output does not depend on every earlier input")
            g = {"g_mu": _f32(rng.standard_normal((64, D))), "g_ls": _f32(rng.standard_normal((64, D)))}
            box.call({"op": "made_train", "id": oid, "steps": 5, "lr": 0.3}, {"x": x, **g})
            for of in ("mu", "log_scale"):
                _, out = box.call({"op": "made_jacobian", "id": oid, "of": of}, {"x": x})
                if (dependency(out["jac"]) & ~ok).any():
                    trained.append(f"{label}: after 5 Adam steps an output depends on its own input or a later "
                                   "one (are the masks applied in every forward pass?)")
                    break
        except StudentError as err:
            for bucket in (auto, full, trained):
                bucket.append(f"{label}: {err}")
    _add(result, 0, not auto, "; ".join(auto[:2]))
    _add(result, 1, not full, "; ".join(full[:2]))
    _add(result, 2, not trained, "; ".join(trained[:2]))
    return result


# --------------------------------------------------------------------------- MAFLayer
def _flow_parts(box, kind, oid, x, tol=1e-3):
    """(problems of: autoregressive Jacobian, log_det, inverse(forward), forward(inverse)) for one flow."""
    B, D = x.shape
    name = "MAFLayer" if kind == "layer" else "MAF"
    _, out = box.call({"op": f"{kind}_forward", "id": oid}, {"x": x})
    z, log_det = out["z"], out["log_det"]
    if z.shape != (B, D) or log_det.shape != (B,):
        raise StudentError(f"{name}.forward returned z or log_det of the wrong shape")
    if not (np.isfinite(z).all() and np.isfinite(log_det).all()):
        raise StudentError(f"{name}.forward returned NaN or inf")
    _, out = box.call({"op": f"{kind}_jacobian", "id": oid, "of": "z"}, {"x": x})
    jac = out["jac"]
    brute = slogdet(jac)
    logdet_ok = bool((np.abs(brute - log_det) <= tol * (1 + np.abs(brute))).all())
    _, out = box.call({"op": f"{kind}_inverse", "id": oid}, {"z": z})
    back = out["x"]
    there = back.shape == x.shape and np.isfinite(back).all() and \
        float(np.abs(back - x).max()) <= tol * (1 + np.abs(x).max())
    zz = _f32(np.random.default_rng(B * 7919 + D).standard_normal((B, D)))
    _, out = box.call({"op": f"{kind}_inverse", "id": oid}, {"z": zz})
    xx = out["x"]
    again = False
    if xx.shape == zz.shape and np.isfinite(xx).all():
        _, out = box.call({"op": f"{kind}_forward", "id": oid}, {"x": _f32(xx)})
        again = float(np.abs(out["z"] - zz).max()) <= tol * (1 + np.abs(zz).max())
    return jac, logdet_ok, there, again, (z, log_det)


def check_maf_layer(box, seed=None) -> CheckResult:
    rng = _rng(seed)
    result = _new("hidden_maf_layer")
    msgs = [[], [], [], []]
    for n in range(4):
        D = int(rng.integers(2, 9))
        hidden = [int(rng.integers(D - 1, D + 10)) for _ in range(1 + n % 2)]
        ordering = _ordering(rng, D)
        label = f"MAFLayer with D = {D}"
        oid = f"h_layer{n}"
        try:
            box.call({"op": "layer_build", "id": oid, "n_inputs": D, "hidden_sizes": hidden, "ordering": ordering,
                      "seed": int(rng.integers(1 << 30))})
            x = _f32(rng.standard_normal((5, D)) * rng.uniform(0.5, 2))
            jac, logdet_ok, there, again, _ = _flow_parts(box, "layer", oid, x)
            dep = dependency(jac)
            if (dep & ~(allowed(ordering) | np.eye(D, dtype=bool))).any():
                msgs[0].append(f"{label}: z_d depends on x_d's later inputs in the ordering")
            elif not (np.abs(np.diagonal(jac, axis1=1, axis2=2)) > 0).all():
                msgs[0].append(f"{label}: some z_d does not depend on x_d")
            if not logdet_ok:
                msgs[1].append(f"{label}: log_det differs from log|det dz/dx| of the Jacobian found by autograd")
            if not there:
                msgs[2].append(f"{label}: inverse(forward(x)) is not x")
            if not again:
                msgs[3].append(f"{label}: forward(inverse(z)) is not z")
        except StudentError as err:
            for bucket in msgs:
                bucket.append(f"{label}: {err}")
    for k in range(4):
        _add(result, k, not msgs[k], "; ".join(msgs[k][:2]))
    return result


# --------------------------------------------------------------------------- MAF
def check_maf(box, seed=None) -> CheckResult:
    rng = _rng(seed)
    result = _new("hidden_maf")
    msgs = [[], [], []]
    # D >= 3: with D = 2 a mask that lets an output see its own input can leave the samples close to
    # N(0, I), and the verdict on such a mistake would depend on the seed.
    for n, (D, n_layers) in enumerate(((int(rng.integers(3, 6)), 2), (int(rng.integers(3, 7)), 4))):
        hidden = [int(rng.integers(D, D + 8))]
        label = f"MAF with D = {D}, {n_layers} layers"
        oid = f"h_maf{n}"
        try:
            box.call({"op": "maf_build", "id": oid, "n_inputs": D, "n_layers": n_layers, "hidden_sizes": hidden,
                      "seed": int(rng.integers(1 << 30))})
            x = _f32(rng.standard_normal((5, D)))
            jac, logdet_ok, there, again, (z, log_det) = _flow_parts(box, "maf", oid, x)
            _, out = box.call({"op": "maf_log_prob", "id": oid}, {"x": x})
            lp = out["log_prob"]
            expected = -0.5 * (z.astype(np.float64) ** 2).sum(1) - 0.5 * D * LOG_2PI + slogdet(jac)
            if lp.shape != (5,) or not np.allclose(lp, expected, atol=1e-3, rtol=1e-4):
                msgs[0].append(f"{label}: log_prob differs from log N(z; 0, I) + log|det dz/dx| (autograd)")
            if not (there and again):
                msgs[1].append(f"{label}: inverse does not undo forward")
            if n == 0:  # sampling, on the small one
                _, out = box.call({"op": "maf_sample", "id": oid, "n": 4000, "seed": 1})
                s1 = out["x"]
                _, out = box.call({"op": "maf_sample", "id": oid, "n": 4000, "seed": 2})
                s2 = out["x"]
                if s1.shape != (4000, D) or not np.isfinite(s1).all():
                    msgs[2].append(f"{label}: sample(4000) did not return finite samples of shape (4000, {D})")
                elif np.array_equal(s1, s2):
                    msgs[2].append(f"{label}: two sample(4000) calls gave the same samples (draw z at random)")
                else:
                    _, out = box.call({"op": "maf_forward", "id": oid}, {"x": s1})
                    zs = out["z"].astype(np.float64)
                    # forward(samples) ~ N(0, I): per-dimension mean within 6 standard errors (0.016 for 4,000
                    # samples), std within 7 (0.011).
                    if not (np.abs(zs.mean(0)) < 0.1).all() or not (np.abs(zs.std(0) - 1) < 0.08).all():
                        msgs[2].append(f"{label}: the samples mapped back by forward are not standard normal: "
                                       "sample by running the inverse on Gaussian noise")
                    else:
                        # ... and exactly: samples are the inverse of their own z (the statistics above
                        # cannot see a small error; this does, whatever the seed).
                        _, out = box.call({"op": "maf_inverse", "id": oid}, {"z": _f32(zs[:200])})
                        back = out["x"].astype(np.float64)
                        if back.shape != (200, D) or not np.allclose(back, s1[:200], atol=1e-3, rtol=1e-3):
                            msgs[2].append(f"{label}: the samples are not inverse(forward(samples)): sampling must "
                                           "run the exact inverse on Gaussian noise")
        except StudentError as err:
            for bucket in msgs:
                bucket.append(f"{label}: {err}")
    for k in range(3):
        _add(result, k, not msgs[k], "; ".join(msgs[k][:2]))
    return result


# --------------------------------------------------------------------------- the trained model
def check_trained_model(box, seed=None, limit: int | None = None, batch_size: int = 100) -> CheckResult:
    """maf.pth in the student's MAF(): exact density by brute force on a few grader-only digits,
    then test bits/dim on the grader-only digits (:mod:`autograder.heldout`), computed here."""
    from autograder.heldout import grader_digits

    rng = _rng(seed)
    result = _new("hidden_trained_model")
    try:
        box.call({"op": "maf_load", "id": "trained"})
    except StudentError as err:
        said = err.student_text or ""
        why = ("maf.pth was not submitted" if "FileNotFoundError" in said else
               "torch.load(weights_only=True) refused the file (Weights only load failed)"
               if "Weights only" in said else
               "the tensors do not fit MAF() (missing or unexpected keys, or a size mismatch)"
               if ("Missing key" in said or "Unexpected key" in said or "size mismatch" in said) else str(err))
        for k in range(2):
            _add(result, k, False, f"maf.pth could not be loaded into MAF(): {why}")
        return result
    k_digits = visible.downscale(grader_digits(limit)[0])
    x, log_jac = visible.to_logit(k_digits, np.random.default_rng(NOISE_SEED).random(k_digits.shape))
    N, D = x.shape
    try:
        pick = rng.choice(N, 3, replace=False)
        _, out = box.call({"op": "maf_forward", "id": "trained"}, {"x": x[pick]})
        z = out["z"].astype(np.float64)
        _, out = box.call({"op": "maf_log_prob", "id": "trained"}, {"x": x[pick]})
        lp = out["log_prob"].astype(np.float64)
        _, out = box.call({"op": "maf_jacobian", "id": "trained", "of": "z"}, {"x": x[pick]})
        if z.shape != (3, D) or lp.shape != (3,) or out["jac"].shape != (3, D, D):
            raise StudentError(f"MAF() does not map digits of {D} values to z of {D} values")
        brute = -0.5 * (z ** 2).sum(1) - 0.5 * D * LOG_2PI + slogdet(out["jac"])
        gap = float(np.abs(brute - lp).max())
        # Measured: the reference's gap is below 1e-4 nats; a model whose outputs see their own inputs
        # (reference weights under off-by-one masks) is off by 0.02 to 0.24 nats per digit.
        exact = bool(np.isfinite(gap) and gap <= 0.005 + 1e-5 * float(np.abs(brute).max()))
    except StudentError as err:
        for k in range(2):
            _add(result, k, False, f"the model failed on test digits: {err}")
        return result
    _add(result, 0, exact, f"log_prob differs from the change of variables with the brute-force Jacobian by up to "
                           f"{gap:.3g} nats on test digits: the density is not normalised (does an output see "
                           "its own input?)")
    lps = []
    try:
        for start in range(0, N, batch_size):
            _, out = box.call({"op": "maf_log_prob", "id": "trained"}, {"x": x[start:start + batch_size]})
            lps.append(out["log_prob"].astype(np.float64).reshape(-1))
        lp_all = np.concatenate(lps)
        bpd = visible.bits_per_dim(lp_all, log_jac, D) if lp_all.shape == (N,) else float("nan")
    except StudentError as err:
        _add(result, 1, False, f"the model failed on test digits: {err}")
        return result
    result.bits_per_dim = bpd
    result.info = f"test bits/dim measured by the grader: {bpd:.3f} (threshold {BPD_THRESHOLD:.2f})"
    if not exact:
        _add(result, 1, False, f"test bits/dim {bpd:.3f} does not count: the density is not exact")
    else:
        _add(result, 1, bool(bpd < BPD_THRESHOLD), f"test bits/dim {bpd:.3f} is not below the threshold "
                                                   f"{BPD_THRESHOLD:.2f} (train longer, or check the training cell)")
    return result


#: Every grade id the grader scores -> its check: the visible ones (from arflow) and the hidden ones.
CHECKS = {**visible.CHECKS,
          "hidden_made_masks": check_made_masks, "hidden_made": check_made, "hidden_maf_layer": check_maf_layer,
          "hidden_maf": check_maf, "hidden_trained_model": check_trained_model}
