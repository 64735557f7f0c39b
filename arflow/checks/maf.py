"""Visible checks, data and figures of home assignment 11_maf (MADE and the masked autoregressive flow).

Nothing here answers the assignment: the checks ask the student's code questions through a box
(:mod:`arflow.checks.maf_probes`) and judge the plain arrays it returns against *properties* any
correct answer has (output d depends only on inputs before d in the ordering; log_det is the
log-determinant of the Jacobian found by autograd; the inverse undoes the forward). The same
check functions run at home (:func:`run_visible`, on a :class:`~arflow.checks.box.LocalBox`)
and in the course's grader (on the jailed box).

The digits the MAF models: the course's 28 x 28 MNIST digits, averaged over 2 x 2 blocks to
14 x 14 (D = 196 intensities 0..255), dequantized with uniform noise and mapped to logit space
(:func:`to_logit`); :func:`bits_per_dim` turns a log-density there back into bits per pixel of
the 14 x 14 digit.
"""

from __future__ import annotations

import math

import numpy as np

from .box import LocalBox, StudentError, quiet
from .result import VISIBLE_KIND, CheckResult

#: The logit transform's margin (RealNVP's): y in [0, 1] -> logit(ALPHA + (1 - 2 ALPHA) y).
ALPHA = 0.05
SIDE = 14
D_DIGITS = SIDE * SIDE
LN2 = math.log(2.0)
#: grade id -> (title, points, what it checks): the visible grade cells (all or nothing).
VISIBLE = {
    "test_made_masks": ("made_masks", 1, "shapes, 0/1 values, autoregressive and fully connected for two "
                                        "orderings, no hidden layer, every hidden unit connected, a bad ordering "
                                        "refused"),
    "test_made": ("MADE", 1, "output shapes; mu and log_scale depend exactly on the earlier inputs (by "
                             "gradients); still autoregressive after Adam steps"),
    "test_maf_layer": ("MAFLayer", 2, "shapes; triangular Jacobian; log_det equals the brute-force "
                                      "log|det dz/dx|; inverse(forward(x)) = x"),
    "test_maf": ("MAF", 1, "log_prob = log N(z; 0, I) + log|det dz/dx| (brute force); inverse undoes forward"),
}


# --------------------------------------------------------------------------- data
def downscale(images) -> np.ndarray:
    """uint8 digits (N, 1, 28, 28) -> int64 intensities (N, 196) of 14 x 14 digits (2 x 2 means, rounded)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (1, 28, 28):
        raise ValueError(f"images must have shape (N, 1, 28, 28), got {images.shape}")
    small = images.astype(np.float64).reshape(-1, SIDE, 2, SIDE, 2).mean(axis=(2, 4))
    return np.round(small).astype(np.int64).reshape(-1, D_DIGITS)


def to_logit(k, u) -> tuple[np.ndarray, np.ndarray]:
    """Dequantize intensities ``k`` (N, D) in 0..255 with noise ``u`` (N, D) in [0, 1) and map them to logit space.

    y = (k + u) / 256 lies in (0, 1); x = logit(ALPHA + (1 - 2 ALPHA) y). Returns ``(x float32 (N, D),
    log_jac float64 (N,))`` with log_jac = log|det dx/dy|, so that log p_y(y) = log p_x(x) + log_jac.
    """
    k, u = np.asarray(k, dtype=np.float64), np.asarray(u, dtype=np.float64)
    if k.shape != u.shape or k.ndim != 2:
        raise ValueError(f"k and u must have the same shape (N, D), got {k.shape} and {u.shape}")
    s = ALPHA + (1 - 2 * ALPHA) * (k + u) / 256.0
    x = np.log(s) - np.log1p(-s)
    log_jac = np.log((1 - 2 * ALPHA) / (s * (1 - s))).sum(axis=1)
    return x.astype(np.float32), log_jac


def from_logit(x) -> np.ndarray:
    """Logit-space points (N, D) -> intensities y in [0, 1] (the inverse of :func:`to_logit`, noise kept)."""
    s = 1 / (1 + np.exp(-np.asarray(x, dtype=np.float64)))
    return np.clip((s - ALPHA) / (1 - 2 * ALPHA), 0, 1)


def bits_per_dim(log_prob, log_jac, n_dims: int = D_DIGITS) -> float:
    """Mean bits per pixel of the 8-bit digits from log p_x(x) (nats, (N,)) and log|dx/dy| (N,).

    A dequantized density on [0, 1]^D bounds the discrete likelihood: -log2 P(k) <= -log2 p_y(y) + 8 D.
    """
    log_py = np.asarray(log_prob, dtype=np.float64) + np.asarray(log_jac, dtype=np.float64)
    return float(np.mean(-log_py / (n_dims * LN2) + 8.0))


def digits_logit(split: str = "train", limit: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The course's digits as the MAF models them: ``(x float32 (N, 196), log_jac (N,))``, noise from ``seed``."""
    from arflow.data import mnist

    k = downscale(mnist(split, limit=limit)[0])
    return to_logit(k, np.random.default_rng(seed).random(k.shape))


