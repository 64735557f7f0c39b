"""Issue 12, items 4 and 5: probes the submission cannot read, reasons only the grader writes,
and replies whose size the grader bounds.

- the nets handed to ``generate`` live in the grader's process (the child's net forwards every
  call), so a ``generate`` that reads the net's attributes learns nothing;
- the hidden checks' reasons never repeat what the student's code said or printed (a marker
  raised and printed during hidden probes is absent from the reports and the feedback);
- a reply larger than its probe needs is refused as soon as its length is announced, before
  anything is allocated for it; the trained-model check keeps copies, not views.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import struct
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_grader_checks import REF_SOURCE, cells  # tests/ is on the path (conftest)

from arflow.checks import pixelcnn_probes
from arflow.checks.box import student_error as _student_error
from arflow.checks.pixelcnn import ProbeSession, generate_with, visible_generate
from autograder.assignment import load
from autograder.sandbox import Box, BoxError, StudentError
from autograder.verdicts import run_checks

checks = importlib.import_module("autograder.assignments.10_ar.checks")

reply_cap = pixelcnn_probes.reply_cap


def student_error(op, reply):
    return _student_error(pixelcnn_probes, op, reply)


def PixelBox(cell_list, **kwargs):  # noqa: N802 - a box of the PixelCNN assignment's probes
    return Box(cell_list, pixelcnn_probes, **kwargs)

MARKER = "arflowprobeleak" + "4b1d"


# --------------------------------------------------------------------------- no box: the pieces
def _old_chain_logits(x: torch.Tensor, start: int, step: int) -> torch.Tensor:
    """The child's former chain net (sandbox_child.HandBuiltNet), for comparison."""
    B, _, H, W = x.shape
    values = torch.round(x[:, 0].reshape(B, H * W).float() * 255).long()
    first = torch.full((B, 1), (start - step) % 256, dtype=torch.long)
    previous = torch.cat([first, values[:, :-1]], dim=1)
    target = (previous + step) % 256
    return (40.0 * F.one_hot(target, 256).float()).permute(0, 2, 1).reshape(B, 256, H, W)


def test_the_grader_side_nets_give_the_logits_the_child_used_to_compute():
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 256, (3, 1, 4, 6)) / 255).astype(np.float32)
    chain = checks.HandBuiltNet("chain", {"start": 17, "step": 101})
    assert np.array_equal(chain(x), _old_chain_logits(torch.from_numpy(x), 17, 101).numpy())
    logits = rng.normal(0, 1.5, 256)
    fixed = checks.HandBuiltNet("fixed", {"logits": logits.tolist()})(x)
    assert fixed.shape == (3, 256, 4, 6) and fixed.dtype == np.float32
    assert np.array_equal(fixed[2, :, 3, 5], torch.tensor(logits.tolist(), dtype=torch.float32).numpy())


def test_a_probe_session_bounds_the_calls_and_the_inputs():
    net = checks.HandBuiltNet("chain", {"start": 0, "step": 1})
    session = ProbeSession(net, n_samples=2, image_size=(4, 6))
    x = np.zeros((2, 1, 4, 6), np.float32)
    header, arrays = session.answer({"callback": "forward"}, {"x": x})
    assert header["ok"] and arrays["logits"].shape == (2, 256, 4, 6)
    header, _ = session.answer({"callback": "forward"}, {"x": np.zeros((2, 4, 6), np.float32)})
    assert not header["ok"] and "(B, 1, H, W)" in header["error"]
    header, _ = session.answer({"callback": "forward"}, {"x": np.zeros((200, 1, 4, 6), np.float32)})
    assert not header["ok"] and "more than" in header["error"]
    for _ in range(session.max_calls):
        header, _ = session.answer({"callback": "forward"}, {"x": x})
    assert not header["ok"] and "times" in header["error"]
    assert session.refused  # the first refusal, whatever the submission does next


