"""The shared training loop: it learns, it resumes, and a crash keeps the last checkpoint."""

from __future__ import annotations

import math

import pytest
import torch

from arflow.evaluate.batched import mean_over_batches
from arflow.train.loop import History, fit
from arflow.viz.primitives import smooth


def _problem(seed=0):
    torch.manual_seed(seed)
    x = torch.randn(256, 3)
    y = x @ torch.tensor([1.5, -2.0, 0.5]) + 0.3
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=False)
    return torch.nn.Linear(3, 1), loader

def _loss(model, batch):
    x, y = batch
    return ((model(x).squeeze(-1) - y) ** 2).mean()


def test_fit_learns_and_records_history():
    model, loader = _problem()
    history = fit(model, _loss, loader, steps=200, lr=0.05, progress=False,
                  eval_fn=lambda m: mean_over_batches(lambda b: _loss(m, b), loader), eval_every=50)
    assert len(history.train) == 200 and [s for s, _ in history.eval] == [50, 100, 150, 200]
    assert history.eval[-1][1] < 1e-3 < history.train[0][1]


def test_fit_gives_the_loss_function_batches_on_the_model_s_device():
    """The loader yields CPU tensors; a model on another device ("meta" here) gets them there."""
    model, loader = _problem()
    model = model.to("meta")
    seen = []

    def loss_fn(net, batch):
        seen.append({t.device.type for t in batch})
        return torch.tensor(1.0, requires_grad=True)  # no gradient reaches the meta parameters

    fit(model, loss_fn, loader, steps=3, progress=False)
    assert seen == [{"meta"}] * 3


def test_interrupted_run_resumes_where_it_stopped(tmp_path):
    path = tmp_path / "run.pt"
    model, loader = _problem()
    full = fit(model, _loss, loader, steps=60, lr=0.01, progress=False)

    model, loader = _problem()
    fit(model, _loss, loader, steps=25, lr=0.01, progress=False, checkpoint_path=path)
    state = torch.load(path, weights_only=False)
    assert state["step"] == 25
    model, _ = _problem(seed=1)  # different init: the checkpoint must override it
    resumed = fit(model, _loss, loader, steps=60, lr=0.01, progress=False, checkpoint_path=path)
    assert len(resumed.train) == 60
    # Same data order (the loader restarts) would differ after a resume, so compare the
    # first 25 losses exactly and the final loss loosely.
    assert resumed.train[:25] == full.train[:25]
    assert resumed.train[-1][1] < resumed.train[0][1]


def test_a_crash_keeps_the_last_checkpoint(tmp_path):
    path = tmp_path / "run.pt"
    model, loader = _problem()
    calls = {"n": 0}

    def flaky(model, batch):
        calls["n"] += 1
        if calls["n"] == 13:
            raise RuntimeError("power cut")
        return _loss(model, batch)

    with pytest.raises(RuntimeError, match="power cut"):
        fit(model, flaky, loader, steps=50, progress=False, checkpoint_path=path, checkpoint_every=5)
    state = torch.load(path, weights_only=False)
    assert state["step"] == 12  # saved on the way out, not only at step 10
    assert torch.equal(state["model"]["weight"], model.state_dict()["weight"])


def test_non_finite_loss_stops_with_a_clear_error():
    model, loader = _problem()
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        fit(model, lambda m, b: _loss(m, b) * math.inf, loader, steps=3, progress=False)


def test_empty_loader_is_an_error():
    model, _ = _problem()
    with pytest.raises(ValueError, match="no batch"):
        fit(model, _loss, [], steps=1, progress=False)


def test_smooth_and_history_round_trip():
    assert smooth([1, 2, 3, 4], window=2) == [1, 1.5, 2.5, 3.5]
    history = History([(1, 2.0)], [(1, 3.0)], 4.5)
    assert History.from_dict(history.as_dict()) == history