# --------------------------------------------------------------------------- properties
def allowed(ordering) -> np.ndarray:
    """(D, D) bool: output d may depend on input j iff ordering[j] < ordering[d] (rows: outputs)."""
    o = np.asarray(ordering)
    return o[None, :] < o[:, None]


def connectivity(masks: list[np.ndarray]) -> np.ndarray:
    """(D_out, D) bool: which inputs reach which output through the product of the masks (any path)."""
    reach = masks[0] != 0
    for m in masks[1:]:
        reach = ((m != 0).astype(np.int64) @ reach.astype(np.int64)) > 0
    return reach


def is_acyclic(dep: np.ndarray) -> bool:
    """True when the dependency graph (dep[i, j]: output i reads input j, i != j) has no cycle,
    i.e. when some ordering makes the Jacobian triangular."""
    dep = np.asarray(dep, bool).copy()
    np.fill_diagonal(dep, False)
    left = np.ones(len(dep), bool)
    while left.any():
        free = left & ~(dep[:, left].any(axis=1))  # outputs reading nothing still left
        if not free.any():
            return False
        left &= ~free
    return True


def dependency(jac: np.ndarray, rtol: float = 0.0) -> np.ndarray:
    """(D_out, D) bool from Jacobians (B, D_out, D): a dependence seen on any example (exact zeros
    mean no path: a masked weight multiplies by 0.0)."""
    jac = np.abs(np.asarray(jac, dtype=np.float64))
    return (jac > rtol * max(jac.max(), 1e-300)).any(axis=0)


def slogdet(jac: np.ndarray) -> np.ndarray:
    """log|det| (B,) of Jacobians (B, D, D), in float64."""
    return np.linalg.slogdet(np.asarray(jac, dtype=np.float64))[1]


def _describe(extra: np.ndarray, ordering) -> str:
    d, j = np.argwhere(extra)[0]
    o = np.asarray(ordering)
    what = "itself" if d == j else f"input {j} (position {o[j]} in the ordering)"
    return f"output {d} (position {o[d]} in the ordering) depends on {what}"


# --------------------------------------------------------------------------- the visible checks
def _result(grade_id: str) -> CheckResult:
    return CheckResult(grade_id, VISIBLE[grade_id][0], kind=VISIBLE_KIND)


def _verdict(result: CheckResult, grade_id: str, problem: str) -> CheckResult:
    result.add(VISIBLE[grade_id][2], VISIBLE[grade_id][1], not problem, problem)
    return result


def _masks(box, n_inputs, hidden, ordering):
    reply, out = box.call({"op": "masks", "n_inputs": n_inputs, "hidden_sizes": list(hidden),
                           "ordering": list(ordering)})
    return [out[f"m{k}"] for k in range(int(reply["count"]))]


