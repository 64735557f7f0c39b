"""RealNVP (Dinh et al., 2016): affine couplings, checkerboard and channel masks, squeeze, split.

The multi-scale architecture, for an input (C, H, W) and ``n_scales`` scales::

    logit transform (dequantized pixels in [0, 1] -> R)
    repeat n_scales - 1 times:
        n_couplings couplings, checkerboard masks of alternating parity   (C, H, W)
        squeeze                                                           (4C, H/2, W/2)
        n_couplings couplings, channel masks of alternating parity        (4C, H/2, W/2)
        split: half the channels leave as z                               (2C, H/2, W/2)
    n_couplings + 1 checkerboard couplings on what is left

The original also uses batch normalisation and residual networks for s and t; this one uses
small CNNs (:class:`~arflow.models.coupling.CouplingConvNet`), enough for MNIST. With
``learned_prior=True`` the factored-out halves get a learnt conditional prior, as in Glow
(:func:`~arflow.models.multiscale.split_prior`); with ``variational_dequantization=True`` the
dequantization noise is learnt with the flow
(:class:`~arflow.models.variational_dequantize.VariationalDequantizer`).
"""

from __future__ import annotations

from arflow.models.coupling import Coupling, CouplingConvNet, channel_mask, checkerboard_mask
from arflow.models.dequantize import LogitTransform
from arflow.models.multiscale import FACTOR_OUT, MultiScaleFlow, split_prior
from arflow.models.squeeze import Squeeze


class RealNVP(MultiScaleFlow):
    """x (B, C, H, W) -> latents; see :class:`~arflow.models.multiscale.MultiScaleFlow` for the API."""

    def __init__(self, input_shape: tuple[int, int, int] = (1, 28, 28), n_scales: int = 2,
                 n_couplings: int = 3, hidden: int = 32, affine: bool = True, alpha: float = 0.05,
                 learned_prior: bool = False, variational_dequantization: bool = False):
        if n_scales < 1 or n_couplings < 1:
            raise ValueError(f"n_scales and n_couplings must be >= 1, got {n_scales} and {n_couplings}")
        c, h, w = input_shape
        layers = [LogitTransform(alpha)]
        for _ in range(n_scales - 1):
            if h % 2 or w % 2:
                raise ValueError(f"input_shape {tuple(input_shape)} cannot be squeezed {n_scales - 1} times "
                                 f"(reached odd size {h}x{w})")
            layers += [Coupling(checkerboard_mask(h, w, k % 2), CouplingConvNet(c, hidden), affine)
                       for k in range(n_couplings)]
            layers.append(Squeeze())
            c, h, w = 4 * c, h // 2, w // 2
            layers += [Coupling(channel_mask(c, k % 2), CouplingConvNet(c, hidden), affine)
                       for k in range(n_couplings)]
            if learned_prior:
                layers.append(split_prior(c, hidden))
            layers.append(FACTOR_OUT)
            c //= 2
        layers += [Coupling(checkerboard_mask(h, w, k % 2), CouplingConvNet(c, hidden), affine)
                   for k in range(n_couplings + 1)]
        super().__init__(layers, input_shape, variational_dequantization)
