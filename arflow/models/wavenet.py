"""A small WaveNet (van den Oord et al., 2016): dilated causal convolutions over mu-law samples.

The model reads a sequence of quantized samples x (B, T) (long, in [0, n_values)) and returns
logits (B, n_values, T): the distribution at position t is p(x_{t+1} | x_1..x_t). Inputs and
targets are the same sequence shifted by one step (see :meth:`WaveNet.nll`).

Each residual block: a dilated causal convolution (kernel 2) to 2C channels, the gated unit
tanh(a) * sigmoid(b), then two 1x1 convolutions: one added back to the block's input (the
residual path) and one to a skip output. The sum of all skips goes through ReLU-1x1-ReLU-1x1 to
the logits. Dilations 1, 2, 4, ... double the receptive field with every layer.

Generation: :meth:`WaveNet.generate` either reruns the network on the last receptive field's
worth of samples for every new sample (``fast=False``) or keeps one queue of past inputs per
layer and computes only the newest time step (``fast=True``, Fast WaveNet); for the same uniform
random numbers both give the same samples.
"""

from __future__ import annotations

from collections import deque

import torch
import torch.nn.functional as F
from torch import nn

from arflow.models.causal_conv import CausalConv1d, receptive_field_size
from arflow.models.sampling import inverse_cdf
from arflow.utils import progress


class ResidualBlock(nn.Module):
    """(B, C, T) -> (residual output (B, C, T), skip (B, S, T)); causal with dilation ``dilation``."""

    def __init__(self, channels: int, skip_channels: int, dilation: int, kernel_size: int = 2):
        super().__init__()
        self.conv = CausalConv1d(channels, 2 * channels, kernel_size, dilation)
        self.res = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip_channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        filt, gate = self.conv(x).chunk(2, dim=1)
        z = torch.tanh(filt) * torch.sigmoid(gate)
        return x + self.res(z), self.skip(z)


class _QueueStepper:
    """The whole WaveNet one time step at a time (Fast WaveNet), with as few tensor operations as possible.

    Per block and step: one matrix product for the dilated kernel's k taps, the gate, one for
    the residual path. Three rewrites make that possible, all exact in real arithmetic:

    - the skip 1x1 convolutions are linear, so their sum over blocks is one product of all the
      gated outputs, concatenated (B, L C), with the stacked skip weights (L C, S), once per step;
    - each block's residual bias is a constant added to every later block's input. The stepper
      carries g = h - (the biases added so far) instead of h, and folds that constant into the
      next kernels' biases; the queues, read from the prime, hold g as well;
    - tanh(a) * sigmoid(b) is ``F.glu`` of [tanh(a), b].

    The past inputs each kernel reads live in one Python deque of (B, C) tensors per block.
    """

    def __init__(self, model: WaveNet, queues: list[torch.Tensor]):
        channels = model.blocks[0].res.out_channels
        offset = torch.zeros_like(model.blocks[0].res.bias)  # h - g at this block's input: the biases so far
        self.layers = []
        for block, queue in zip(model.blocks, queues):
            conv = block.conv
            weight = conv.conv.weight  # (2C, C, k): tap j reads input t - (k-1-j) d
            taps = weight.permute(0, 2, 1).reshape(weight.shape[0], -1).t().contiguous()  # (k C, 2C)
            bias = conv.conv.bias + offset.repeat(conv.kernel_size) @ taps
            g = queue - offset[None, :, None]  # (B, C, (k-1)d + 1): inputs t-(k-1)d .. t
            past = deque(g[:, :, i] for i in range(1, g.shape[2]))  # t-(k-1)d .. t-1
            residual = block.res.weight[:, :, 0].t().contiguous()  # (C, C)
            self.layers.append((past, conv.kernel_size, conv.dilation, taps, bias, residual))
            offset = offset + block.res.bias
        self.channels = channels
        self.skip = torch.cat([block.skip.weight[:, :, 0].t() for block in model.blocks]).contiguous()  # (L C, S)
        self.skip_bias = sum(block.skip.bias for block in model.blocks)
        self.head = [(m.weight[:, :, 0], m.bias) for m in (model.head[1], model.head[3])]
        self.embedding = model.embed.weight

    def __call__(self, x_t: torch.Tensor) -> torch.Tensor:
        """One new input sample x_t (B,) long -> the logits of the next (B, n_values)."""
        g, gated = F.embedding(x_t, self.embedding), []
        for past, k, d, taps, bias, residual in self.layers:
            if k == 1:
                a = torch.addmm(bias, g, taps)
            else:
                a = torch.addmm(bias, torch.cat([*(past[j * d] for j in range(k - 1)), g], dim=1), taps)
                past.append(g)
                past.popleft()
            a[:, :self.channels].tanh_()
            z = F.glu(a, dim=1)  # tanh(filter) * sigmoid(gate), (B, C)
            gated.append(z)
            g = torch.addmm(g, z, residual)
        skips = torch.addmm(self.skip_bias, torch.cat(gated, dim=1), self.skip)
        hidden = F.relu(F.linear(skips.relu_(), *self.head[0]))
        return F.linear(hidden, *self.head[1])