def mask_problem(masks: list[np.ndarray], n_inputs: int, hidden, ordering, full: bool = True) -> str:
    """Why ``masks`` are not MADE masks for these arguments ("" when they are). ``full``: also
    require, when each hidden layer has at least D - 1 units, every hidden unit connected (an input
    and an output) and every allowed dependency."""
    label = f"made_masks({n_inputs}, {list(hidden)}, {list(ordering)})"
    sizes = [n_inputs, *hidden, n_inputs]
    if len(masks) != len(hidden) + 1:
        return f"{label} returned {len(masks)} masks; expected {len(hidden) + 1} (one per linear layer)"
    for k, m in enumerate(masks):
        if m.shape != (sizes[k + 1], sizes[k]):
            return (f"{label}: mask {k} has shape {m.shape}; expected {(sizes[k + 1], sizes[k])} "
                    "(out_features, in_features)")
        if not np.isin(m, (0.0, 1.0)).all():
            return f"{label}: mask {k} holds values other than 0 and 1"
    reach, ok = connectivity(masks), allowed(ordering)
    if (reach & ~ok).any():
        return f"{label}: not autoregressive: {_describe(reach & ~ok, ordering)}"
    if not full or not all(h >= n_inputs - 1 for h in hidden):
        return ""
    for k in range(len(hidden)):
        if not masks[k].any(axis=1).all() or not masks[k + 1].any(axis=0).all():
            return (f"{label}: every hidden layer has at least D - 1 units, yet a unit of hidden layer {k + 1} has "
                    "no input or no output connection")
    if not np.array_equal(reach, ok):
        d, j = np.argwhere(ok & ~reach)[0]
        return (f"{label}: every hidden layer has at least D - 1 units, yet output {d} is not connected to "
                f"input {j}, which comes before it in the ordering")
    return ""


def check_made_masks(box, seed=None) -> CheckResult:
    """Two orderings, one case with no hidden layer, determinism and a bad ordering refused."""
    gid = "test_made_masks"
    result = _result(gid)
    cases = [(4, (5,), (0, 1, 2, 3)), (5, (6, 4), (2, 0, 4, 1, 3)), (3, (), (1, 2, 0))]
    problem = ""
    try:
        for n, hidden, ordering in cases:
            masks = _masks(box, n, hidden, ordering)
            result.figure = dict(masks=masks, ordering=ordering, hidden=hidden)
            problem = mask_problem(masks, n, hidden, ordering)
            if problem:
                break
            again = _masks(box, n, hidden, ordering)
            if len(again) != len(masks) or any(not np.array_equal(a, b) for a, b in zip(again, masks)):
                problem = f"made_masks({n}, {list(hidden)}, {list(ordering)}) gave different masks on a second call"
                break
        if not problem:
            reply, _ = box.request({"op": "masks", "n_inputs": 4, "hidden_sizes": [5], "ordering": [0, 0, 1, 2]})
            if reply.get("ok") or reply.get("error_type") != "ValueError":
                problem = ("made_masks(4, [5], [0, 0, 1, 2]) should raise ValueError (the ordering is not a "
                           "permutation of 0..3)" + ("" if reply.get("ok") else f"; it raised {reply.get('error')}"))
    except StudentError as err:
        problem = err.visible_text()
    return _verdict(result, gid, problem)


