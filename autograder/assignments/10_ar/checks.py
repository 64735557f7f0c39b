"""The hidden checks of assignment 10_ar, and every grade cell's check. SECRET: never released.

Every verdict is decided here, in the grader's process, from plain arrays that the student's
black box (:class:`autograder.sandbox.Box`, or :class:`arflow.checks.box.LocalBox` under plain
nbgrader) returned for probes chosen here with secret random seeds, and compared with
:mod:`.reference`. Each check returns a :class:`CheckResult`: points per sub-check and a sentence
saying what failed and why (shown in the feedback; the probes themselves are not). ``CHECKS``
holds them all: the visible ones are :mod:`arflow.checks.pixelcnn`'s (the notebook runs the same
ones), the trained model's check loads the weights file through the probes first.

Every reason a hidden check gives is written here: what the student's code said while answering
a hidden probe (an exception's message, printed output) could carry the probe's data or the
test digits into the student's own feedback, so it never reaches a report (only a builtin
exception type's name may). The nets given to ``generate`` stay in this process
(:class:`HandBuiltNet`, through :func:`arflow.checks.pixelcnn.generate_with`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from arflow.checks import pixelcnn as visible
from arflow.checks.box import StudentError
from arflow.checks.pixelcnn import (
    HandBuiltNet,
    expected_field,
    expected_mask,
    generate_with,
    seen_positions,
)
from arflow.checks.pixelcnn import f32 as _f32
from arflow.checks.pixelcnn import probe_kernel as _probe_kernel
from arflow.checks.pixelcnn import reported_dtype as _dtype
from arflow.checks.pixelcnn import rng_for as _rng
from arflow.checks.result import CheckResult, SubCheck

from . import reference
from .spec import BPD_THRESHOLD, HIDDEN_IDS, PLAN, REFERENCE_BPD

if TYPE_CHECKING:
    from autograder.sandbox import Box

__all__ = ["BPD_THRESHOLD", "CHECKS", "HIDDEN_IDS", "PLAN", "REFERENCE_BPD", "CheckResult", "HandBuiltNet",
           "SubCheck"]

LN2 = math.log(2.0)
# At random initialisation a real dependence through five layers can be as small as 1e-7, while a
# masked path contributes exact zeros (a masked weight multiplies by 0.0): any change counts.
DEP_TOL = 1e-10


def _number(value) -> str:
    """A reported number for a reason; anything else only by its JSON type."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return f"a value of type {type(value).__name__}"


# --------------------------------------------------------------------------- MaskedConv2d
CONV_CASES = [(1, 4, 3, True), (1, 4, 3, False), (3, 5, 5, True), (3, 5, 5, False), (2, 3, 7, True),
              (2, 3, 7, False)]


