"""A flow on 2-D points: a stack of affine couplings with alternating masks and MLP networks.

Used to see a flow at work on a toy density (two moons): z = f(x) through K layers, and
log p(x) = log N(z; 0, I) + sum_k log|det dh_k / dh_(k-1)|.
"""

from __future__ import annotations

import torch
from torch import nn

from arflow.models.coupling import Coupling, CouplingMLP, vector_mask
from arflow.models.flow import run_flow
from arflow.models.gaussian import standard_normal_log_prob
from arflow.utils import model_device


class ToyFlow(nn.Module):
    """Points (B, D) -> z (B, D); ``forward -> (z, logdet)``, ``inverse``, ``log_prob``, ``sample``."""

    def __init__(self, dim: int = 2, n_layers: int = 8, hidden: int = 64, affine: bool = True):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.dim = dim
        self.layers = nn.ModuleList(Coupling(vector_mask(dim, k % 2), CouplingMLP(dim, hidden), affine)
                                    for k in range(n_layers))

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected points (B, {self.dim}), got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points x (B, D) -> (z (B, D), log|det dz/dx| (B,))."""
        self._check(x)
        return run_flow(self.layers, x)

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, D) -> (x (B, D), log|det dx/dz| (B,)): the same loop, backwards."""
        self._check(z)
        return run_flow(self.layers, z, inverse=True)

    def intermediate(self, x: torch.Tensor, inverse: bool = False) -> list[torch.Tensor]:
        """The points after every layer: [x, h_1, ..., h_K = z]; with ``inverse``, from z back to x."""
        self._check(x)
        return run_flow(self.layers, x, inverse=inverse, keep=True)[2]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) in nats, (B,)."""
        z, logdet = self(x)
        return standard_normal_log_prob(z) + logdet

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.dim, generator=generator).to(model_device(self))
        return self.inverse(z)[0]
