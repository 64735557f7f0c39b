"""The hidden checks, run directly: the reference passes, broken variants fail, fair variants pass, cheats gain nothing.

Each submission variant runs in its own black-box process (autograder.sandbox.Box), exactly
as in grading; the verdicts are computed in this process.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
import torch

from arflow.checks import pixelcnn_probes
from autograder.assignment import load
from autograder.extract import PRELUDE
from autograder.sandbox import Box as _Box
from autograder.verdicts import run_checks

checks = importlib.import_module("autograder.assignments.10_ar.checks")
reference = importlib.import_module("autograder.assignments.10_ar.reference")


def Box(cell_list, weights=None, **kwargs):  # noqa: N802 - a box of the PixelCNN assignment's probes
    return _Box(cell_list, pixelcnn_probes, weights, **kwargs)

REF_SOURCE = Path(reference.__file__).read_text()
SAMPLES = Path(__file__).resolve().parent.parent / "autograder" / "assignments" / "10_ar" / "samples"

pytestmark = pytest.mark.slow


def cells(*sources: str) -> list[dict]:
    return [{"name": "prelude", "source": PRELUDE}] + [{"name": f"cell{i}", "source": s} for i, s in enumerate(sources)]


def variant(old: str, new: str) -> str:
    assert old in REF_SOURCE, old
    return REF_SOURCE.replace(old, new)


def scores(result: checks.CheckResult) -> list[bool]:
    return [s.passed for s in result.subchecks]


@pytest.fixture(scope="module")
def reference_box():
    with Box(cells(REF_SOURCE)) as box:
        yield box


@pytest.mark.parametrize("check", ["hidden_masked_conv", "hidden_pixelcnn", "hidden_loss_fn", "hidden_generate"])
def test_reference_gets_full_marks(reference_box, check):
    result = checks.CHECKS[check](reference_box, seed=3)
    assert result.score == result.max_points == load("10_ar").max_points(check), result.report()


BROKEN = {
    # name: (old, new, check, expected pass pattern)
    "centre_always_visible": ("mask[c, c + (0 if blind_center else 1):] = 0", "mask[c, c + 1:] = 0",
                              "hidden_masked_conv", [False, True, True]),
    "mask_once": ("return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)",
                  "self.weight.data *= self.mask if not hasattr(self, '_done') else 1\n"
                  "        self._done = True\n"
                  "        return F.conv2d(x, self.weight, self.bias, padding=self.padding)",
                  "hidden_masked_conv", [True, True, False]),
    "no_padding": ("return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)",
                   "return F.conv2d(x, self.weight * self.mask, self.bias)", "hidden_masked_conv",
                   [False, False, False]),
    "first_layer_not_blind": ("MaskedConv2d(1, n_channels, kernel_size, blind_center=True)",
                              "MaskedConv2d(1, n_channels, kernel_size, blind_center=False)", "hidden_pixelcnn",
                              [True, False, False]),
    "all_layers_blind": ("MaskedConv2d(n_channels, n_channels, kernel_size)",
                         "MaskedConv2d(n_channels, n_channels, kernel_size, blind_center=True)", "hidden_pixelcnn",
                         [True, True, False]),
    "loss_in_bits": ("return F.cross_entropy(logits, target)", "return F.cross_entropy(logits, target) / math.log(2)",
                     "hidden_loss_fn", [False, False]),
    "loss_truncated": ("target = torch.round(x[:, 0] * 255).long()", "target = (x[:, 0] * 255).long()",
                       "hidden_loss_fn", [None, False]),
    "generate_argmax": ("torch.multinomial(probs, 1)[:, 0]", "probs.argmax(dim=1)", "hidden_generate",
                        [True, True, False]),
    "generate_columns": ("for i in range(H):\n            for j in range(W):",
                         "for j in range(W):\n            for i in range(H):", "hidden_generate", [True, False, True]),
    "generate_integers": ("].float() / 255", "].float()", "hidden_generate", [False, False, False]),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_variants_lose_points(name):
    old, new, check, pattern = BROKEN[name]
    source = variant(old, new)
    with Box(cells(source)) as box:
        result = checks.CHECKS[check](box, seed=5)
    got = scores(result)
    assert result.score < result.max_points, result.report()
    for want, have in zip(pattern, got):
        if want is not None:
            assert want == have, result.report()


FAIR_CONV = {
    "data_in_forward": '''
class MaskedConv2d(nn.Conv2d):
    def __init__(self, in_channels, out_channels, kernel_size, blind_center=False):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        m = torch.ones_like(self.weight)
        c = kernel_size // 2
        m[:, :, c, c + (0 if blind_center else 1):] = 0
        m[:, :, c + 1:] = 0
        self.register_buffer("m", m)
    def forward(self, x):
        self.weight.data *= self.m
        return super().forward(x)
''',
    "wrapped_with_parametrization": '''
import torch.nn.utils.parametrize as P
class _Mask(nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)
    def forward(self, w):
        return w * self.mask
class MaskedConv2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, blind_center=False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        k = kernel_size
        mask = torch.zeros(k, k)
        mask[: k // 2] = 1
        mask[k // 2, : k // 2 + (0 if blind_center else 1)] = 1
        P.register_parametrization(self.conv, "weight", _Mask(mask))
    def forward(self, x):
        return self.conv(x)
''',
    "forward_pre_hook": '''
class MaskedConv2d(nn.Conv2d):
    def __init__(self, in_channels, out_channels, kernel_size, blind_center=False):
        super().__init__(in_channels, out_channels, kernel_size, padding="same")
        k = kernel_size
        mask = torch.ones(k, k)
        mask[k // 2, k // 2 + (0 if blind_center else 1):] = 0
        mask[k // 2 + 1:] = 0
        self.register_buffer("mask", mask)
        self.register_forward_pre_hook(_mask_weight)


def _mask_weight(module, inputs):  # returns None: the inputs are left alone
    module.weight.data.mul_(module.mask)
''',
}


@pytest.mark.parametrize("name", list(FAIR_CONV))
def test_every_correct_masked_conv_gets_full_marks(name):
    with Box(cells(FAIR_CONV[name])) as box:
        result = checks.check_masked_conv(box, seed=7)
    assert result.score == result.max_points, result.report()


FAIR_GENERATE = {
    "categorical_warns": '''
import warnings
def generate(net, n_samples, image_size=(28, 28), device="cpu"):
    warnings.warn("sampling on the CPU is slow")
    H, W = image_size
    x = torch.zeros(n_samples, 1, H, W)
    for i in range(H):
        for j in range(W):
            logits = net(x)[:, :, i, j].detach()
            x[:, 0, i, j] = torch.distributions.Categorical(logits=logits).sample().float() / 255
    return x
''',
    "gumbel_max": '''
def generate(net, n_samples, image_size=(28, 28), device="cpu"):
    H, W = image_size
    x = torch.zeros(n_samples, 1, H, W)
    with torch.no_grad():
        for i in range(H):
            for j in range(W):
                logits = torch.log_softmax(net(x)[:, :, i, j], 1)
                g = -torch.log(-torch.log(torch.rand_like(logits)))
                x[:, 0, i, j] = (logits + g).argmax(1) / 255.0
    return x
''',
    "inverse_cdf_numpy": '''
def generate(net, n_samples, image_size=(28, 28), device="cpu"):
    H, W = image_size
    x = torch.zeros(n_samples, 1, H, W)
    with torch.no_grad():
        for t in range(H * W):
            i, j = divmod(t, W)
            p = torch.softmax(net(x)[:, :, i, j].double(), 1).numpy()
            u = np.random.rand(n_samples, 1)
            k = (np.cumsum(p, 1) < u).sum(1).clip(0, 255)
            x[:, 0, i, j] = torch.from_numpy(k).float() / 255
    return x
''',
}


@pytest.mark.parametrize("name", list(FAIR_GENERATE))
def test_every_correct_sampler_gets_full_marks(name):
    with Box(cells(FAIR_GENERATE[name])) as box:
        result = checks.check_generate(box, seed=11)
    assert result.score == result.max_points, result.report()


CHEAT = '''
import builtins, sys
import numpy
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
numpy.allclose = lambda *a, **k: True
numpy.array_equal = lambda *a, **k: True
builtins.AssertionError = type("Nope", (Exception,), {})
sys.modules.pop("autograder", None)
try:
    import importlib
    stolen = importlib.import_module("autograder.assignments.10_ar.reference")  # the grader's own package: refused
    MaskedConv2d, PixelCNN, loss_fn, generate = (stolen.MaskedConv2d, stolen.PixelCNN, stolen.loss_fn,
                                                 stolen.generate)
except ImportError:
    pass
def loss_fn(logits, x):
    raise NotImplementedError()
'''


def test_cheats_gain_nothing(tmp_path):
    results = run_checks(load("10_ar"), cells(CHEAT), None, seed=1, visible_too=False)
    assert sum(r.score for r in results.values()) == 0, "\n".join(r.report() for r in results.values())
    # The grader's own comparisons are untouched by what the submission patched in its process.
    assert not torch.allclose(torch.zeros(1), torch.ones(1))


def test_the_grader_package_cannot_be_imported_by_a_submission():
    source = ("import importlib\nr = importlib.import_module('autograder.assignments.10_ar.reference')\n"
              "MaskedConv2d = r.MaskedConv2d\n")
    with Box(cells(source)) as box:
        assert "autograder" in box.hello["cell_errors"]["cell0"]
        result = checks.check_masked_conv(box, seed=1)
    assert result.score == 0


def test_trained_model_check_rejects_a_non_causal_model_and_accepts_the_reference():
    weights_ref = SAMPLES / "reference" / "10_ar" / "pixelcnn.pth"
    weights_cheat = SAMPLES / "mask_centre" / "10_ar" / "pixelcnn.pth"
    cheat_source = variant("mask[c, c + (0 if blind_center else 1):] = 0", "mask[c, c + 1:] = 0")
    for source, weights, passes in ((REF_SOURCE, weights_ref, True), (cheat_source, weights_cheat, False)):
        with Box(cells(source), weights) as box:
            box.call({"op": "net_load", "id": "trained"})
            result = checks.check_trained_model(box, True, seed=2, limit=200)
        assert (result.score == 5) == passes, result.report()
        if not passes:
            assert "not causal" in result.subchecks[0].message
            # ... although its loss is far lower than the reference's: it looks at the answer.
            assert result.bits_per_dim < checks.REFERENCE_BPD


def test_failures_are_reported_not_raised():
    assignment = load("10_ar")
    results = run_checks(assignment, cells("raise SystemExit(3)"), "/nonexistent/pixelcnn.pth", seed=0,
                         visible_too=False)
    assert set(results) == set(checks.HIDDEN_IDS)
    assert all(r.score == 0 and r.max_points == assignment.max_points(gid) for gid, r in results.items())
    assert "not submitted" in results["hidden_trained_model"].report()


def test_a_hanging_submission_times_out():
    source = "def loss_fn(logits, x):\n    while True:\n        pass\n"
    with Box(cells(source), timeout=3) as box:
        with pytest.raises(Exception, match="time limit"):
            box.call({"op": "loss"}, {"logits": torch.zeros(1, 256, 2, 2).numpy(),
                                      "x": torch.zeros(1, 1, 2, 2).numpy()})


def test_analytic_field_matches_gradients_of_the_reference():
    from arflow.assignment_checks import expected_field, model_field
    torch.manual_seed(0)
    for k, layers in ((3, 3), (5, 2)):
        model = reference.PixelCNN(16, k, layers)
        for pixel in ((6, 5), (0, 3)):
            assert (expected_field(k, layers, (10, 10), pixel) == model_field(model, (10, 10), pixel)).all()


@pytest.mark.skipif(not __import__("autograder.jail").jail.jail_available(), reason="needs root and bubblewrap")
def test_the_submission_process_cannot_see_the_autograder_or_the_network():
    import tempfile

    folder = Path(tempfile.mkdtemp(dir="/var/tmp"))  # outside /tmp, which the jail replaces anyway
    secret = folder / "gradebook.db"
    secret.write_text("all grades")
    os.chmod(folder, 0o755)
    probe = (
        "import os, socket\n"
        f"SEEN = {{'autograder': os.path.exists({str(Path(checks.__file__).parents[2])!r}),\n"
        f"        'gradebook': os.path.exists({str(secret)!r})}}\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
        "    SEEN['network'] = 'reached'\n"
        "except OSError:\n"
        "    SEEN['network'] = 'none'\n"
        "raise RuntimeError(repr(SEEN))\n")
    with Box([{"name": "masked_conv", "source": probe}]) as box:
        errors = " ".join(box.hello["cell_errors"].values())
    secret.unlink()
    folder.rmdir()
    # An allowlist jail: the grader's folders are not hidden, they are not there at all.
    assert "'autograder': False" in errors and "'gradebook': False" in errors and "'network': 'none'" in errors, errors


class _LogitsBox:
    """A box whose trained net answers uniform logits with one ``bad`` value (at the first pixel of
    the first image of each call): the trained-model check must say so, not score the rest."""

    def __init__(self, bad: float):
        self.bad = bad

    def call(self, header, arrays=None, timeout=None):
        import numpy as np

        x = arrays["x"]
        y = np.zeros((len(x), 256, *x.shape[-2:]), dtype=np.float32)
        y[0, 7, 0, 0] = self.bad
        return {"ok": True}, {"y": y}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_the_trained_model_check_refuses_logits_that_are_not_finite(bad):
    result = checks.check_trained_model(_LogitsBox(bad), True, seed=0, limit=20)
    assert result.score == 0 and "NaN or inf" in result.subchecks[0].message


def test_the_trained_model_check_scores_finite_logits():
    result = checks.check_trained_model(_LogitsBox(3.0), True, seed=0, limit=20)
    # uniform logits (but one): 8 bits per pixel, far above the threshold, and causal
    assert result.bits_per_dim == pytest.approx(8.0, abs=0.01) and "threshold" in result.subchecks[0].message
