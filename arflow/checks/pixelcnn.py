"""Assignment 10_ar (PixelCNN): the reference answers and the visible checks, written once.

The visible checks run at home and under plain nbgrader on :class:`arflow.checks.box.LocalBox`
(the notebook's own objects) and in the course's grader on its jailed box; they are the same
functions with the same probes and the same all-or-nothing verdict either way (a test runs every
sample both ways). Their reference answers are properties of a correct answer (which kernel
positions a mask keeps, which pixels a stack of masked convolutions sees), computed
analytically here, never the solution's code. The hidden checks, stricter and with secret
probes, live in the grader and reuse the helpers below.
"""

from __future__ import annotations

import functools
import math
import re
import secrets
from dataclasses import dataclass

import numpy as np

from .box import StudentError
from .result import VISIBLE_KIND, CheckResult

#: grade id -> (title, points, what the visible test checks)
VISIBLE = {
    "test_masked_conv": ("MaskedConv2d", 2, "output shape, masks for k = 3 and 5, the mask after Adam steps"),
    "test_pixelcnn": ("PixelCNN", 2, "output shape and dtype, receptive fields of PixelCNN(16, 3)"),
    "test_loss_fn": ("loss_fn", 1, "uniform logits cost ln 256 nats per pixel; peaked logits cost ~0"),
    "test_generate": ("generate", 2, "shape and values k/255, random sampling, raster order"),
}


# --------------------------------------------------------------------------- reference answers
def expected_mask(kernel_size: int, blind_center: bool) -> np.ndarray:
    """(k, k) bool: the kernel positions a masked convolution may use (rows above; left in the centre row)."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}")
    k, c = kernel_size, kernel_size // 2
    rows, cols = np.mgrid[0:k, 0:k]
    before = (rows < c) | ((rows == c) & (cols < c))
    return before | ((rows == c) & (cols == c) & (not blind_center))


def expected_field(kernel_size: int, n_layers: int, image_size: tuple[int, int],
                   pixel: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the inputs that output ``pixel`` sees through ``n_layers`` masked k x k convolutions,
    the first blind (``blind_center=True``), the rest not. A copy of a cached answer: a grading worker
    asks for the same few dozen fields for every submission."""
    return _expected_field(int(kernel_size), int(n_layers), tuple(image_size), tuple(pixel)).copy()


@functools.lru_cache(maxsize=4096)
def _expected_field(kernel_size: int, n_layers: int, image_size: tuple[int, int],
                    pixel: tuple[int, int]) -> np.ndarray:
    # Walk back from the output one layer at a time: q feeds p through a layer when p - q is one of
    # that layer's visible kernel offsets.
    H, W = image_size
    c = kernel_size // 2
    reach = np.zeros((H, W), bool)
    reach[pixel] = True
    for layer in reversed(range(n_layers)):
        new = np.zeros_like(reach)
        for di, dj in np.argwhere(expected_mask(kernel_size, blind_center=(layer == 0))) - c:
            # the input at p + (di, dj) feeds output p: shift the outputs reached by (di, dj), no wrap-around
            src = np.zeros_like(reach)
            src[max(di, 0):H + min(di, 0), max(dj, 0):W + min(dj, 0)] = \
                reach[max(-di, 0):H + min(-di, 0), max(-dj, 0):W + min(-dj, 0)]
            new |= src
        reach = new
    return reach


