"""The one training loop of the course, with callbacks (in the spirit of minGPT's ``Trainer``).

``fit`` runs a fixed number of optimisation steps with a tqdm progress bar. What a run measures
goes into its :class:`History` in one way, ``history.log(name, step, value)``: the training
loss under ``"train"``, the test metric under ``"eval"``, and every other scalar the loss
function returns (``{"loss": ..., "kl": ..., "recon": ...}``) under its own name.

Everything else is a callback (:mod:`arflow.train.callbacks`), an object with any of
``on_start(run)``, ``on_step(run)`` (after each optimizer step), ``on_end(run)`` (after the last
step) and ``on_close(run)`` (always, also on an exception or Ctrl-C). ``eval_fn`` and
``checkpoint_path`` are shorthands for the :class:`~arflow.train.callbacks.Evaluate` and
:class:`~arflow.train.callbacks.Checkpoint` callbacks: a crashed or interrupted run keeps its
last state and the next call resumes from it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from arflow.utils import model_device, to_device


class History:
    """What a training run measured: named series of (step, value), and the seconds it took.

    ``history.train`` is the series ``"train"`` (the loss of each step), ``history.eval`` the
    series ``"eval"`` (the test metric); other series hold whatever else the run logged.
    """

    def __init__(self, train: Sequence = (), eval: Sequence = (), seconds: float = 0.0,
                 series: dict[str, Sequence] | None = None):
        self.series: dict[str, list[tuple[int, float]]] = {"train": [tuple(p) for p in train],
                                                           "eval": [tuple(p) for p in eval]}
        for name, points in (series or {}).items():
            self.series[name] = [tuple(p) for p in points]
        self.seconds = seconds

    @property
    def train(self) -> list[tuple[int, float]]:
        return self.series["train"]

    @property
    def eval(self) -> list[tuple[int, float]]:
        return self.series["eval"]

    def log(self, name: str, step: int, value: float) -> None:
        """Append (step, value) to the series ``name``."""
        self.series.setdefault(name, []).append((int(step), float(value)))

    def table(self, names: Sequence[str]) -> dict[str, list]:
        """Series logged at the same steps as columns: ``{"step": [...], name: [...] for each name}``."""
        steps = [s for s, _ in self.series[names[0]]]
        out = {"step": steps}
        for name in names:
            if [s for s, _ in self.series[name]] != steps:
                raise ValueError(f"series {name!r} was not logged at the same steps as {names[0]!r}")
            out[name] = [v for _, v in self.series[name]]
        return out

    def __bool__(self) -> bool:
        return any(self.series.values())

    def __eq__(self, other) -> bool:
        return isinstance(other, History) and (self.series, self.seconds) == (other.series, other.seconds)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}: {len(points)}" for name, points in self.series.items())
        return f"History({sizes}; {self.seconds:.1f} s)"

    def as_dict(self) -> dict:
        return {"series": {name: [list(p) for p in points] for name, points in self.series.items()},
                "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict) -> History:
        if "series" not in data:  # written before histories had named series
            return cls(data["train"], data["eval"], data["seconds"])
        return cls(seconds=data["seconds"], series=data["series"])


@dataclass
class Run:
    """The state a callback sees: the model, its optimizer, the step just done and what it returned."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    steps: int
    history: History = field(default_factory=History)
    step: int = 0
    loss: float = float("nan")
    outputs: dict = field(default_factory=dict)  # what loss_fn returned at this step (detached)
    began: float = 0.0


def _infinite(loader: Iterable):
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the training loader yielded no batch; is the dataset empty?")


def _split_loss(result) -> tuple[torch.Tensor, dict]:
    """loss_fn's result -> (the scalar loss to minimise, the other outputs, detached)."""
    if isinstance(result, dict):
        if "loss" not in result:
            raise KeyError(f"loss_fn returned a dict without 'loss' (keys: {sorted(result)})")
        extra = {k: (v.detach() if isinstance(v, torch.Tensor) else v) for k, v in result.items() if k != "loss"}
        return result["loss"], extra
    return result, {}


def fit(model: torch.nn.Module, loss_fn: Callable[[torch.nn.Module, object], object],
        train_loader: Iterable, steps: int, optimizer: torch.optim.Optimizer | None = None,
        lr: float = 1e-3, eval_fn: Callable[[torch.nn.Module], float] | None = None,
        eval_every: int = 0, checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int = 0, scheduler=None, clip_grad: float | None = None,
        progress: bool = True, desc: str = "train", callbacks: Sequence = ()) -> History:
    """Train ``model`` for ``steps`` optimisation steps and return its :class:`History`.

    Args:
        loss_fn: ``loss_fn(model, batch)`` (the batch as the loader yields it, its tensors moved
            to the model's device) returns a scalar tensor, or a dict with the scalar ``"loss"``
            and other outputs: the scalar ones are logged every step under their names, all are
            given to callbacks as ``run.outputs``.
        eval_fn: ``eval_fn(model) -> float`` (a test metric), called every ``eval_every`` steps
            and at the end, in ``eval`` mode and without gradients.
        checkpoint_path: where the resumable state lives; if it exists the run resumes from it.
        callbacks: more callbacks, called after the built-in ones in the order given.
    """
    from arflow.train.callbacks import Checkpoint, Evaluate

    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    built_in = []
    if eval_fn is not None:
        built_in.append(Evaluate(eval_fn, eval_every))
    if checkpoint_path:
        built_in.append(Checkpoint(checkpoint_path, checkpoint_every))
    callbacks = [*built_in, *callbacks]
    run = Run(model, optimizer, scheduler, steps)

    def call(event: str) -> None:
        for callback in callbacks:
            method = getattr(callback, event, None)
            if method is not None:
                method(run)

    call("on_start")  # a Checkpoint callback may resume here: run.step and run.history move on
    batches = _infinite(train_loader)
    run.began = time.perf_counter() - run.history.seconds
    device = model_device(model)  # batches follow the model: a recipe trains on any device unchanged
    model.train()
    bar = tqdm(total=steps, initial=run.step, desc=desc, disable=not progress, leave=False)
    try:
        while run.step < steps:
            loss, outputs = _split_loss(loss_fn(model, to_device(next(batches), device)))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {run.step}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            run.step += 1
            run.loss, run.outputs = loss.item(), outputs
            run.history.log("train", run.step, run.loss)
            for name, value in outputs.items():
                if isinstance(value, (int, float)) or (isinstance(value, torch.Tensor) and value.ndim == 0):
                    run.history.log(name, run.step, float(value))
            run.history.seconds = time.perf_counter() - run.began
            bar.update(1)
            bar.set_postfix(loss=f"{run.loss:.4f}")
            call("on_step")
        call("on_end")
    finally:
        bar.close()
        run.history.seconds = time.perf_counter() - run.began
        call("on_close")  # also on an exception or KeyboardInterrupt: nothing already trained is lost
    model.eval()
    return run.history
