"""The interface every flow layer of the course follows, and the one loop that runs a stack of them.

A flow layer is an ``nn.Module`` with

- ``forward(x) -> (y, logdet)``: y = f(x) and log|det df/dx| per example, shape (B,);
- ``inverse(y) -> (x, logdet)``: x = f^{-1}(y) and log|det df^{-1}/dy| = -log|det df/dx| at x.

:func:`run_flow` runs layers in order (the x -> z direction) or, with ``inverse=True``, in reverse
order through their inverses (z -> x), summing the log-determinants: the same loop both ways.
:class:`FlowSequence` is a stack of layers that is itself a flow layer.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def run_flow(layers: Iterable[nn.Module], x: torch.Tensor, inverse: bool = False,
             keep: bool = False) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, list]:
    """Push ``x`` (B, ...) through ``layers`` (reversed, by their inverses, when ``inverse``).

    Returns ``(output, logdet (B,))``; with ``keep`` also the list of tensors after every layer,
    the input first.
    """
    layers = list(layers)
    logdet = x.new_zeros(x.shape[0])
    stages = [x]
    for layer in (reversed(layers) if inverse else layers):
        x, ld = layer.inverse(x) if inverse else layer(x)
        logdet = logdet + ld
        if keep:
            stages.append(x)
    return (x, logdet, stages) if keep else (x, logdet)


class FlowSequence(nn.Module):
    """A stack of flow layers (``self.layers``), itself a flow layer."""

    def __init__(self, layers: Iterable[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return run_flow(self.layers, x)

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return run_flow(self.layers, y, inverse=True)
