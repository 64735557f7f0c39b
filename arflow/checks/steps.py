"""Adam steps without ``torch.optim``, for the probes that check a mask survives training.

``torch.optim``'s first optimizer imports ``torch._dynamo`` (about 2.4 CPU-s in a fresh process),
and a probe runs in a fresh process for every submission. These few lines do the same arithmetic
as ``torch.optim.Adam`` with its defaults (no weight decay, no amsgrad), which a test compares.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch


def adam_steps(params: Iterable[torch.nn.Parameter], loss: Callable[[], torch.Tensor], steps: int, lr: float,
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
    """``steps`` Adam updates of ``params`` (in place) on the scalar ``loss()``, recomputed each step.

    Parameters whose gradient stays ``None`` (not used by the loss) are left alone, as
    ``torch.optim.Adam`` leaves them.
    """
    params = [p for p in params if p.requires_grad]
    first = [torch.zeros_like(p) for p in params]  # running mean of the gradient
    second = [torch.zeros_like(p) for p in params]  # running mean of its square
    b1, b2 = betas
    for t in range(1, steps + 1):
        for p in params:
            p.grad = None
        loss().backward()
        with torch.no_grad():
            for p, m, v in zip(params, first, second):
                if p.grad is None:
                    continue
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (v.sqrt() / math.sqrt(1 - b2**t)).add_(eps)
                p.addcdiv_(m, denom, value=-lr / (1 - b1**t))