def strictly_before(image_size: tuple[int, int], pixel: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels before ``pixel`` in raster order (the only ones it may depend on)."""
    H, W = image_size
    return np.arange(H * W).reshape(H, W) < pixel[0] * W + pixel[1]


# --------------------------------------------------------------------------- probe helpers
def rng_for(seed: int | None) -> np.random.Generator:
    """A generator for a check's probes: a secret random seed unless one is given."""
    return np.random.default_rng(secrets.randbits(63) if seed is None else seed)


def f32(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def reported_dtype(reply: dict) -> str:
    """The dtype the box reported, when it looks like a torch dtype (the student's process could say anything)."""
    value = reply.get("dtype")
    return value if isinstance(value, str) and re.fullmatch(r"torch\.\w{1,20}", value) else "an unknown dtype"


def probe_kernel(box, cid: str, cin: int, cout: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Recover (kernel (cout, cin, k, k), bias (cout,)) of a linear same-size conv by unit impulses."""
    r = k // 2
    x = np.zeros((1 + cin, cin, k, k), np.float32)
    for c in range(cin):
        x[1 + c, c, r, r] = 1.0
    _, out = box.call({"op": "conv_forward", "id": cid}, {"x": x})
    y = out["y"].astype(np.float64)
    if y.shape != (1 + cin, cout, k, k):
        raise StudentError(f"output shape {y.shape} for an input of shape {x.shape}; "
                           f"expected {(1 + cin, cout, k, k)} (stride 1, padding k // 2)")
    base = y[0]
    bias = base[:, r, r]
    if not np.allclose(base, bias[:, None, None], atol=1e-5):
        raise StudentError("the output for a zero input is not a constant bias per channel")
    kernel = np.stack([(y[1 + c] - base)[:, ::-1, ::-1] for c in range(cin)], axis=1)
    return kernel, bias


def seen_positions(kernel: np.ndarray) -> np.ndarray:
    """(k, k) bool: the kernel positions any output channel depends on (relative to the largest weight)."""
    scale = max(np.abs(kernel).max(), 1e-12)
    return (np.abs(kernel) > 1e-6 * scale).any(axis=(0, 1))


@dataclass
class HandBuiltNet:
    """A net with known conditionals, for ``generate``; it stays with the checker.

    ``kind="fixed"``: the same ``logits`` (256 values) at every pixel. ``kind="chain"``: every
    pixel is (previous pixel in raster order + ``step``) mod 256 with certainty (logit 40), the
    first one ``start``. Called with ``x`` (B, 1, h, w) floats k/255, returns float32 logits
    (B, 256, h, w).
    """

    kind: str
    params: dict

    def __call__(self, x: np.ndarray) -> np.ndarray:
        B, _, H, W = x.shape
        if self.kind == "fixed":
            logits = np.asarray(self.params["logits"], dtype=np.float32).reshape(1, 256, 1, 1)
            return np.broadcast_to(logits, (B, 256, H, W))
        with np.errstate(invalid="ignore"):  # NaN pixels become some value: a wrong sample, not a crash
            values = np.nan_to_num(np.round(x[:, 0].reshape(B, H * W) * np.float32(255)))  # float32, as torch
        values = values.clip(-2**40, 2**40).astype(np.int64)
        start, step = self.params["start"], self.params["step"]
        first = np.full((B, 1), (start - step) % 256, dtype=np.int64)
        previous = np.concatenate([first, values[:, :-1]], axis=1)  # the pixel before, in raster order
        target = (previous + step) % 256
        out = np.zeros((B, 256, H * W), np.float32)
        np.put_along_axis(out, target[:, None, :], 40.0, axis=1)
        return out.reshape(B, 256, H, W)


class ProbeSession:
    """One ``generate`` probe: answers the submission's forward calls with the logits of a net held here.

    The calls are bounded in number (four per pixel and sample: a ``generate`` may sample its
    images one at a time) and in size (inputs of at most ``max(8 n, 64) H W`` values); past a
    bound the call is refused with a reason, and the probe fails with it whatever the
    submission does next.
    """

    def __init__(self, net, n_samples: int, image_size: tuple[int, int]):
        H, W = image_size
        self.net, self.refused, self.calls = net, "", 0
        self.max_calls = 4 * max(n_samples, 1) * H * W + 16
        self.max_values = max(8 * n_samples, 64) * H * W

    @property
    def input_cap(self) -> int:
        """The largest payload a forward call may announce (its float32 input, npz framing)."""
        return 4 * self.max_values + 64 * 1024

    def _refuse(self, reason: str) -> tuple[dict, None]:
        self.refused = self.refused or reason
        return {"ok": False, "error": reason}, None

    def answer(self, header: dict, arrays: dict[str, np.ndarray]) -> tuple[dict, dict | None]:
        """The reply to one forward call: the logits, or a refusal with the checker's reason."""
        self.calls += 1
        if self.calls > self.max_calls:
            return self._refuse(f"generate called the net more than {self.max_calls} times in one call of generate "
                                "(one call per pixel, or per pixel and sample, is enough)")
        x = arrays.get("x")
        if x is None or x.ndim != 4 or x.shape[1] != 1 or x.size == 0 or x.dtype.kind != "f":
            shape = "no array" if x is None else f"a {x.dtype.name} array of shape {tuple(x.shape)}"
            return self._refuse(f"the net was called with {shape}; it takes floats of shape (B, 1, H, W)")
        if x.size > self.max_values:
            return self._refuse(f"the net was called with an input of {x.size} values, more than the "
                                f"{self.max_values} this probe allows")
        return {"ok": True}, {"logits": np.ascontiguousarray(self.net(x.astype(np.float32)), dtype=np.float32)}


def generate_with(box, net, n_samples: int, image_size: tuple[int, int],
                  timeout: float | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """The submission's ``generate(net, n_samples, image_size)`` on a net that stays with the checker:
    each forward call of the net the submission holds is answered here. Raises :class:`StudentError`."""
    H, W = (int(v) for v in image_size)
    session = ProbeSession(net, int(n_samples), (H, W))
    header = {"op": "generate", "n_samples": int(n_samples), "image_size": [H, W]}
    reply, out = box.request(header, timeout=timeout, on_callback=session.answer, callback_cap=session.input_cap)
    if session.refused:
        raise StudentError(session.refused)
    if not reply.get("ok"):
        from . import pixelcnn_probes
        from .box import student_error

        raise student_error(pixelcnn_probes, "generate", reply)
    return reply, out


def all_equal_images(samples: np.ndarray) -> bool:
    """Whether every image of a batch ``(n, 1, H, W)`` is the same (one draw copied into all of them)."""
    return samples.shape[0] > 1 and bool((samples == samples[:1]).all())


# --------------------------------------------------------------------------- the visible checks
def _result(gid: str, failures: list[str], figure: dict | None = None) -> CheckResult:
    title, points, what = VISIBLE[gid]
    result = CheckResult(gid, title, kind=VISIBLE_KIND)
    result.add(what, points, not failures, "; ".join(failures[:2]))
    result.figure = figure  # what to draw at home when it failed (expected and found arrays)
    return result


def visible_masked_conv(box, seed: int | None = None) -> CheckResult:
    """Shape, the mask (by unit impulses) for k = 3, 5 and both ``blind_center``, the mask after Adam steps."""
    rng = rng_for(seed)
    failures: list[str] = []
    figure = None
    try:
        for k in (3, 5):
            for blind in (True, False):
                label = f"MaskedConv2d(2, 3, {k}, blind_center={blind})"
                cid = f"visible_conv{k}{int(blind)}"
                box.call({"op": "conv_build", "id": cid, "in_channels": 2, "out_channels": 3, "kernel_size": k,
                          "blind_center": blind})
                _, out = box.call({"op": "conv_forward", "id": cid}, {"x": f32(rng.random((2, 2, 7, 9)))})
                if out["y"].shape != (2, 3, 7, 9):
                    failures.append(f"{label} maps x of shape (2, 2, 7, 9) to {out['y'].shape}; expected (2, 3, 7, 9) "
                                    "(padding?)")
                    break
                expected = expected_mask(k, blind)
                found = seen_positions(probe_kernel(box, cid, 2, 3, k)[0])
                if not np.array_equal(found, expected):
                    failures.append(f"{label}: the centre output depends on the wrong inputs")
                    figure = {"expected": expected, "found": found, "title": f"{label}: which inputs reach the centre "
                                                                              "output"}
                    break
                # The mask must survive training: Adam with a large step moves every weight it can.
                box.call({"op": "conv_train", "id": cid, "steps": 3, "lr": 0.5},
                         {"x": f32(rng.random((2, 2, 7, 9))), "g": f32(rng.standard_normal((2, 3, 7, 9)))})
                found = seen_positions(probe_kernel(box, cid, 2, 3, k)[0])
                if not np.array_equal(found, expected):
                    failures.append(f"{label}: after 3 Adam steps the mask no longer holds; apply it in every "
                                    "forward pass, not once in __init__")
                    figure = {"expected": expected, "found": found, "title": f"{label} after 3 Adam steps"}
                    break
            if failures:
                break
    except StudentError as err:
        failures.append(err.visible_text())
    return _result("test_masked_conv", failures, figure)


def visible_pixelcnn(box, seed: int | None = None) -> CheckResult:
    """Shape and dtype, and the receptive fields (by gradients) of a few pixels of ``PixelCNN(16, 3)``
    against those of a stack of as many masked 3x3 layers as it has (first blind)."""
    rng = rng_for(seed)
    failures: list[str] = []
    figure = None
    try:
        reply, _ = box.call({"op": "net_build", "id": "visible_net", "kwargs": {"n_channels": 16, "kernel_size": 3}})
        if not reply.get("kwargs"):
            failures.append("PixelCNN(n_channels=16, kernel_size=3) raised TypeError: it must take these arguments")
        reply, out = box.call({"op": "net_forward", "id": "visible_net"}, {"x": f32(rng.random((2, 1, 10, 12)))})
        if out["y"].shape != (2, 256, 10, 12):
            failures.append(f"PixelCNN maps x of shape (2, 1, 10, 12) to {out['y'].shape}; expected (2, 256, 10, 12)")
        elif reported_dtype(reply) != "torch.float32":
            failures.append(f"logits have dtype {reported_dtype(reply)}; expected torch.float32")
        reply, _ = box.call({"op": "net_layers", "id": "visible_net"})
        n_layers = reply.get("masked_layers")
        if not failures and not (isinstance(n_layers, int) and 2 <= n_layers <= 64):
            failures.append(f"PixelCNN has {n_layers!r} MaskedConv2d layer(s); a stack needs at least 2")
        size = (10, 12)
        for pixel in ((5, 6), (0, 4), (9, 0)) if not failures else ():
            found = np.zeros(size, bool)
            for _ in range(4):  # one random input can hide a dependence when every ReLU on its paths is off
                _, g = box.call({"op": "net_grad", "id": "visible_net", "pixel": list(pixel)},
                                {"x": f32(rng.random((1, 1, *size)))})
                found |= g["grad"][0, 0] != 0
            expected = expected_field(3, n_layers, size, pixel)
            if not np.array_equal(found, expected):
                why = ("it depends on the pixel itself or later pixels: not causal"
                       if (found & ~strictly_before(size, pixel)).any()
                       else f"it differs from a stack of {n_layers} masked convolutions (first blind, the rest not)")
                failures.append(f"PixelCNN(n_channels=16, kernel_size=3): receptive field of pixel {pixel}: {why}")
                figure = {"expected": expected, "found": found, "pixel": pixel,
                          "title": f"Receptive field of pixel {pixel}: {n_layers} masked 3x3 layers (first blind)"}
                break
    except StudentError as err:
        failures.append(err.visible_text())
    return _result("test_pixelcnn", failures, figure)


def visible_loss_fn(box, seed: int | None = None) -> CheckResult:
    """Uniform logits cost ln 256 nats; logits peaked at round(255 x) cost ~0, for every intensity and
    for inputs a little off k/255 (resized or noised images are not exactly k/255)."""
    failures: list[str] = []
    x = (np.arange(256, dtype=np.float32) / 255).reshape(1, 1, 16, 16)
    peaked = np.zeros((1, 256, 16, 16), np.float32)
    np.put_along_axis(peaked, np.round(x * 255).astype(np.int64), 30.0, axis=1)
    below = (np.clip(np.arange(256, dtype=np.float32) - 0.3, 0, None) / 255).reshape(1, 1, 16, 16)
    cases = [("with all logits 0 (a uniform softmax)", np.zeros((1, 256, 16, 16), np.float32), x, math.log(256), 1e-4),
             ("logits peaked at the class round(255 x) of every pixel", peaked, x, 0.0, 1e-3),
             ("x = (k - 0.3) / 255 (class k = round(255 x)) with logits peaked at k", peaked, f32(below), 0.0, 1e-3),
             ("a batch of 2 with uniform logits", np.zeros((2, 256, 16, 16), np.float32),
              np.concatenate([x, x[..., ::-1]]), math.log(256), 1e-4)]
    try:
        for label, logits, xx, expected, tol in cases:
            reply, _ = box.call({"op": "loss"}, {"logits": f32(logits), "x": f32(xx)})
            got = reply.get("loss")
            if not (isinstance(got, (int, float)) and abs(got - expected) < tol):
                hint = " (that is in bits: use nats)" if isinstance(got, float) and abs(got - 8) < 1e-3 else ""
                if "0.3" in label:
                    hint = " (round 255 x with torch.round; truncating it with .long() maps it to k - 1)"
                failures.append(f"{label}: loss {got!r}, expected {expected:.4f} nats per pixel{hint}")
                break
    except StudentError as err:
        failures.append(err.visible_text())
    return _result("test_loss_fn", failures)


def visible_generate(box, seed: int | None = None) -> CheckResult:
    """Shape and values k/255; sampling (not argmax), each image drawn on its own; raster order with a chain net."""
    rng = rng_for(seed)
    failures: list[str] = []
    figure = None
    try:
        box.call({"op": "seed", "seed": int(rng.integers(2**62))})
        logits = np.full(256, -30.0)
        logits[[40, 200]] = 0.0  # two equally likely values
        reply, out = generate_with(box, HandBuiltNet("fixed", {"logits": logits.tolist()}), 4, (5, 7))
        s = out["samples"]
        values = set(np.round(s * 255).astype(np.int64).ravel().tolist()) if s.size else set()
        if s.shape != (4, 1, 5, 7):
            failures.append(f"generate(net, 4, image_size=(5, 7)) returned shape {s.shape}")
        elif "float" not in reported_dtype(reply):
            failures.append(f"samples should be floats k/255, got {reported_dtype(reply)}")
        elif not values <= {40, 200}:
            failures.append(f"with P(40) = P(200) = 1/2 at every pixel, the samples hold the values "
                            f"{sorted(values)[:8]} x 255 (return k/255, not k)")
        elif values != {40, 200}:
            failures.append("with P(40) = P(200) = 1/2 at every pixel, all 140 pixels took the same value: sample "
                            "from the softmax (torch.multinomial), not the argmax")
        elif all_equal_images(s):
            failures.append("the 4 images of one call are identical: draw every image on its own (one value per "
                            "pixel AND per image), not one draw copied into the whole batch")
        else:
            H, W = 4, 6
            _, out = generate_with(box, HandBuiltNet("chain", {"start": 10, "step": 37}), 1, (H, W))
            expected = ((10 + 37 * np.arange(H * W)) % 256).reshape(H, W)
            s = out["samples"]
            got = np.round(s.reshape(-1) * 255).astype(np.int64) if s.size == H * W else None
            if s.shape != (1, 1, H, W) or not np.array_equal(got, expected.reshape(-1)):
                failures.append("the sample does not follow the chain net (each pixel = previous pixel + 37 mod 256, "
                                "first pixel 10): sample pixel by pixel in raster order, each from the net's output "
                                "for the image sampled so far")
                if got is not None:
                    figure = {"expected": expected, "found": got.reshape(H, W), "chain": True,
                              "title": "A net where each pixel = previous pixel (raster order) + 37 mod 256, first "
                                       "pixel 10"}
    except StudentError as err:
        failures.append(err.visible_text())
    return _result("test_generate", failures, figure)


CHECKS = {"test_masked_conv": visible_masked_conv, "test_pixelcnn": visible_pixelcnn,
          "test_loss_fn": visible_loss_fn, "test_generate": visible_generate}