class WaveNet(nn.Module):
    """WaveNet over ``n_values`` mu-law levels.

    Args:
        n_values: quantization levels (256 for 8-bit mu-law).
        channels: residual channels C.
        skip_channels: skip channels S.
        dilations: one residual block per dilation (e.g. 1, 2, ..., 128, possibly repeated).
        kernel_size: of the dilated convolutions (2 in WaveNet).
    """

    def __init__(self, n_values: int = 256, channels: int = 32, skip_channels: int = 64,
                 dilations=(1, 2, 4, 8, 16, 32, 64, 128), kernel_size: int = 2):
        super().__init__()
        dilations = [int(d) for d in dilations]
        if not dilations or any(d < 1 for d in dilations):
            raise ValueError(f"dilations must be a non-empty list of positive integers, got {dilations}")
        self.n_values, self.dilations, self.kernel_size = n_values, dilations, kernel_size
        self.embed = nn.Embedding(n_values, channels)
        self.blocks = nn.ModuleList(ResidualBlock(channels, skip_channels, d, kernel_size) for d in dilations)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(skip_channels, skip_channels, 1), nn.ReLU(),
                                  nn.Conv1d(skip_channels, n_values, 1))

    @property
    def receptive_field(self) -> int:
        """How many past samples (the current one included) one output sees: 1 + (k-1) sum(dilations)."""
        return receptive_field_size(self.kernel_size, self.dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T) long -> logits (B, n_values, T); position t predicts sample t + 1 from samples <= t."""
        if x.ndim != 2 or x.dtype != torch.long:
            raise ValueError(f"x must be long mu-law indices of shape (B, T), got {tuple(x.shape)} {x.dtype}")
        h = self.embed(x).transpose(1, 2)
        skips = 0
        for block in self.blocks:
            h, skip = block(h)
            skips = skips + skip
        return self.head(skips)

    def nll(self, x: torch.Tensor, skip_first: int = 0) -> torch.Tensor:
        """Mean NLL in nats per predicted sample: inputs x[:, :-1], targets x[:, 1:] (shifted copies).

        ``skip_first``: ignore the first predictions, whose receptive field still reaches the padding.
        """
        logits = self(x[:, :-1])[:, :, skip_first:]
        return F.cross_entropy(logits, x[:, 1 + skip_first:])

    def generate(self, n_steps: int, prime: torch.Tensor, uniforms: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, fast: bool = True,
                 temperature: float = 1.0) -> torch.Tensor:
        """Sample ``n_steps`` new values after ``prime`` (B, T0) long, T0 >= 1; returns (B, T0 + n_steps).

        Each value is drawn by inverting the softmax's CDF at a uniform number (``uniforms``
        (B, n_steps), or drawn from ``generator``), so the naive and fast paths are comparable.
        """
        if prime.ndim != 2 or prime.shape[1] < 1:
            raise ValueError(f"prime must be (B, T0) long with T0 >= 1, got {tuple(prime.shape)}")
        B = prime.shape[0]
        if uniforms is None:
            uniforms = torch.rand((B, n_steps), generator=generator)
        uniforms = uniforms.double()
        was_training = self.training
        self.eval()
        try:
            # inference mode (both paths): no autograd bookkeeping on the many small operations
            with torch.inference_mode():
                out = self._generate_fast if fast else self._generate_naive
                samples = out(prime.clone(), n_steps, uniforms, temperature)
            return samples.clone()  # an ordinary tensor, usable outside inference mode
        finally:
            self.train(was_training)

    def _generate_naive(self, seq, n_steps, uniforms, temperature):
        R = self.receptive_field
        for s in progress(range(n_steps), "sampling (naive)"):
            # the whole network on the last R samples (all the newest output can see)
            logits = self(seq[:, -R:])[:, :, -1]
            seq = torch.cat([seq, inverse_cdf(logits, uniforms[:, s], temperature)[:, None]], dim=1)
        return seq

    def _generate_fast(self, seq, n_steps, uniforms, temperature):
        # read the prime once with the whole network, keeping each block's last inputs as its queue
        h, skips, queues = self.embed(seq).transpose(1, 2), 0, []
        for block in self.blocks:
            queues.append(block.conv.queue_from(h))
            h, skip = block(h)
            skips = skips + skip
        logits = self.head(skips[:, :, -1:])[:, :, 0]
        step = _QueueStepper(self, queues)
        out = [seq]
        for s in progress(range(n_steps), "sampling (queues)"):
            new = inverse_cdf(logits, uniforms[:, s], temperature)
            out.append(new[:, None])
            if s + 1 < n_steps:
                logits = step(new)
        return torch.cat(out, dim=1)
