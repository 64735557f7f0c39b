"""Actnorm (Glow, Kingma and Dhariwal 2018): a per-channel affine map with data-dependent init.

    y[:, c] = x[:, c] * exp(log_scale[c]) + bias[c]        log|det| = H * W * sum_c log_scale[c]

On the first batch it sees, the layer sets ``log_scale`` and ``bias`` so that each output
channel has zero mean and unit variance on that batch; afterwards they are ordinary parameters.
It replaces batch normalisation: batch norm's statistics depend on the mini-batch (noisy for
the tiny batches large images force, and the model's density would depend on the other
examples of the batch), while actnorm is a fixed function of one example after initialisation.
"""

from __future__ import annotations

import torch
from torch import nn


class ActNorm(nn.Module):
    """Inputs (B, C, H, W) or (B, C); ``forward(x) -> (y, logdet (B,))``; ``inverse(y) -> x``."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be positive, got {channels}")
        self.channels = channels
        self.eps = eps
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        # A buffer (saved in the state_dict) so that a loaded model is not re-initialised.
        self.register_buffer("initialized", torch.tensor(False))

    def _view(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return p.view(1, -1, *([1] * (x.dim() - 2)))

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 4) or x.shape[1] != self.channels:
            raise ValueError(f"actnorm expects (B, {self.channels}) or (B, {self.channels}, H, W), "
                             f"got shape {tuple(x.shape)}")

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Set the parameters so that ``forward(x)`` has zero mean and unit variance per channel."""
        self._check(x)
        per_channel = x.transpose(0, 1).reshape(self.channels, -1)
        mean, std = per_channel.mean(1), per_channel.std(1, unbiased=False)
        self.log_scale.copy_(-torch.log(std + self.eps))
        self.bias.copy_(-mean * torch.exp(self.log_scale))
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(x)
        if not self.initialized:
            self.initialize(x)
        y = x * torch.exp(self._view(self.log_scale, x)) + self._view(self.bias, x)
        pixels = x[0, 0].numel()  # H * W (1 for vectors)
        return y, (pixels * self.log_scale.sum()).expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(y)
        x = (y - self._view(self.bias, y)) * torch.exp(-self._view(self.log_scale, y))
        return x, (-y[0, 0].numel() * self.log_scale.sum()).expand(y.shape[0])
