"""The multi-scale flow container that RealNVP and Glow share.

A :class:`MultiScaleFlow` is a list of flow layers (the interface of :mod:`arflow.models.flow`:
``forward(x) -> (y, logdet)``, ``inverse(y) -> (x, logdet)``) and :class:`~arflow.models.split.Split`
layers. Running it on x (B, C, H, W)
gives the latent ``zs``: one tensor per split (the factored-out halves) and the final output,
all modelled as independent N(0, I) variables, and the summed log-determinant::

    log p(x) = sum_k log N(z_k; 0, I) + sum over layers log|det dh_l / dh_(l-1)|

``flatten(zs)`` / ``unflatten(z)`` convert to one vector (B, D) per example (D = C H W).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from arflow.models.dequantize import dequantize, discrete_bits_per_dim
from arflow.models.split import Split
from arflow.models.squeeze import Squeeze

LOG_2PI = math.log(2 * math.pi)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over all but the batch axis: (B, ...) -> (B,)."""
    return (-0.5 * (z ** 2 + LOG_2PI)).flatten(1).sum(1)


class MultiScaleFlow(nn.Module):
    """Args: layers (flow layers and Split layers, in the x -> z direction); input_shape (C, H, W)."""

    def __init__(self, layers: list[nn.Module], input_shape: tuple[int, int, int]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.input_shape = tuple(input_shape)
        self.n_dims = math.prod(self.input_shape)
        self.z_shapes = self._trace_shapes()[1]

    def _trace_shapes(self) -> tuple[list[tuple[str, tuple]], list[tuple]]:
        """Shapes after every layer (without running it) and the shapes of the latent pieces."""
        c, h, w = self.input_shape
        trace, z_shapes = [("input x", (c, h, w))], []
        for layer in self.layers:
            if isinstance(layer, Squeeze):
                if h % 2 or w % 2:
                    raise ValueError(f"cannot squeeze a {h}x{w} tensor (odd size); change input_shape")
                c, h, w = 4 * c, h // 2, w // 2
            elif isinstance(layer, Split):
                if c % 2:
                    raise ValueError(f"cannot split {c} channels (odd)")
                c //= 2
                z_shapes.append((c, h, w))
            trace.append((getattr(layer, "label", type(layer).__name__), (c, h, w)))
        z_shapes.append((c, h, w))
        return trace, z_shapes

    def describe(self) -> list[tuple[str, tuple[int, int, int]]]:
        """[(layer name, output shape (C, H, W)), ...] from the input to the final z."""
        return self._trace_shapes()[0]

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"expected images (B, *{self.input_shape}), got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x (B, C, H, W) -> (zs, logdet (B,))."""
        self._check(x)
        zs, logdet, h = [], x.new_zeros(x.shape[0]), x
        for layer in self.layers:
            if isinstance(layer, Split):
                h, z = layer(h)
                zs.append(z)
            else:
                h, ld = layer(h)
                logdet = logdet + ld
        zs.append(h)
        return zs, logdet

    def inverse(self, zs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """zs (as returned by forward) -> (x (B, C, H, W), log|det dx/dz| (B,))."""
        if len(zs) != len(self.z_shapes):
            raise ValueError(f"expected {len(self.z_shapes)} latent pieces, got {len(zs)}")
        h, i = zs[-1], len(zs) - 2
        logdet = h.new_zeros(h.shape[0])
        for layer in reversed(self.layers):
            if isinstance(layer, Split):
                h = layer.inverse(h, zs[i])
                i -= 1
            else:
                h, ld = layer.inverse(h)
                logdet = logdet + ld
        return h, logdet

    def flatten(self, zs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([z.flatten(1) for z in zs], dim=1)

    def unflatten(self, z: torch.Tensor) -> list[torch.Tensor]:
        if z.dim() != 2 or z.shape[1] != self.n_dims:
            raise ValueError(f"expected flat latents (B, {self.n_dims}), got shape {tuple(z.shape)}")
        sizes = [math.prod(s) for s in self.z_shapes]
        return [piece.reshape(-1, *shape) for piece, shape in zip(z.split(sizes, dim=1), self.z_shapes)]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x -> flat z (B, D)."""
        return self.flatten(self(x)[0])

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """flat z (B, D) -> x."""
        return self.inverse(self.unflatten(z))[0]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) in nats (B,), x continuous in [0, 1] (already dequantized)."""
        zs, logdet = self(x)
        return sum(standard_normal_log_prob(z) for z in zs) + logdet

    def nll_bits_per_dim(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images k/255 (B, C, H, W) -> bits/dim per example (B,), dequantized with fresh noise."""
        return discrete_bits_per_dim(self.log_prob(dequantize(x, generator)), self.n_dims)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (n, C, H, W) in [0, 1]: z ~ N(0, T^2 I) pushed through the inverse flow."""
        device = next(self.parameters()).device
        z = temperature * torch.randn(n, self.n_dims, generator=generator).to(device)
        return self.decode(z).clamp(0, 1)
