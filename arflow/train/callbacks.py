"""Callbacks of :func:`arflow.train.loop.fit`: objects with any of ``on_start``, ``on_step``,
``on_end`` and ``on_close``, each called with the :class:`~arflow.train.loop.Run`.

- :class:`Evaluate`: a test metric every few steps and at the end, logged as ``"eval"``;
- :class:`Checkpoint`: a resumable state (model, optimizer, scheduler, step, history) saved every
  few steps and when the run stops for any reason; an existing one is resumed at the start;
- :class:`CodeUsage`: dead and re-seeded codes of a vector quantizer, logged every few steps.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from arflow.train.loop import History, Run


class Evaluate:
    """Log ``metric(model)`` as ``"eval"`` every ``every`` steps (0: only at the end) and after the
    last step, in eval mode and without gradients."""

    def __init__(self, metric: Callable[[torch.nn.Module], float], every: int = 0, name: str = "eval"):
        self.metric, self.every, self.name = metric, every, name

    def _measure(self, run: Run) -> None:
        was_training = run.model.training
        run.model.eval()
        with torch.no_grad():
            run.history.log(self.name, run.step, float(self.metric(run.model)))
        run.model.train(was_training)

    def on_step(self, run: Run) -> None:
        if self.every and run.step % self.every == 0 and run.step < run.steps:
            self._measure(run)

    def on_end(self, run: Run) -> None:
        series = run.history.series.get(self.name)
        if not series or series[-1][0] != run.step:
            self._measure(run)


def _atomic_save(obj, path: Path) -> None:
    # Write then rename, so a crash during saving never destroys the previous checkpoint.
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Checkpoint:
    """Resume from ``path`` when it exists; save there every ``every`` steps (0: only at the close)
    and when the run stops, including on an exception or Ctrl-C."""

    def __init__(self, path: str | os.PathLike, every: int = 0):
        self.path, self.every = Path(path), every

    def on_start(self, run: Run) -> None:
        if not self.path.exists():
            return
        state = torch.load(self.path, map_location="cpu", weights_only=False)
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        if run.scheduler is not None and state.get("scheduler"):
            run.scheduler.load_state_dict(state["scheduler"])
        run.history, run.step = History.from_dict(state["history"]), state["step"]

    def save(self, run: Run) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_save({"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
                      "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
                      "history": run.history.as_dict(), "step": run.step}, self.path)

    def on_step(self, run: Run) -> None:
        if self.every and run.step % self.every == 0:
            self.save(run)

    def on_close(self, run: Run) -> None:
        self.save(run)


class CodeUsage:
    """Every ``every`` steps (and at the last), log ``"dead"``: how many of the ``n_codes`` codes no
    position of any batch since the previous log was assigned to (from ``run.outputs["encodings"]``,
    one-hot (..., K)), and ``"reseeded"``: ``quantizer.n_reseeded`` (dead codes re-seeded so far)."""

    def __init__(self, quantizer: torch.nn.Module, n_codes: int, every: int):
        self.quantizer, self.every = quantizer, every
        self.counts = torch.zeros(n_codes)

    def on_step(self, run: Run) -> None:
        self.counts += run.outputs["encodings"].flatten(0, -2).sum(0).cpu()
        if run.step % self.every == 0 or run.step == run.steps:
            run.history.log("dead", run.step, int((self.counts == 0).sum()))
            run.history.log("reseeded", run.step, int(self.quantizer.n_reseeded))
            self.counts.zero_()