def check_made(box, seed=None) -> CheckResult:
    """Shapes, the dependency of mu and log_scale by gradients (exactly the allowed one), after Adam steps too."""
    gid = "test_made"
    result = _result(gid)
    # Wide layers: with 8 hidden units per degree, a ReLU path that is dead for every input is
    # (practically) impossible, so a missing dependence is a missing connection.
    D, hidden, ordering = 5, (32, 32), (3, 1, 4, 0, 2)
    rng = np.random.default_rng(0)
    problem = ""
    try:
        box.call({"op": "made_build", "id": "v_made", "n_inputs": D, "hidden_sizes": list(hidden),
                  "ordering": list(ordering), "seed": 0})
        # Many examples: a dependence is seen when some example has every ReLU on its path on.
        x = rng.standard_normal((64, D)).astype(np.float32)
        _, out = box.call({"op": "made_forward", "id": "v_made"}, {"x": x})
        for name in ("mu", "log_scale"):
            if out[name].shape != (64, D):
                return _verdict(result, gid, f"MADE({D}, {hidden}) maps x of shape (64, {D}) to {name} of shape "
                                             f"{out[name].shape}; expected (64, {D})")
        for when in ("at initialisation", "after 3 Adam steps"):
            for of in ("mu", "log_scale"):
                _, out = box.call({"op": "made_jacobian", "id": "v_made", "of": of}, {"x": x})
                dep, ok = dependency(out["jac"]), allowed(ordering)
                result.figure = dict(dep=dep, ordering=ordering, title=f"{of} {when}")
                if (dep & ~ok).any():
                    return _verdict(result, gid, f"MADE({D}, {hidden}, ordering={list(ordering)}) {when}: {of} is "
                                                 f"not autoregressive: {_describe(dep & ~ok, ordering)}"
                                    + (" (apply the masks in every forward pass)" if "Adam" in when else ""))
                if "Adam" not in when and not np.array_equal(dep, ok):
                    d, j = np.argwhere(ok & ~dep)[0]
                    return _verdict(result, gid, f"MADE({D}, {hidden}, ordering={list(ordering)}) {when}: {of}[{d}] "
                                                 f"does not depend on input {j}, which comes before it")
            if "Adam" not in when:
                g = {"g_mu": rng.standard_normal((64, D)).astype(np.float32),
                     "g_ls": rng.standard_normal((64, D)).astype(np.float32)}
                box.call({"op": "made_train", "id": "v_made", "steps": 3, "lr": 0.5}, {"x": x, **g})
    except StudentError as err:
        problem = err.visible_text()
    return _verdict(result, gid, problem)


def layer_problem(box, oid: str, kind: str, x: np.ndarray, ordering=None, tol: float = 1e-3) -> str:
    """Shapes, (triangular Jacobian,) log_det against the brute-force Jacobian and the round trip of one
    layer or MAF ``oid`` on ``x`` (B, D). ``kind``: "layer" or "maf". Raises StudentError."""
    B, D = x.shape
    name = "MAFLayer" if kind == "layer" else "MAF"
    _, out = box.call({"op": f"{kind}_forward", "id": oid}, {"x": x})
    z, log_det = out["z"], out["log_det"]
    if z.shape != (B, D) or log_det.shape != (B,):
        return (f"{name}.forward on x of shape {(B, D)} returned z of shape {z.shape} and log_det of shape "
                f"{log_det.shape}; expected {(B, D)} and {(B,)} (one log-determinant per example)")
    if not (np.isfinite(z).all() and np.isfinite(log_det).all()):
        return f"{name}.forward returned NaN or inf"
    _, out = box.call({"op": f"{kind}_jacobian", "id": oid, "of": "z"}, {"x": x})
    jac = out["jac"]
    if ordering is not None:
        dep, ok = dependency(jac), allowed(ordering) | np.eye(D, dtype=bool)
        if (dep & ~ok).any():
            return f"{name}: z is not autoregressive: {_describe(dep & ~ok, ordering)}"
    brute = slogdet(jac)
    err = np.abs(brute - log_det.astype(np.float64))
    if not (err <= tol * (1 + np.abs(brute))).all():
        b = int(err.argmax())
        sign = " (the opposite sign: log|det dz/dx|, not dx/dz)" if abs(brute[b] + log_det[b]) < tol * (
            1 + abs(brute[b])) else ""
        return (f"{name}: log_det is {log_det[b]:.4f} for example {b}, but the Jacobian dz/dx found by autograd "
                f"has log|det| = {brute[b]:.4f}{sign}")
    _, out = box.call({"op": f"{kind}_inverse", "id": oid}, {"z": z})
    back = out["x"]
    if back.shape != x.shape:
        return f"{name}.inverse on z of shape {z.shape} returned x of shape {back.shape}"
    gap = float(np.abs(back - x).max()) if np.isfinite(back).all() else float("inf")
    if not gap <= tol * (1 + np.abs(x).max()):
        return (f"{name}: inverse(forward(x)) differs from x by up to {gap:.3g}: the inverse must compute x "
                "one dimension at a time, in the ordering, each from the x already found")
    return ""


