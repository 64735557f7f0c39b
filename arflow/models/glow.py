"""Glow (Kingma and Dhariwal, 2018): steps of flow (actnorm, invertible 1x1 conv, affine coupling).

The multi-scale architecture, for an input (C, H, W), ``n_levels`` levels of ``n_steps`` steps::

    logit transform
    repeat n_levels times:
        squeeze                                                (4C, H/2, W/2)
        n_steps x [actnorm -> 1x1 conv -> affine coupling]     (same shape)
        split (except at the last level)                       (2C, H/2, W/2)

The coupling always conditions on the first half of the channels: the learnt 1x1 convolution
before it decides which mixtures of channels are in that half, replacing RealNVP's alternating
masks. The preprocessing is the same logit transform as :class:`~arflow.models.realnvp.RealNVP`.

Each factored-out half is N(0, I) by default (a simplification). With ``learned_prior=True`` it
gets Glow's learnt conditional prior N(mu(h), sigma(h)^2), h the half that stays
(:func:`~arflow.models.multiscale.split_prior`); the shipped checkpoints use it. With
``variational_dequantization=True`` the dequantization noise is learnt with the flow
(:class:`~arflow.models.variational_dequantize.VariationalDequantizer`).
"""

from __future__ import annotations

from arflow.models.actnorm import ActNorm
from arflow.models.coupling import Coupling, CouplingConvNet, channel_mask
from arflow.models.dequantize import LogitTransform
from arflow.models.invconv import InvConv1x1, InvConv1x1LU
from arflow.models.multiscale import FACTOR_OUT, MultiScaleFlow, split_prior
from arflow.models.squeeze import Squeeze


def flow_step(channels: int, hidden: int, lu: bool = True) -> list:
    """One step of flow: [ActNorm, 1x1 convolution (LU or plain), affine coupling]."""
    conv = InvConv1x1LU(channels) if lu else InvConv1x1(channels)
    return [ActNorm(channels), conv, Coupling(channel_mask(channels), CouplingConvNet(channels, hidden))]


class Glow(MultiScaleFlow):
    """x (B, C, H, W) -> latents; see :class:`~arflow.models.multiscale.MultiScaleFlow` for the API."""

    def __init__(self, input_shape: tuple[int, int, int] = (1, 28, 28), n_levels: int = 2, n_steps: int = 4,
                 hidden: int = 32, lu: bool = True, alpha: float = 0.05,
                 learned_prior: bool = False, variational_dequantization: bool = False):
        if n_levels < 1 or n_steps < 1:
            raise ValueError(f"n_levels and n_steps must be >= 1, got {n_levels} and {n_steps}")
        c, h, w = input_shape
        layers = [LogitTransform(alpha)]
        for level in range(n_levels):
            if h % 2 or w % 2:
                raise ValueError(f"input_shape {tuple(input_shape)} cannot be squeezed {n_levels} times "
                                 f"(reached odd size {h}x{w})")
            layers.append(Squeeze())
            c, h, w = 4 * c, h // 2, w // 2
            for _ in range(n_steps):
                layers += flow_step(c, hidden, lu)
            if level < n_levels - 1:
                if learned_prior:
                    layers.append(split_prior(c, hidden))
                layers.append(FACTOR_OUT)
                c //= 2
        super().__init__(layers, input_shape, variational_dequantization)