def test_failed_replies_give_the_graders_words_and_keep_the_students_apart():
    err = student_error("loss", {"ok": False, "error": f"ValueError: {MARKER}", "error_type": "ValueError"})
    assert MARKER not in str(err) and "loss_fn raised" in str(err) and "ValueError: " in str(err)
    assert MARKER in err.visible_text()
    forged = student_error("generate", {"ok": False, "error": MARKER, "error_type": f"{MARKER}Error"})
    assert MARKER not in str(forged) and "generate raised" in str(forged)
    missing = student_error("generate", {"ok": False, "error": MARKER, "error_type": "NameError",
                                         "missing": "generate"})
    assert str(missing).startswith("generate is not defined")
    assert MARKER not in str(student_error("seed", {"ok": False, "missing": MARKER}))


def test_reply_caps_follow_the_probe():
    x = np.zeros((100, 1, 28, 28), np.float32)
    small = pixelcnn_probes.SMALL_REPLY_BYTES
    assert reply_cap({"op": "net_forward"}, {"x": x}) == 100 * 256 * 28 * 28 * 4 + small
    assert reply_cap({"op": "net_grad"}, {"x": x}) == x.nbytes + small
    assert reply_cap({"op": "generate", "n_samples": 3, "image_size": [5, 7]}, None) == 4 * 8 * 3 * 35 + small
    assert reply_cap({"op": "loss"}, {"logits": np.zeros((2, 256, 16, 16), np.float32), "x": x}) == small


class _FakeProcess:
    """Stands in for the child: its stdout is a pipe this test writes into."""

    def __init__(self, read_fd: int):
        self.stdout = os.fdopen(read_fd, "rb", buffering=0)
        self.stdin = io.BytesIO()

    def poll(self):
        return None

    def wait(self, timeout=None):
        return 0


def _fake_box(read_fd: int) -> Box:
    box = Box.__new__(Box)  # no jail, no child: only the channel's parent side
    box.process, box.timeout, box.probes = _FakeProcess(read_fd), 10.0, pixelcnn_probes
    box.deadline = time.monotonic() + 60
    box.stderr_path, box._stderr = Path(os.devnull), open(os.devnull, "wb")
    return box


def _frame(header: dict, payload_length: int) -> bytes:
    head = json.dumps(header).encode()
    return struct.pack(">I", len(head)) + head + struct.pack(">Q", payload_length)


def test_a_forged_oversized_reply_is_refused_before_anything_is_allocated():
    read_fd, write_fd = os.pipe()
    box = _fake_box(read_fd)
    os.write(write_fd, _frame({"ok": True}, 2**30))  # announces 1 GiB, sends none of it
    tracemalloc.start()
    try:
        with pytest.raises(BoxError, match=r"announced an answer of 1073741824 bytes .* at most \d+ bytes"):
            box.request({"op": "loss"}, {"logits": np.zeros((1, 256, 2, 2), np.float32),
                                         "x": np.zeros((1, 1, 2, 2), np.float32)})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        os.close(write_fd)
        box.process.stdout.close()
    assert peak < 8 * 2**20, f"the grader allocated {peak / 2**20:.0f} MiB for a refused reply"


def test_a_reply_is_read_in_pieces_into_one_buffer_and_only_numbers_are_accepted():
    y = np.arange(2 * 256 * 3 * 3, dtype=np.float32).reshape(2, 256, 3, 3)
    buffer = io.BytesIO()
    np.savez(buffer, y=y)
    payload = buffer.getvalue()
    read_fd, write_fd = os.pipe()
    box = _fake_box(read_fd)

    def child():  # the payload in small pieces, with pauses: the reader must assemble them in place
        os.write(write_fd, _frame({"ok": True, "dtype": "torch.float32"}, len(payload)))
        for start in range(0, len(payload), 1000):
            os.write(write_fd, payload[start:start + 1000])
            time.sleep(0.001)

    writer = threading.Thread(target=child)
    writer.start()
    reply, out = box.request({"op": "net_forward"}, {"x": np.zeros((2, 1, 3, 3), np.float32)})
    writer.join()
    assert reply["ok"] and np.array_equal(out["y"], y)
    buffer = io.BytesIO()
    np.savez(buffer, y=np.array([MARKER]))
    os.write(write_fd, _frame({"ok": True}, len(buffer.getvalue())) + buffer.getvalue())
    with pytest.raises(BoxError, match="not numbers"):
        box.request({"op": "net_forward"}, {"x": np.zeros((2, 1, 3, 3), np.float32)})
    os.close(write_fd)
    box.process.stdout.close()