def check_maf_layer(box, seed=None) -> CheckResult:
    gid = "test_maf_layer"
    result = _result(gid)
    ordering = (1, 3, 0, 2)
    try:
        box.call({"op": "layer_build", "id": "v_layer", "n_inputs": 4, "hidden_sizes": [8],
                  "ordering": list(ordering), "seed": 0})
        x = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
        problem = layer_problem(box, "v_layer", "layer", x, ordering)
        _, out = box.call({"op": "layer_jacobian", "id": "v_layer", "of": "z"}, {"x": x})
        _, fwd = box.call({"op": "layer_forward", "id": "v_layer"}, {"x": x})
        result.figure = dict(jac=out["jac"][0], ordering=ordering, log_det=float(fwd["log_det"].reshape(-1)[0])
                             if fwd["log_det"].size else float("nan"))
    except StudentError as err:
        problem = err.visible_text()
    return _verdict(result, gid, problem)


def check_maf(box, seed=None) -> CheckResult:
    gid = "test_maf"
    result = _result(gid)
    D = 3
    try:
        box.call({"op": "maf_build", "id": "v_maf", "n_inputs": D, "n_layers": 3, "hidden_sizes": [6], "seed": 0})
        x = np.random.default_rng(2).standard_normal((5, D)).astype(np.float32)
        problem = layer_problem(box, "v_maf", "maf", x)
        if not problem:
            _, fwd = box.call({"op": "maf_forward", "id": "v_maf"}, {"x": x})
            _, out = box.call({"op": "maf_log_prob", "id": "v_maf"}, {"x": x})
            lp = out["log_prob"]
            expected = -0.5 * (fwd["z"].astype(np.float64) ** 2).sum(1) - 0.5 * D * math.log(2 * math.pi) \
                + fwd["log_det"]
            if lp.shape != (5,):
                problem = f"MAF.log_prob on x of shape (5, {D}) returned shape {lp.shape}; expected (5,)"
            elif not np.allclose(lp, expected, atol=1e-3, rtol=1e-4):
                problem = (f"MAF.log_prob(x) = {lp[0]:.4f} for the first example; log N(z; 0, I) + log_det = "
                           f"{expected[0]:.4f} (in nats)")
    except StudentError as err:
        problem = err.visible_text()
    return _verdict(result, gid, problem)


CHECKS = {"test_made_masks": check_made_masks, "test_made": check_made, "test_maf_layer": check_maf_layer,
          "test_maf": check_maf}


# --------------------------------------------------------------------------- figures
def _plt():
    import matplotlib.pyplot as plt

    return plt


def _show(fig) -> None:
    try:
        from IPython.display import display
        display(fig)
    except ImportError:  # plain Python: nothing to show
        pass
    _plt().close(fig)


