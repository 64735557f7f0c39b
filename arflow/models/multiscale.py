"""The multi-scale flow container that RealNVP and Glow share.

A :class:`MultiScaleFlow` is a stack of flow layers (the interface of :mod:`arflow.models.flow`:
``forward(x) -> (y, logdet)``, ``inverse(y) -> (x, logdet)``), :class:`~arflow.models.split.Split`
among them. Running it on x (B, C, H, W)
gives the latent ``zs``: one tensor per split (the factored-out halves) and the final output,
all modelled as independent N(0, I) variables, and the summed log-determinant::

    log p(x) = sum_k log N(z_k; 0, I) + sum over layers log|det dh_l / dh_(l-1)|

``flatten(zs)`` / ``unflatten(z)`` convert to one vector (B, D) per example (D = C H W).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from arflow.models.coupling import Coupling, CouplingConvNet, channel_mask
from arflow.models.dequantize import dequantize, discrete_bits_per_dim
from arflow.models.flow import FlowSequence, run_flow
from arflow.models.gaussian import standard_normal_log_prob
from arflow.models.split import Split, output_shape
from arflow.models.variational_dequantize import VariationalDequantizer
from arflow.utils import model_device

FACTOR_OUT = "factor out"  # marks, in a flat list of layers, where half of the channels leave the flow


def split_prior(channels: int, hidden: int) -> Coupling:
    """The learnt prior of a split (Glow), as the layer to put just before :data:`FACTOR_OUT`.

    A split keeps the first C/2 channels h and factors out the last C/2, x_out. Modelling x_out as
    N(mu(h), sigma(h)^2) is the same as an affine coupling that keeps h and maps x_out to
    z = (x_out - mu) / sigma ~ N(0, I): a channel-mask coupling (log-det -sum log sigma). It starts
    as the identity (the N(0, I) prior), and sampling at temperature T draws x_out = mu + T sigma eps.
    """
    coupling = Coupling(channel_mask(channels, 0), CouplingConvNet(channels, hidden))
    coupling.label = "learnt prior of the split\n(channel-wise coupling)"
    return coupling


def nest_splits(layers: list, input_shape: tuple[int, int, int]) -> list[nn.Module]:
    """A flat list of flow layers with :data:`FACTOR_OUT` marks -> the layers up to the first mark,
    then a :class:`~arflow.models.split.Split` whose ``rest`` holds everything after it (nested the same way)."""
    if FACTOR_OUT not in layers:
        return list(layers)
    k = layers.index(FACTOR_OUT)
    before = layers[:k]
    shape = output_shape(FlowSequence(before), tuple(input_shape))
    rest_shape = (shape[0] // 2, *shape[1:])
    rest = FlowSequence(nest_splits(layers[k + 1:], rest_shape))
    return [*before, Split(rest, shape)]


class MultiScaleFlow(nn.Module):
    """Args: layers (flow layers and :data:`FACTOR_OUT` marks, in the x -> z direction); input_shape (C, H, W);
    variational_dequantization: learn the dequantization noise with the flow
    (:class:`~arflow.models.variational_dequantize.VariationalDequantizer`) instead of drawing it uniformly.

    The layers run in one loop (:func:`~arflow.models.flow.run_flow`) both ways: each mark becomes a
    :class:`~arflow.models.split.Split` whose ``rest`` is the flow after it, so the output of the
    loop is one flat latent vector [z_1, z_2, ..., z_final] (B, D) per example.
    """

    def __init__(self, layers: list, input_shape: tuple[int, int, int], variational_dequantization: bool = False):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.layers = nn.ModuleList(nest_splits(list(layers), self.input_shape))
        self.n_dims = math.prod(self.input_shape)
        self.z_shapes = self._trace_shapes()[1]
        # learnt dequantization noise q(u | k); None: uniform noise
        self.dequantizer = VariationalDequantizer(self.input_shape[0]) if variational_dequantization else None

    def _trace_shapes(self) -> tuple[list[tuple[str, tuple]], list[tuple]]:
        """Shapes after every layer (without running it) and the shapes of the latent pieces."""
        trace, z_shapes = [("input x", self.input_shape)], []

        def walk(layers, shape):
            for layer in layers:
                if isinstance(layer, Split):
                    trace.append(("Split", layer.z_shape))
                    z_shapes.append(layer.z_shape)
                    shape = walk(layer.rest.layers, layer.z_shape)
                else:
                    shape = output_shape(layer, shape)
                    trace.append((getattr(layer, "label", type(layer).__name__), shape))
            return shape

        z_shapes.append(walk(self.layers, self.input_shape))
        return trace, z_shapes

    def describe(self) -> list[tuple[str, tuple[int, int, int]]]:
        """[(layer name, output shape (C, H, W)), ...] from the input to the final z."""
        return self._trace_shapes()[0]

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"expected images (B, *{self.input_shape}), got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x (B, C, H, W) -> (zs: the latent pieces, one per split and the final one; logdet (B,))."""
        self._check(x)
        z, logdet = run_flow(self.layers, x)
        return self.unflatten(z.flatten(1)), logdet

    def inverse(self, zs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """zs (as returned by forward) -> (x (B, C, H, W), log|det dx/dz| (B,))."""
        if len(zs) != len(self.z_shapes):
            raise ValueError(f"expected {len(self.z_shapes)} latent pieces, got {len(zs)}")
        top = output_shape(FlowSequence(self.layers), self.input_shape)
        return run_flow(self.layers, self.flatten(zs).reshape(-1, *top), inverse=True)

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

    def nll_bits_per_dim(self, x: torch.Tensor, generator: torch.Generator | None = None,
                         uniform_noise: bool = False) -> torch.Tensor:
        """Images k/255 (B, C, H, W) -> bits/dim per example (B,), dequantized with fresh noise.

        With a learnt ``dequantizer`` the bound subtracts log q(u | k) (uniform noise has log q = 0).
        ``uniform_noise=True`` scores the flow with uniform noise even so (what the learnt noise gained).
        """
        if self.dequantizer is None or uniform_noise:
            return discrete_bits_per_dim(self.log_prob(dequantize(x, generator)), self.n_dims)
        v, log_q = self.dequantizer(x, generator)
        return discrete_bits_per_dim(self.log_prob(v) - log_q, self.n_dims)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (n, C, H, W) in [0, 1]: z ~ N(0, T^2 I) pushed through the inverse flow."""
        device = model_device(self)
        z = temperature * torch.randn(n, self.n_dims, generator=generator).to(device)
        return self.decode(z).clamp(0, 1)
