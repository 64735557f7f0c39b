"""A training loop shared by every model of the course.

``fit`` runs a fixed number of optimisation steps with a tqdm progress bar, evaluates every
``eval_every`` steps, and saves a resumable checkpoint (model, optimizer, step, history)
every ``checkpoint_every`` steps and when it stops, including on an exception or Ctrl-C: a
crashed or interrupted run keeps its last state and the next call resumes from it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm


@dataclass
class History:
    """What a training run measured. ``train`` holds (step, loss); ``eval`` holds (step, metric)."""

    train: list[tuple[int, float]] = field(default_factory=list)
    eval: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"train": self.train, "eval": self.eval, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls([tuple(t) for t in data["train"]], [tuple(e) for e in data["eval"]], data["seconds"])


def _infinite(loader: Iterable):
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the training loader yielded no batch; is the dataset empty?")


def _atomic_save(obj, path: Path) -> None:
    # Write then rename, so a crash during saving never destroys the previous checkpoint.
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def fit(model: torch.nn.Module, loss_fn: Callable[[torch.nn.Module, object], torch.Tensor],
        train_loader: Iterable, steps: int, optimizer: torch.optim.Optimizer | None = None,
        lr: float = 1e-3, eval_fn: Callable[[torch.nn.Module], float] | None = None,
        eval_every: int = 0, checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int = 0, scheduler=None, clip_grad: float | None = None,
        progress: bool = True, desc: str = "train") -> History:
    """Train ``model`` for ``steps`` optimisation steps and return its :class:`History`.

    Args:
        loss_fn: ``loss_fn(model, batch) -> scalar tensor`` (the batch as the loader yields it).
        eval_fn: ``eval_fn(model) -> float`` (a test metric), called every ``eval_every`` steps
            and at the end, in ``eval`` mode and without gradients.
        checkpoint_path: where the resumable state lives; if it exists the run resumes from it.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    history, start = History(), 0
    path = Path(checkpoint_path) if checkpoint_path else None
    if path is not None and path.exists():
        state = torch.load(path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler"):
            scheduler.load_state_dict(state["scheduler"])
        history, start = History.from_dict(state["history"]), state["step"]

    def save(step: int) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict() if scheduler is not None else None,
                          "history": history.as_dict(), "step": step}, path)

    def evaluate(step: int) -> None:
        if eval_fn is None:
            return
        was_training = model.training
        model.eval()
        with torch.no_grad():
            history.eval.append((step, float(eval_fn(model))))
        model.train(was_training)

    batches = _infinite(train_loader)
    step = start
    began = time.perf_counter() - history.seconds
    model.train()
    bar = tqdm(total=steps, initial=start, desc=desc, disable=not progress, leave=False)
    try:
        while step < steps:
            loss = loss_fn(model, next(batches))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
            history.train.append((step, loss.item()))
            history.seconds = time.perf_counter() - began
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if eval_every and step % eval_every == 0 and step < steps:
                evaluate(step)
            if checkpoint_every and step % checkpoint_every == 0:
                save(step)
        if not history.eval or history.eval[-1][0] != step:
            evaluate(step)
    finally:
        bar.close()
        history.seconds = time.perf_counter() - began
        save(step)  # also on an exception or KeyboardInterrupt: nothing already trained is lost
    model.eval()
    return history


def smooth(values: list[float], window: int = 20) -> list[float]:
    """Running mean over ``window`` points (for loss curves)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def mean_over_loader(metric: Callable[[object], torch.Tensor], loader: Iterable,
                     max_batches: int | None = None) -> float:
    """Average a per-batch metric (weighted by batch size) over a loader, without gradients."""
    total, count = 0.0, 0
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            n = len(batch[0]) if isinstance(batch, (tuple, list)) else len(batch)
            total += float(metric(batch)) * n
            count += n
    if count == 0:
        raise ValueError("the evaluation loader yielded no example")
    return total / count if math.isfinite(total) else float("nan")