def draw_masks(masks, ordering, hidden=None, title: str = "MADE masks"):
    """Each mask (white: connection kept) and the connectivity they give, next to the allowed one."""
    plt = _plt()
    masks = [np.asarray(m) for m in masks]
    n = len(masks) + 2
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 3.2), squeeze=False)
    sizes = [len(ordering), *[m.shape[0] for m in masks[:-1]]]
    for k, (ax, m) in enumerate(zip(axes[0], masks)):
        ax.imshow(m, cmap="gray", vmin=0, vmax=1, aspect="auto")
        last = k == len(masks) - 1
        ax.set_title(f"mask {k}: {'output' if last else f'hidden {k + 1}'} <- "
                     f"{'input' if k == 0 else f'hidden {k}'}", fontsize=9)
        ax.set_xlabel(f"{'input' if k == 0 else 'hidden'} unit ({sizes[k]})")
        ax.set_ylabel("output d" if last else f"hidden unit ({m.shape[0]})")
    reach = connectivity(masks) if masks else np.zeros((len(ordering),) * 2, bool)
    for ax, mat, t in ((axes[0][-2], reach, "connectivity\n(product of the masks)"),
                       (axes[0][-1], allowed(ordering), "allowed: ordering[j] < ordering[d]")):
        ax.imshow(mat, cmap="Blues", vmin=0, vmax=1)
        ax.set_title(t, fontsize=9)
        ax.set_xlabel("input j")
        ax.set_ylabel("output d")
    fig.suptitle(f"{title} (ordering {list(ordering)})")
    fig.tight_layout()
    return fig


def draw_dependency(jac, ordering=None, title: str = "dependency of the outputs on the inputs (by gradients)"):
    """|d output_d / d input_j| (one example or the max over a batch), with the allowed pattern beside it."""
    plt = _plt()
    jac = np.abs(np.asarray(jac, dtype=np.float64))
    if jac.ndim == 3:
        jac = jac.max(axis=0)
    n = 1 if ordering is None else 2
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8), squeeze=False)
    im = axes[0][0].imshow(np.log10(jac + 1e-12), cmap="viridis", vmin=-6, vmax=max(1.0, np.log10(jac.max() + 1e-12)))
    axes[0][0].set_title("log10 |d out_d / d x_j|\n(-6 and below: no dependence)", fontsize=9)
    fig.colorbar(im, ax=axes[0][0], label="log10 |gradient| (output units per input unit)")
    if ordering is not None:
        axes[0][1].imshow(allowed(ordering), cmap="Blues", vmin=0, vmax=1)
        axes[0][1].set_title(f"allowed (strictly before d)\nordering {list(ordering)}", fontsize=9)
    for ax in axes[0]:
        ax.set_xlabel("input j")
        ax.set_ylabel("output d")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _draw(result: CheckResult):
    data = getattr(result, "figure", None)
    if not data:
        return None
    if "masks" in data:
        return draw_masks(data["masks"], data["ordering"],
                          title=f"Your made_masks(hidden sizes {list(data['hidden'])})")
    if "dep" in data:
        return draw_dependency(data["dep"].astype(float)[None], data["ordering"],
                               title=f"Your MADE: which inputs {data['title']} depends on")
    if "jac" in data:
        return draw_dependency(data["jac"], data["ordering"],
                               title=f"Your MAFLayer: dz/dx of one example (log_det {data['log_det']:.3f} nats)")
    return None


def run_visible(grade_id: str, namespace: dict, weights: str | None = None, draw: bool = True) -> CheckResult:
    """Run one visible check on the notebook's own objects; draw its picture, print the verdict,
    raise ``AssertionError`` with the reason when it fails. Nothing is written to stderr."""
    from . import maf_probes

    if grade_id not in CHECKS:
        raise KeyError(f"no visible check {grade_id!r}; there are {sorted(CHECKS)}")
    with quiet():
        box = LocalBox(namespace, maf_probes, weights)
        result = CHECKS[grade_id](box)
        if draw:
            try:
                fig = _draw(result)
            except Exception as err:  # noqa: BLE001 - a picture of a wrong answer must not hide the verdict
                print(f"(the figure could not be drawn: {type(err).__name__}: {err})")
                fig = None
            if fig is not None:
                _show(fig)
    print(result.report())
    if not result.passed:
        raise AssertionError(f"{result.title}: " + "; ".join(result.failures()))
    return result