def test_the_trained_model_check_keeps_copies_and_the_same_bits_per_dim():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (30, 1, 6, 5))
    y = rng.normal(0, 3, (30, 256, 6, 5)).astype(np.float32)
    idx = rng.permutation(30)
    N, a_idx, pos = 24, rng.integers(0, 24, 6), rng.integers(0, 30, 6)
    logp_at: dict = {}
    nll = checks._score_logits(y[idx], images, idx, N, a_idx, pos, logp_at, 0.0)
    assert all(v.base is None for v in logp_at.values()), "views keep whole log-probability tensors alive"
    logp = torch.log_softmax(torch.from_numpy(y).double(), dim=1)  # the former computation, all at once
    real = idx[idx < N]
    expected = -float(logp[real].gather(1, torch.from_numpy(images[real, 0])[:, None]).sum())
    assert abs(nll - expected) < 1e-6 * abs(expected)  # a float32 log-softmax, summed in float64
    r = int(np.nonzero(idx >= N)[0][0])
    k = int(idx[r]) - N
    assert np.allclose(logp_at[("s", k)], logp[idx[r], :, pos[k] // 5, pos[k] % 5].numpy(), rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- a real box
CHEAT_GENERATE = '''
def generate(net, n_samples, image_size=(28, 28), device="cpu"):
    """Answers the chain probe from the net's attributes, if it finds them; else samples honestly."""
    import gc
    H, W = image_size
    found = [getattr(net, "params", None), getattr(net, "kind", None), dict(net.named_buffers()),
             vars(net).get("_buffers"), [c.cell_contents for c in type(net).forward.__closure__ or ()]]
    found += [o for o in gc.get_objects() if isinstance(o, dict) and {"start", "step"} <= set(o)]
    for item in found:
        if isinstance(item, dict) and isinstance(item.get("step"), int):
            k = (item["start"] + item["step"] * torch.arange(H * W)) % 256
            return (k.float() / 255).reshape(1, 1, H, W).repeat(n_samples, 1, 1, 1)
    SEEN.append(repr(found[:4]))
    device = next(net.parameters()).device  # the net has a parameter to read the device from
    x = torch.zeros(n_samples, 1, H, W, device=device)
    with torch.no_grad():
        for j in range(W):  # column order: wrong, so that a working cheat would raise the score
            for i in range(H):
                for b in range(n_samples):  # one image per call: any batch size is fine
                    probs = torch.softmax(net(x[b:b + 1])[0, :, i, j], 0)
                    x[b, 0, i, j] = torch.multinomial(probs, 1)[0].float() / 255
    return x
SEEN = []
'''


@pytest.mark.slow
def test_a_generate_that_reads_the_probe_net_learns_nothing():
    source = REF_SOURCE + CHEAT_GENERATE
    with PixelBox(cells(source)) as box:
        hidden = checks.check_generate(box, seed=4)
        shown = visible_generate(box, seed=4)
    assert [s.passed for s in hidden.subchecks] == [True, False, True], hidden.report()
    assert "raster order" in hidden.subchecks[1].message
    assert shown.score == 0 and "chain net" in shown.report(), shown.report()


ENDLESS_CALLS = """
def generate(net, n_samples, image_size=(28, 28), device="cpu"):
    H, W = image_size
    x = torch.zeros(n_samples, 1, H, W)
    while True:  # calls the net forever, and swallows the grader's refusals
        try:
            net(x)
        except RuntimeError:
            pass
"""


@pytest.mark.slow
def test_a_generate_that_calls_the_net_without_end_is_stopped_with_the_graders_reason():
    with PixelBox(cells(REF_SOURCE + ENDLESS_CALLS), timeout=5) as box:
        began = time.monotonic()
        with pytest.raises(BoxError, match="time limit"):
            generate_with(box, checks.HandBuiltNet("chain", {"start": 3, "step": 9}), 2, (4, 6))
        assert time.monotonic() - began < 15
    with PixelBox(cells(REF_SOURCE + ENDLESS_CALLS.replace("while True", "for _ in range(200)")
                   + "    return x\n")) as box:
        with pytest.raises(StudentError, match=r"called the net more than 24 times"):
            generate_with(box, checks.HandBuiltNet("chain", {"start": 3, "step": 9}), 1, (1, 2))
        box.call({"op": "seed", "seed": 1})  # the box stays usable after a refused probe


LEAKY = f'''
def loss_fn(logits, x):
    if tuple(logits.shape) == (3, 256, 5, 6):  # the hidden probe only
        raise ValueError("{MARKER[::-1]}"[::-1] + repr(x.reshape(-1)[:8].tolist()))
    return F.cross_entropy(logits, torch.round(x[:, 0] * 255).long())


def generate(net, n_samples, image_size=(28, 28), device="cpu"):
    if n_samples == 3:  # the hidden probe only
        import os, sys
        print("{MARKER[::-1]}"[::-1], repr(vars(net))[:200], flush=True)
        sys.stderr.flush()
        os._exit(1)
    raise NotImplementedError("{MARKER[::-1]}"[::-1])  # a visible probe: its message may be shown
'''


@pytest.mark.slow
def test_hidden_reasons_never_repeat_what_the_code_said_or_printed(capsys):
    results = run_checks(load("10_ar"), cells(LEAKY), None, seed=7)
    hidden = {gid: r.report() for gid, r in results.items() if gid in checks.PLAN}
    assert not [gid for gid, text in hidden.items() if MARKER in text], hidden
    assert "loss_fn raised an exception while answering a hidden probe (ValueError: " in hidden["hidden_loss_fn"]
    assert "died (exit status 1)" in hidden["hidden_generate"], hidden["hidden_generate"]
    assert "last output" not in hidden["hidden_generate"]
    # The visible check (public probes) still shows the student's own message ...
    assert MARKER in results["test_generate"].report()
    # ... and what the dead process printed is kept for the instructor's log.
    assert MARKER in capsys.readouterr().err


# --------------------------------------------------------------------------- end to end: the corpus scenarios
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_probe_scenarios_graded_end_to_end(tmp_path):
    """The two scenarios of this issue, graded like the corpus: their totals and reasons, and the
    leaking one's marker nowhere in its feedback, ``hidden.json`` or the summary."""
    import re
    import secrets

    from grading_corpus import Context, build_corpus

    from autograder.grade import grade
    from autograder.worker import GradingLimits

    limits = GradingLimits(probe_seconds=20, checks_seconds=300, cell_seconds=40, notebook_seconds=300,
                           submission_seconds=900, output_bytes=2 * 2**20, bpd_limit=100)
    root = tmp_path
    ctx = Context(repo=Path(__file__).resolve().parents[1], submitted=root / "submitted", out=root / "out",
                  canary=root / "canary", port=9, marker=f"arflowleak{secrets.token_hex(4)}")
    ctx.canary.mkdir()
    scenarios = build_corpus(ctx.submitted, ctx, names=["probe_read_net", "probe_leak"])
    summary = grade(ctx.submitted, ctx.out, jobs=1, seed=99, limits=limits, log=lambda *a: None)
    totals = {row["student_id"]: row["total"] for row in summary["rows"]}
    for name, scenario in scenarios.items():
        errors = " | ".join(summary["results"][name].get("errors", {}).values())
        assert totals[name] == scenario.total, (name, totals[name], errors)
        assert re.search(scenario.reason, errors, flags=re.I), (name, errors)
    hidden = json.loads((ctx.out / "hidden.json").read_text())
    assert "[FAIL] raster order" in hidden["probe_read_net"]["hidden_generate"]["report"]
    leaked = {"feedback": (ctx.out / "feedback" / "probe_leak" / "10_ar" / "pixelcnn.html").read_text(),
              "hidden.json": json.dumps(hidden["probe_leak"]), "summary.md": (ctx.out / "summary.md").read_text()}
    assert not [where for where, text in leaked.items() if ctx.marker in text], ctx.marker
    assert ctx.marker[::-1] in leaked["feedback"]  # the notebook's own source is there, reversed
