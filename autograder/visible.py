"""The visible tests' verdicts, decided by the grader (not by the student's kernel).

The notebook's visible test cells (``arflow.assignment_checks``) run in the student's kernel,
where a submission can patch ``assert``, numpy or the checks themselves. So the grader decides
their points again here, from the black box's answers, with the same probes and the same
all-or-nothing rule as the notebook (a student whose visible test passes at home passes here).
Whatever the notebook's own test cells printed decides nothing. The probes are public, so a
failure may show the student's own exception message (``StudentError.visible_text``), which the
hidden checks never do.
"""

from __future__ import annotations

import math

import numpy as np

from arflow.assignment_checks import expected_mask

from . import reference
from .checks import VISIBLE_KIND, CheckResult, HandBuiltNet, StudentError, _dtype, _f32, _probe_kernel, _rng
from .sandbox import Box

#: grade id -> (title, points, what the visible test checks)
VISIBLE = {
    "test_masked_conv": ("MaskedConv2d", 2, "output shape, masks for k = 3 and 5, the mask after Adam steps"),
    "test_pixelcnn": ("PixelCNN", 2, "output shape and dtype, receptive fields of PixelCNN(16, 3)"),
    "test_loss_fn": ("loss_fn", 1, "uniform logits cost ln 256 nats per pixel; peaked logits cost ~0"),
    "test_generate": ("generate", 2, "shape and values k/255, random sampling, raster order"),
}
VISIBLE_IDS = tuple(VISIBLE)


def _result(gid: str, failures: list[str]) -> CheckResult:
    title, points, what = VISIBLE[gid]
    result = CheckResult(gid, title, kind=VISIBLE_KIND)
    result.add(what, points, not failures, "; ".join(failures[:2]))
    return result


def visible_masked_conv(box: Box, seed: int | None = None) -> CheckResult:
    rng = _rng(seed)
    failures: list[str] = []
    try:
        for k in (3, 5):
            for blind in (True, False):
                label = f"MaskedConv2d(2, 3, {k}, blind_center={blind})"
                cid = f"visible_conv{k}{int(blind)}"
                box.call({"op": "conv_build", "id": cid, "in_channels": 2, "out_channels": 3, "kernel_size": k,
                          "blind_center": blind})
                _, out = box.call({"op": "conv_forward", "id": cid}, {"x": _f32(rng.random((2, 2, 7, 9)))})
                if out["y"].shape != (2, 3, 7, 9):
                    failures.append(f"{label} maps x of shape (2, 2, 7, 9) to {out['y'].shape}; expected (2, 3, 7, 9)")
                    continue
                expected = expected_mask(k, blind)
                kernel, _ = _probe_kernel(box, cid, 2, 3, k)
                scale = max(np.abs(kernel).max(), 1e-12)
                if not np.array_equal((np.abs(kernel) > 1e-6 * scale).any(axis=(0, 1)), expected):
                    failures.append(f"{label}: the centre output depends on the wrong inputs")
                    continue
                box.call({"op": "conv_train", "id": cid, "steps": 3, "lr": 0.5},
                         {"x": _f32(rng.random((2, 2, 7, 9))), "g": _f32(rng.standard_normal((2, 3, 7, 9)))})
                kernel, _ = _probe_kernel(box, cid, 2, 3, k)
                scale = max(np.abs(kernel).max(), 1e-12)
                if not np.array_equal((np.abs(kernel) > 1e-6 * scale).any(axis=(0, 1)), expected):
                    failures.append(f"{label}: after 3 Adam steps the mask no longer holds")
    except StudentError as err:
        failures.append(err.visible_text())
    return _result("test_masked_conv", failures)