def check_masked_conv(box: Box, seed: int | None = None) -> CheckResult:
    rng = _rng(seed)
    result = CheckResult("hidden_masked_conv", PLAN["hidden_masked_conv"][0])
    field_msgs, output_msgs, train_msgs = [], [], []
    for n, (cin, cout, k, blind) in enumerate(CONV_CASES):
        label = f"MaskedConv2d({cin}, {cout}, {k}, blind_center={blind})"
        cid = f"conv{n}"
        try:
            box.call({"op": "conv_build", "id": cid, "in_channels": cin, "out_channels": cout, "kernel_size": k,
                      "blind_center": blind})
            kernel, bias = _probe_kernel(box, cid, cin, cout, k)
        except StudentError as err:
            msg = f"{label}: {err}"
            field_msgs.append(msg), output_msgs.append(msg), train_msgs.append(msg)
            continue
        mask = expected_mask(k, blind)
        found = seen_positions(kernel)
        if not np.array_equal(found, mask):
            extra, missing = found & ~mask, mask & ~found
            field_msgs.append(f"{label}: the output depends on {int(extra.sum())} kernel position(s) that the "
                              f"mask should hide and misses {int(missing.sum())} it should see"
                              + (" (the centre is seen although blind_center=True)" if blind and found[k // 2, k // 2]
                                 else ""))
        # Same effective weights and bias -> same outputs as the reference convolution.
        x = _f32(rng.random((2, cin, 9, 11)))
        try:
            _, out = box.call({"op": "conv_forward", "id": cid}, {"x": x})
            expected = F.conv2d(torch.from_numpy(x).double(), torch.from_numpy(kernel.copy()),
                                torch.from_numpy(bias.copy()), padding=k // 2).numpy()
            if out["y"].shape != expected.shape:
                output_msgs.append(f"{label}: output shape {out['y'].shape}, expected {expected.shape}")
            elif not np.allclose(out["y"], expected, atol=1e-4, rtol=1e-4):
                output_msgs.append(f"{label}: outputs differ from a plain convolution with the same kernel by up "
                                   f"to {np.abs(out['y'] - expected).max():.3g} (not a linear same-size convolution?)")
            # A few Adam steps with a large learning rate move every weight the loss can reach.
            g = _f32(rng.standard_normal((4, cout, 8, 8)))
            xt = _f32(rng.random((4, cin, 8, 8)))
            box.call({"op": "conv_train", "id": cid, "steps": 5, "lr": 0.3}, {"x": xt, "g": g})
            kernel2, _ = _probe_kernel(box, cid, cin, cout, k)
            scale2 = max(np.abs(kernel2).max(), 1e-12)
            # Judged against what the layer used before training, so a wrong mask is not counted twice.
            leaked = (np.abs(kernel2) > 1e-6 * scale2).any(axis=(0, 1)) & ~found
            moved = (np.abs(kernel2 - kernel) > 1e-3)[:, :, mask]
            if leaked.any():
                train_msgs.append(f"{label}: after 5 Adam steps the output depends on {int(leaked.sum())} kernel "
                                  "position(s) it did not see before: the mask must be applied at every forward "
                                  "pass, not once")
            elif not moved.all():
                train_msgs.append(f"{label}: Adam did not move the visible weights (are they registered "
                                  "parameters used by forward?)")
        except StudentError as err:
            msg = f"{label}: {err}"
            output_msgs.append(msg), train_msgs.append(msg)
    names = [name for name, _ in PLAN["hidden_masked_conv"][1]]
    result.add(names[0], 1, not field_msgs, "; ".join(field_msgs[:3]))
    result.add(names[1], 1, not output_msgs, "; ".join(output_msgs[:3]))
    result.add(names[2], 1, not train_msgs, "; ".join(train_msgs[:3]))
    return result


# --------------------------------------------------------------------------- PixelCNN
def _perturbation_field(box: Box, nid: str, size: tuple[int, int], pixel: tuple[int, int],
                        rng: np.random.Generator, bases: int = 3) -> np.ndarray:
    """(H, W) bool: the earlier input pixels (raster order) whose change changes the logits of ``pixel``
    (union over random bases). Later pixels and the pixel itself are left to the causality checks
    (the field's point needs them too): one image per earlier pixel, and only the logits of
    ``pixel`` come back, ``(B, 256)``, not the whole ``(B, 256, H, W)``."""
    H, W = size
    i, j = pixel
    earlier = i * W + j  # the pixels before ``pixel`` in raster order
    field = np.zeros(H * W, bool)
    for _ in range(bases):
        base = rng.integers(0, 256, (1, 1, H, W)) / 255.0
        x = np.repeat(base, earlier + 1, axis=0)
        for q in range(earlier):
            a, b = divmod(q, W)
            x[1 + q, 0, a, b] = (round(base[0, 0, a, b] * 255) + rng.integers(60, 197)) % 256 / 255.0
        reply, out = box.call({"op": "net_forward", "id": nid, "pixel": [i, j]}, {"x": _f32(x)})
        y = out["y"]
        if y.ndim != 2 or y.shape[0] != earlier + 1:
            raise StudentError(f"logits of shape {y.shape} for x of shape {x.shape}")
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise StudentError("the logits contain NaN or inf")
        field[:earlier] |= np.abs(y[1:] - y[0]).max(axis=1) > DEP_TOL
    return field.reshape(H, W)


def _future(size: tuple[int, int], pixel: tuple[int, int]) -> np.ndarray:
    H, W = size
    index = np.arange(H * W).reshape(H, W)
    return index >= pixel[0] * W + pixel[1]


def check_pixelcnn(box: Box, seed: int | None = None) -> CheckResult:
    rng = _rng(seed)
    result = CheckResult("hidden_pixelcnn", PLAN["hidden_pixelcnn"][0])
    names = [name for name, _ in PLAN["hidden_pixelcnn"][1]]
    shape_msgs, causal_msgs, field_msgs = [], [], []
    for n, k in enumerate((3, 5)):
        nid = f"net{n}"
        label = f"PixelCNN(n_channels=16, kernel_size={k})"
        try:
            reply, _ = box.call({"op": "net_build", "id": nid, "kwargs": {"n_channels": 16, "kernel_size": k}})
            if not reply.get("kwargs"):
                label = "PixelCNN() (it does not accept n_channels= and kernel_size=)"
                shape_msgs.append(label)
            for size in ((28, 28), (5, 9), (12, 3)):
                x = _f32(rng.integers(0, 256, (2, 1, *size)) / 255.0)
                reply, out = box.call({"op": "net_forward", "id": nid}, {"x": x})
                if out["y"].shape != (2, 256, *size) or _dtype(reply) != "torch.float32":
                    shape_msgs.append(f"{label}: for x of shape {x.shape} got logits {out['y'].shape} "
                                      f"{_dtype(reply)}, expected {(2, 256, *size)} torch.float32")
            size = (12, 12)
            for pixel in ((7, 6), (0, 5), (5, 0), (11, 11)):
                # Causality, by perturbing the pixel itself and every later one (several random images).
                xs = rng.integers(0, 256, (6, 1, *size)) / 255.0
                future = _future(size, pixel)
                perturbed = xs.copy()
                perturbed[:, 0][:, future] = rng.integers(0, 256, (6, int(future.sum()))) / 255.0
                _, a = box.call({"op": "net_forward", "id": nid}, {"x": _f32(xs)})
                _, b = box.call({"op": "net_forward", "id": nid}, {"x": _f32(perturbed)})
                change = np.abs(a["y"][:, :, pixel[0], pixel[1]] - b["y"][:, :, pixel[0], pixel[1]]).max()
                if not change <= DEP_TOL:
                    causal_msgs.append(f"{label}: the logits of pixel {pixel} change by {change:.3g} when that pixel "
                                       "and later ones (raster order) change")
                # ... and by gradients.
                _, g = box.call({"op": "net_grad", "id": nid, "pixel": list(pixel)}, {"x": _f32(xs)})
                if g["grad"].shape != xs.shape or (np.abs(g["grad"][:, 0][:, future]) > 0).any():
                    causal_msgs.append(f"{label}: the gradient of the logits of pixel {pixel} is non-zero on that "
                                       "pixel or later ones")
                # The receptive field: some stack of L >= 2 layers, first blind, the rest not.
                found = _perturbation_field(box, nid, size, pixel, rng)
                expected = [expected_field(k, L, size, pixel) for L in range(2, 25)]
                if not any(np.array_equal(found, e) for e in expected):
                    if found[pixel]:
                        why = "it includes the pixel itself (is the first layer blind?)"
                    elif pixel[1] > 0 and not found[pixel[0], pixel[1] - 1]:
                        why = "it misses the pixel just left (are the later layers blind too?)"
                    elif (found & _future(size, pixel)).any():
                        why = "it includes later pixels"
                    else:
                        why = (f"it matches no stack of masked {k}x{k} convolutions (first blind, the rest not); "
                               f"{int(found.sum())} pixels seen")
                    field_msgs.append(f"{label}: receptive field of pixel {pixel}: {why}")
        except StudentError as err:
            msg = f"{label}: {err}"
            shape_msgs.append(msg), causal_msgs.append(msg), field_msgs.append(msg)
    result.add(names[0], 1, not shape_msgs, "; ".join(shape_msgs[:3]))
    result.add(names[1], 1, not causal_msgs, "; ".join(causal_msgs[:3]))
    result.add(names[2], 1, not field_msgs and not causal_msgs, "; ".join((field_msgs or causal_msgs)[:3]))
    return result


# --------------------------------------------------------------------------- loss_fn
def check_loss_fn(box: Box, seed: int | None = None) -> CheckResult:
    rng = _rng(seed)
    result = CheckResult("hidden_loss_fn", PLAN["hidden_loss_fn"][0])
    names = [name for name, _ in PLAN["hidden_loss_fn"][1]]
    cases = []
    logits = _f32(rng.standard_normal((3, 256, 5, 6)) * 3)
    x = _f32(rng.integers(1, 255, (3, 1, 5, 6)) / np.float32(255))
    cases.append((names[0], logits, x))
    # Every intensity 0..255 once, jittered by up to 0.3 / 255 (the class is round(255 x), whatever x is:
    # a truncation with .long() is off by one below k), then an image of only 0 and 1.
    jitter = rng.uniform(-0.3, 0.3, 256)
    jitter[0], jitter[-1] = abs(jitter[0]), -abs(jitter[-1])
    x_all = ((np.arange(256) + jitter) / 255).astype(np.float32).reshape(1, 1, 16, 16)
    x_all = np.concatenate([x_all, np.where(rng.random((1, 1, 16, 16)) < 0.5, 0.0, 1.0).astype(np.float32)])
    logits_all = _f32(rng.standard_normal((2, 256, 16, 16)) * 4)
    # Peaked logits make a target that is off by one cost a lot.
    target = np.round(x_all[:, 0] * 255).astype(int)
    np.put_along_axis(logits_all, target[:, None], 12.0, axis=1)
    cases.append((names[1], logits_all, _f32(x_all)))
    for name, lg, xx in cases:
        expected = float(reference.loss_fn(torch.from_numpy(lg).double(), torch.from_numpy(xx)))
        try:
            reply, _ = box.call({"op": "loss"}, {"logits": lg, "x": xx})
            got = reply.get("loss")
        except StudentError as err:
            result.add(name, 1, False, str(err))
            continue
        ok = (isinstance(got, (int, float)) and math.isfinite(got)
              and abs(got - expected) <= 1e-4 * max(1, abs(expected)))
        hint = ""
        if ok is False and isinstance(got, (int, float)) and math.isfinite(got) and expected:
            ratio = got / expected
            if abs(ratio - 1 / LN2) < 1e-3:
                hint = " (that is the loss in bits; the contract asks for nats)"
            elif abs(ratio * lg.shape[2] * lg.shape[3] - 1) < 1e-3 or abs(ratio - lg.shape[2] * lg.shape[3]) < 1e-3:
                hint = " (a sum where a mean per pixel is expected, or the reverse?)"
        result.add(name, 1, ok, f"got {_number(got)}, expected {expected:.6f} (mean NLL per pixel in nats){hint}")
    return result


# --------------------------------------------------------------------------- generate
def _chain(start: int, step: int, H: int, W: int) -> np.ndarray:
    return ((start + step * np.arange(H * W)) % 256).reshape(H, W)


def check_generate(box: Box, seed: int | None = None) -> CheckResult:
    rng = _rng(seed)
    result = CheckResult("hidden_generate", PLAN["hidden_generate"][0])
    names = [name for name, _ in PLAN["hidden_generate"][1]]
    box.call({"op": "seed", "seed": int(rng.integers(2**62))})

    # 1. Shape and value range, with a net whose conditionals are fixed and spread out.
    try:
        logits = rng.normal(0, 1.5, 256)
        H, W = 5, 7
        reply, out = generate_with(box, HandBuiltNet("fixed", {"logits": logits.tolist()}), 3, (H, W))
        s = out["samples"]
        msgs = []
        if s.shape != (3, 1, H, W):
            msgs.append(f"generate(net, 3, image_size=({H}, {W})) returned shape {s.shape}, expected (3, 1, {H}, {W})")
        elif "float" not in _dtype(reply):
            msgs.append(f"samples have dtype {_dtype(reply)}, expected floats k/255")
        elif not (np.isfinite(s).all() and s.min() >= 0 and s.max() <= 1
                  and np.abs(s * 255 - np.round(s * 255)).max() < 1e-3):
            msgs.append("samples are not values k/255 in [0, 1]")
        result.add(names[0], 1, not msgs, "; ".join(msgs))
    except StudentError as err:
        result.add(names[0], 1, False, str(err))

    # 2. Raster order and conditioning: each pixel is (previous pixel + step) mod 256, with certainty.
    try:
        msgs = []
        for H, W in ((4, 6), (6, 3)):
            start, step = int(rng.integers(0, 256)), int(rng.integers(7, 120))
            _, out = generate_with(box, HandBuiltNet("chain", {"start": start, "step": step}), 2, (H, W))
            s = out["samples"]
            expected = _chain(start, step, H, W)
            if s.shape != (2, 1, H, W):
                msgs.append(f"shape {s.shape}, expected (2, 1, {H}, {W})")
                continue
            got = np.round(s[:, 0] * 255).astype(int)
            if not (got == expected).all():
                wrong = np.argwhere(got[0] != expected)
                first = tuple(int(v) for v in wrong[0]) if len(wrong) else None
                msgs.append(f"with a net whose every pixel is certain given the pixel before it in raster order, "
                            f"the {H}x{W} sample is wrong at {int((got != expected).sum())} of {2 * H * W} pixels"
                            + (f", first at {first}" if first else "")
                            + " (pixels must be sampled one by one in raster order, each from the net's output "
                              "for the image sampled so far)")
        result.add(names[1], 1, not msgs, "; ".join(msgs[:2]))
    except StudentError as err:
        result.add(names[1], 1, False, str(err))

    # 3. Real sampling: frequencies match the softmax, every image is drawn on its own, two runs differ.
    try:
        values = rng.choice(256, 4, replace=False)
        probs = np.array([0.4, 0.3, 0.2, 0.1])
        logits = np.full(256, -30.0)
        logits[values] = np.log(probs) + rng.normal(0, 0.0, 4)
        H, W, n = 8, 8, 24
        samples, repeated = [], False
        for _ in range(2):
            _, out = generate_with(box, HandBuiltNet("fixed", {"logits": logits.tolist()}), n, (H, W))
            drawn = np.round(out["samples"].reshape(-1) * 255).astype(int)
            samples.append(drawn)
            # Two of n independent 8x8 images agree everywhere with probability < n^2 0.3^64: never.
            repeated |= drawn.size == n * H * W and len(np.unique(drawn.reshape(n, -1), axis=0)) < n
        counts = np.array([(samples[0] == v).sum() for v in values])
        total = len(samples[0])
        expected = probs * total
        chi2 = float((((counts - expected) ** 2) / expected).sum())
        # chi-square with 3 degrees of freedom: P(chi2 > 21.1) = 1e-4 for a correct sampler.
        msgs = []
        if counts.sum() != total:
            msgs.append(f"{total - counts.sum()} of {total} sampled values have probability ~0 under the softmax")
        elif chi2 > 21.1:
            msgs.append(f"with P = {probs.tolist()} at every pixel, the {total} sampled values were found with "
                        f"frequencies {np.round(counts / total, 3).tolist()} (sampling must follow the softmax, "
                        "not the argmax or a temperature)")
        if np.array_equal(samples[0], samples[1]):
            msgs.append("two calls returned the same samples (sampling must be random)")
        elif repeated:
            msgs.append("images of one call repeat: every image must be drawn on its own (one value per pixel AND "
                        "per image), not one draw copied into several images")
        result.add(names[2], 1, not msgs, "; ".join(msgs))
    except StudentError as err:
        result.add(names[2], 1, False, str(err))
    return result


# --------------------------------------------------------------------------- the trained model
#: Images per log-softmax in the trained-model check: 10 digits are 8 MB of float32, 100 would be 80 MB.
LOGP_CHUNK = 10


def _score_logits(y: np.ndarray, images: np.ndarray, idx: np.ndarray, N: int, a_idx: np.ndarray,
                  pos: np.ndarray, logp_at: dict, nll: float) -> float | None:
    """``nll`` plus the NLL (nats) of the real digits among ``idx`` from their logits ``y``, in
    chunks of :data:`LOGP_CHUNK` images; keeps (copies of) the log-probabilities at the splice
    points in ``logp_at``. None when the logits are not finite."""
    W = images.shape[-1]
    for c0 in range(0, len(idx), LOGP_CHUNK):
        rows = idx[c0:c0 + LOGP_CHUNK]
        # float32 is exact enough for a log-softmax of logits that came as float16 or float32; the sums are float64
        logp = torch.log_softmax(torch.from_numpy(y[c0:c0 + LOGP_CHUNK]).float(), dim=1)
        # log-softmax values are <= 0 or NaN, so their minimum is finite exactly when all are (one pass,
        # no mask: a third of the cost of isfinite().all() on 20 M values)
        if not torch.isfinite(logp.min()):
            return None
        picked = logp.gather(1, torch.from_numpy(images[rows, 0])[:, None]).squeeze(1).double()  # (b, H, W)
        for row, k in enumerate(rows):
            # A copy: a view would keep this chunk's whole log-probability tensor alive.
            if k < N:
                nll -= float(picked[row].sum())
                for r in np.nonzero(a_idx == k)[0]:  # the splice points of the pairs this digit starts
                    logp_at[("a", int(r))] = logp[row, :, pos[r] // W, pos[r] % W].numpy().copy()
            else:
                r = int(k - N)
                logp_at[("s", r)] = logp[row, :, pos[r] // W, pos[r] % W].numpy().copy()
    return nll


def check_trained_model(box: Box, weights_loaded: bool, seed: int | None = None,
                        limit: int | None = None, batch_size: int = 100) -> CheckResult:
    """Test bits/dim computed here from the logits the box returns, on the grader-only digits
    (:mod:`autograder.heldout`, never shipped to students); causality checked on real digits."""
    from autograder.heldout import grader_digits

    rng = _rng(seed)
    result = CheckResult("hidden_trained_model", PLAN["hidden_trained_model"][0])
    name = PLAN["hidden_trained_model"][1][0][0]
    if not weights_loaded:
        result.add(name, 5, False, "no weights were loaded")
        return result
    images, _ = grader_digits(limit)
    images = np.asarray(images, dtype=np.int64)
    N, _, H, W = images.shape
    # Spliced digits: image a up to pixel p, then image b from p on. Mixed in with the real ones so
    # that the box cannot tell them apart, and logits at p must not change.
    n_splice = max(8, N // 5)
    a_idx, b_idx = rng.integers(0, N, n_splice), rng.integers(0, N, n_splice)
    pos = rng.integers(0, H * W, n_splice)
    spliced = images[a_idx].reshape(n_splice, -1).copy()
    donor = images[b_idx].reshape(n_splice, -1)
    for r in range(n_splice):
        spliced[r, pos[r]:] = donor[r, pos[r]:]
        spliced[r, pos[r]] = (spliced[r, pos[r]] + rng.integers(1, 256)) % 256  # the pixel itself differs
    all_images = np.concatenate([images, spliced.reshape(n_splice, 1, H, W)])
    order = rng.permutation(len(all_images))
    nll_total, logp_at = 0.0, {}
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x = _f32(all_images[idx] / np.float32(255))
        try:
            _, out = box.call({"op": "net_forward", "id": "trained", "half": True}, {"x": x})
        except StudentError as err:
            result.add(name, 5, False, f"the model failed on test images: {err}")
            return result
        y = out.pop("y", None)
        if y is None or y.shape != (len(idx), 256, H, W) or y.dtype not in (np.float16, np.float32):
            result.add(name, 5, False, f"logits of shape {None if y is None else y.shape} for x of shape {x.shape}")
            return result
        nll_total = _score_logits(y, all_images, idx, N, a_idx, pos, logp_at, nll_total)
        del y, out  # before the next answer arrives: one batch of logits at a time
        if nll_total is None:
            result.add(name, 5, False, "the logits contain NaN or inf")
            return result
    bpd = nll_total / (N * H * W) / LN2
    worst = max(float(np.abs(logp_at[("a", r)] - logp_at[("s", r)]).max()) for r in range(n_splice))
    if worst > 1e-3:
        result.add(name, 5, False, f"the model is not causal on real digits: the predicted distribution of a pixel "
                                   f"changes (by up to {worst:.3g} nats) when that pixel and later ones change; its "
                                   f"test bits/dim ({bpd:.3f}) does not count")
    elif not bpd < BPD_THRESHOLD:
        result.add(name, 5, False, f"test bits/dim {bpd:.3f} is not below the threshold {BPD_THRESHOLD:.2f} "
                                   "(train longer or check the loss)")
    else:
        result.add(name, 5, True)
    result.bits_per_dim = bpd
    result.info = f"test bits/dim measured by the grader: {bpd:.3f} (threshold {BPD_THRESHOLD:.2f})"
    return result


def check_loaded_model(box: Box, seed: int | None = None, limit: int | None = None) -> CheckResult:
    """Load the weights file into ``PixelCNN()`` through the probes, then :func:`check_trained_model`."""
    try:
        box.call({"op": "net_load", "id": "trained"})
    except StudentError as err:
        reason = ("pixelcnn.pth was not submitted" if (err.student_text or "").startswith("FileNotFoundError")
                  else _load_reason(err))
        from autograder.assignment import load
        from autograder.verdicts import failed_result

        return failed_result(load("10_ar"), "hidden_trained_model", reason)
    return check_trained_model(box, True, seed=seed, limit=limit)


#: Why torch refused a weights file, by a phrase of its message: the reason then is the grader's.
LOAD_REASONS = (("Weights only load failed", "torch.load(weights_only=True) refused the file: it holds more than "
                 "tensors (Weights only load failed)"),
                ("size mismatch", "the tensors' sizes do not fit PixelCNN() (size mismatch): saved from other "
                 "settings or another architecture?"),
                ("Missing key", "the tensors' names do not match PixelCNN() (missing or unexpected keys)"),
                ("Unexpected key", "the tensors' names do not match PixelCNN() (missing or unexpected keys)"))


def _load_reason(err: StudentError) -> str:
    """Why pixelcnn.pth could not be loaded, in the grader's words (a choice among fixed sentences)."""
    said = err.student_text or ""
    why = next((reason for phrase, reason in LOAD_REASONS if phrase in said), str(err))
    return f"pixelcnn.pth could not be loaded into PixelCNN(): {why}"


# --------------------------------------------------------------------------- all together
#: grade id -> check(box, seed=None): every grade cell's, visible and hidden.
CHECKS = {**visible.CHECKS,
          "hidden_masked_conv": check_masked_conv, "hidden_pixelcnn": check_pixelcnn, "hidden_loss_fn": check_loss_fn,
          "hidden_generate": check_generate, "hidden_trained_model": check_loaded_model}
