"""Causal (and dilated) 1-D convolutions: the building block of convolutional sequence models.

An ordinary convolution with kernel size k centred on t reads x_{t-p}..x_{t+p}: it sees the
future. Padding (k - 1) d zeros on the *left only* shifts the window so that output t reads
x_{t-(k-1)d}, ..., x_{t-d}, x_t: nothing after t. Stacking such layers keeps the property, and
dilations d = 1, 2, 4, ... make the receptive field grow exponentially with depth.

For generation one sample at a time, :meth:`CausalConv1d.step` computes only the newest output
from a queue of the last (k - 1) d + 1 inputs (Fast WaveNet, Paine et al., 2016).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class CausalConv1d(nn.Module):
    """(B, C_in, T) -> (B, C_out, T); output t depends on inputs t, t-d, ..., t-(k-1)d only."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2, dilation: int = 1,
                 bias: bool = True):
        super().__init__()
        if kernel_size < 1 or dilation < 1:
            raise ValueError(f"kernel_size and dilation must be >= 1, got {kernel_size} and {dilation}")
        self.kernel_size, self.dilation = kernel_size, dilation
        self.left = (kernel_size - 1) * dilation  # how far back it reaches
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3:
            raise ValueError(f"x must have shape (B, C, T), got {tuple(x.shape)}")
        return self.conv(F.pad(x, (self.left, 0)))  # pad the past only

    def new_queue(self, batch_size: int, device=None, dtype=None) -> torch.Tensor:
        """An empty queue (B, C_in, (k-1)d + 1) of past inputs: zeros, like the left padding."""
        return torch.zeros(batch_size, self.conv.in_channels, self.left + 1, device=device, dtype=dtype)

    def step(self, x_t: torch.Tensor, queue: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step: x_t (B, C_in) and the queue -> (output (B, C_out), updated queue).

        Reads only the k taps the dilated kernel uses: O(1) work per step instead of O(T). (The WaveNet's
        sampler, ``arflow.models.wavenet._QueueStepper``, does the same with fewer tensor operations.)
        """
        queue = torch.cat([queue[:, :, 1:], x_t[:, :, None]], dim=2)
        taps = queue[:, :, :: self.dilation]  # (B, C_in, k): inputs t-(k-1)d, ..., t
        return F.linear(taps.flatten(1), self.conv.weight.flatten(1), self.conv.bias), queue

    def queue_from(self, x: torch.Tensor) -> torch.Tensor:
        """The queue after reading a whole input x (B, C_in, T): its last (k-1)d + 1 steps, zero-padded."""
        return F.pad(x, (self.left, 0))[:, :, -(self.left + 1):]


def receptive_field_size(kernel_size: int, dilations: Sequence[int]) -> int:
    """Inputs one output of a causal stack sees: 1 + (k - 1) * sum of dilations (if the input is long enough)."""
    return 1 + (kernel_size - 1) * sum(dilations)