def visible_pixelcnn(box: Box, seed: int | None = None) -> CheckResult:
    rng = _rng(seed)
    failures: list[str] = []
    try:
        box.call({"op": "net_build", "id": "visible_net", "kwargs": {"n_channels": 16, "kernel_size": 3}})
        reply, out = box.call({"op": "net_forward", "id": "visible_net"}, {"x": _f32(rng.random((2, 1, 10, 12)))})
        if out["y"].shape != (2, 256, 10, 12):
            failures.append(f"PixelCNN maps x of shape (2, 1, 10, 12) to {out['y'].shape}; expected (2, 256, 10, 12)")
        elif _dtype(reply) != "torch.float32":
            failures.append(f"logits have dtype {_dtype(reply)}; expected torch.float32")
        size = (10, 12)
        for pixel in ((5, 6), (0, 4), (9, 0)) if not failures else ():
            field = np.zeros(size, bool)
            for _ in range(4):  # one random input can hide a dependence when every ReLU on its paths is off
                _, g = box.call({"op": "net_grad", "id": "visible_net", "pixel": list(pixel)},
                                {"x": _f32(rng.random((1, 1, *size)))})
                field |= g["grad"][0, 0] != 0
            if not any(np.array_equal(field, reference.reachable_field(3, layers, size, pixel).numpy())
                       for layers in range(2, 25)):
                failures.append(f"PixelCNN(n_channels=16, kernel_size=3): the receptive field of pixel {pixel} is "
                                "not that of a stack of masked convolutions (first blind, the rest not)")
                break
    except StudentError as err:
        failures.append(err.visible_text())
    return _result("test_pixelcnn", failures)


def visible_loss_fn(box: Box, seed: int | None = None) -> CheckResult:
    failures: list[str] = []
    x = (np.arange(256, dtype=np.float32) / 255).reshape(1, 1, 16, 16)
    peaked = np.zeros((1, 256, 16, 16), np.float32)
    np.put_along_axis(peaked, np.round(x * 255).astype(np.int64), 30.0, axis=1)
    below = (np.clip(np.arange(256, dtype=np.float32) - 0.3, 0, None) / 255).reshape(1, 1, 16, 16)
    cases = [("uniform logits", np.zeros((1, 256, 16, 16), np.float32), x, math.log(256), 1e-4),
             ("logits peaked at round(255 x)", peaked, x, 0.0, 1e-3),
             ("x = (k - 0.3) / 255 with logits peaked at k", peaked, _f32(below), 0.0, 1e-3),
             ("a batch of 2 with uniform logits", np.zeros((2, 256, 16, 16), np.float32),
              np.concatenate([x, x[..., ::-1]]), math.log(256), 1e-4)]
    try:
        for label, logits, xx, expected, tol in cases:
            reply, _ = box.call({"op": "loss"}, {"logits": _f32(logits), "x": _f32(xx)})
            got = reply.get("loss")
            if not (isinstance(got, (int, float)) and abs(got - expected) < tol):
                failures.append(f"{label}: loss {got!r}, expected {expected:.4f} nats per pixel")
                break
    except StudentError as err:
        failures.append(err.visible_text())
    return _result("test_loss_fn", failures)


def visible_generate(box: Box, seed: int | None = None) -> CheckResult:
    rng = _rng(seed)
    failures: list[str] = []
    try:
        box.call({"op": "seed", "seed": int(rng.integers(2**62))})
        logits = np.full(256, -30.0)
        logits[[40, 200]] = 0.0
        reply, out = box.generate(HandBuiltNet("fixed", {"logits": logits.tolist()}), 4, (5, 7))
        s = out["samples"]
        values = set(np.round(s * 255).astype(np.int64).ravel().tolist()) if s.size else set()
        if s.shape != (4, 1, 5, 7):
            failures.append(f"generate(net, 4, image_size=(5, 7)) returned shape {s.shape}")
        elif "float" not in _dtype(reply):
            failures.append(f"samples should be floats k/255, got {_dtype(reply)}")
        elif not values <= {40, 200}:
            failures.append("with P(40) = P(200) = 1/2 the samples hold other values (return k/255, not k)")
        elif values != {40, 200}:
            failures.append("with P(40) = P(200) = 1/2 every pixel took the same value: sample, not argmax")
        else:
            _, out = box.generate(HandBuiltNet("chain", {"start": 10, "step": 37}), 1, (4, 6))
            expected = (10 + 37 * np.arange(24)) % 256
            s = out["samples"]
            if s.shape != (1, 1, 4, 6) or not np.array_equal(np.round(s.reshape(-1) * 255).astype(np.int64), expected):
                failures.append("the sample does not follow the chain net (each pixel = previous pixel + 37): "
                                "sample pixel by pixel in raster order")
    except StudentError as err:
        failures.append(err.visible_text())
    return _result("test_generate", failures)


CHECKS = {"test_masked_conv": visible_masked_conv, "test_pixelcnn": visible_pixelcnn,
          "test_loss_fn": visible_loss_fn, "test_generate": visible_generate}
