"""Calibrate the pass threshold of 10_ar's trained-model check from the reference implementation.

``python -m autograder calibrate [--assignment 10_ar] [--threads 2] [--save PATH]`` trains
:class:`reference.PixelCNN` with the notebook's default settings (:data:`reference.DEFAULTS`,
the same training loop as the notebook: ``arflow.training.fit``, Adam, the embedded MNIST train
split), measures its test bits/dim on the grader-only digits (:mod:`autograder.heldout`, the
digits the grader measures submissions on), and prints the reference's bits/dim and the threshold
(reference + ``MARGIN``) to copy into ``REFERENCE_BPD`` and ``BPD_THRESHOLD`` of this folder's
``spec.py`` (and the notebook's text).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from arflow.data import make_loader, mnist, to_float
from arflow.training import fit
from arflow.utils import seed_everything
from autograder.heldout import grader_digits

from . import reference

MARGIN = 0.10  # 10 % above the reference's bits/dim


def test_bits_per_dim(model: torch.nn.Module, batch_size: int = 100) -> float:
    """Mean bits/dim of a reference-like model on the grader-only digits (in-process; for calibration)."""
    images, _ = grader_digits()
    x = to_float(images)
    total = 0.0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size]
            total += float(reference.loss_fn(model(batch), batch)) * len(batch)
    return reference.bits_per_dim(total / len(x))


def train_reference(settings: dict | None = None, progress: bool = True, eval_every: int = 0):
    """Train the reference PixelCNN exactly as the notebook does by default. Returns (model, history)."""
    s = dict(reference.DEFAULTS, **(settings or {}))
    seed_everything(s["seed"])
    model = reference.PixelCNN(s["n_channels"], s["kernel_size"], s["n_layers"])
    images, _ = mnist("train", source="embedded")
    loader = make_loader(to_float(images), batch_size=s["batch_size"], shuffle=True, seed=s["seed"])
    history = fit(model, lambda m, batch: reference.loss_fn(m(batch[0]), batch[0]), loader, s["steps"],
                  lr=s["lr"], progress=progress, eval_every=eval_every,
                  eval_fn=(lambda m: test_bits_per_dim(m)) if eval_every else None)
    return model, history


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder calibrate --assignment 10_ar", description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save", default=None, help="also save the reference state_dict here")
    parser.add_argument("--eval-every", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    began = time.perf_counter()
    model, history = train_reference(eval_every=args.eval_every)
    seconds = time.perf_counter() - began
    bpd = test_bits_per_dim(model)
    if args.save:
        torch.save(model.state_dict(), args.save)
    report = {"reference_test_bits_per_dim": round(bpd, 4), "threshold": round(bpd * (1 + MARGIN), 3),
              "train_seconds": round(seconds, 1), "threads": args.threads, "load_avg_at_start": load,
              "settings": reference.DEFAULTS, "eval": history.eval}
    print(json.dumps(report, indent=1))
    return 0
