"""The Gated PixelCNN (van den Oord et al., 2016b): vertical and horizontal stacks, no blind spot.

A plain stack of masked convolutions has a *blind spot*: pixels above and to the right of the
current one that no layer ever reaches. The Gated PixelCNN splits the network into two stacks:

- the **vertical stack** sees every pixel in the rows *above* the current one (a (p+1) x k
  kernel on a copy of the image shifted down by one row, p = k // 2); it grows a full
  triangle-free rectangle above the pixel, so nothing above is missed;
- the **horizontal stack** sees the pixels *to the left* in the current row (a 1 x (p+1)
  kernel on a copy shifted right by one column) and receives the vertical stack's features at
  the same position through a 1x1 convolution.

Causality is built by shifting and padding, not by masking weights: output (i, j) depends only
on rows above i and on pixels left of j in row i (tests check it by gradients). Every layer
uses the gated unit ``tanh(a) * sigmoid(b)``; the horizontal stack is residual. Conditioning:
a class label (``n_classes > 0``) adds a learned bias to every gate; a spatial map
(``cond_channels > 0``, e.g. a VQ-VAE's top-level codes upsampled) adds a 1x1 convolution of it.

Shapes: ``x`` is (B, 1, H, W) floats k/(n_values-1) (``input="intensity"``) or (B, H, W) long
indices (``input="index"``); ``forward`` returns logits (B, n_values, H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from arflow.models.sampling import inverse_cdf
from arflow.utils import progress

INPUTS = ("intensity", "index")


def gate(a: torch.Tensor) -> torch.Tensor:
    """The gated unit: split channels (B, 2C, ...) into halves (a, b) -> tanh(a) * sigmoid(b), (B, C, ...)."""
    a, b = a.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> the same, moved down one row (row 0 becomes zeros): row i now holds row i-1."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


def shift_right(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> the same, moved right one column (column 0 becomes zeros)."""
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


class GatedLayer(nn.Module):
    """One gated layer: a vertical step and a horizontal step, both causal by construction.

    ``vertical(v)``: (B, C, H, W) -> pre-activations (B, 2C, H, W) at row i from rows i-p..i of
    ``v`` (which itself only ever holds information from rows above, thanks to the initial shift).
    ``horizontal(h, v_pre, bias)``: (B, C, H, W) -> (B, C, H, W) at (i, j) from columns j-p..j of
    ``h`` in row i, plus the vertical pre-activations at (i, j).
    """

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        p = kernel_size // 2
        self.p = p
        self.v_conv = nn.Conv2d(channels, 2 * channels, (p + 1, kernel_size))
        self.h_conv = nn.Conv2d(channels, 2 * channels, (1, p + 1))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)

    def vertical(self, v: torch.Tensor) -> torch.Tensor:
        # pad p rows on top only: output row i sees rows i-p..i (no row below i)
        return self.v_conv(F.pad(v, (self.p, self.p, self.p, 0)))

    def horizontal(self, h: torch.Tensor, v_pre: torch.Tensor,
                   bias: torch.Tensor | float = 0.0) -> torch.Tensor:
        # pad p columns on the left only: output column j sees columns j-p..j of the same row
        h_pre = self.h_conv(F.pad(h, (self.p, 0, 0, 0))) + self.v_to_h(v_pre) + bias
        return h + self.h_out(gate(h_pre))


class GatedPixelCNN(nn.Module):
    """Gated PixelCNN over ``n_values`` intensities (or code indices), see the module docstring.

    Args:
        n_values: number of values per position (256 for 8-bit pixels, K for VQ-VAE codes).
        channels: feature channels C of both stacks.
        n_layers: number of gated layers (each widens the field by ``kernel_size // 2``).
        kernel_size: odd k; vertical kernels are (k//2+1) x k, horizontal 1 x (k//2+1).
        input: ``"intensity"`` (x (B, 1, H, W) floats k/(n_values-1)) or ``"index"`` (x (B, H, W) long).
        n_classes: > 0 for class-conditional models (``labels`` (B,) long).
        cond_channels: > 0 for a spatial conditioning map ``cond`` (B, cond_channels, H, W).
    """

    def __init__(self, n_values: int = 256, channels: int = 32, n_layers: int = 5, kernel_size: int = 5,
                 input: str = "intensity", n_classes: int = 0, cond_channels: int = 0):
        super().__init__()
        if input not in INPUTS:
            raise ValueError(f"input must be one of {INPUTS}, got {input!r}")
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd integer >= 3, got {kernel_size}")
        if n_values < 2 or channels < 1 or n_layers < 1 or n_classes < 0 or cond_channels < 0:
            raise ValueError("expected n_values >= 2, channels >= 1, n_layers >= 1, n_classes >= 0, "
                             f"cond_channels >= 0; got {n_values}, {channels}, {n_layers}, {n_classes}, "
                             f"{cond_channels}")
        self.n_values, self.channels = n_values, channels
        self.n_layers, self.kernel_size = n_layers, kernel_size
        self.input, self.n_classes, self.cond_channels = input, n_classes, cond_channels
        if input == "intensity":
            self.embed = nn.Conv2d(1, channels, 1)  # pointwise: mixes nothing across pixels
        else:
            self.embed = nn.Embedding(n_values, channels)
        self.layers = nn.ModuleList(GatedLayer(channels, kernel_size) for _ in range(n_layers))
        # conditioning: one bias per layer and stack (2C each), from the label or the map
        if n_classes:
            self.class_bias = nn.Embedding(n_classes, n_layers * 4 * channels)
        if cond_channels:
            self.cond_bias = nn.Conv2d(cond_channels, n_layers * 4 * channels, 1)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, 2 * channels, 1), nn.ReLU(),
                                  nn.Conv2d(2 * channels, n_values, 1))

    # ------------------------------------------------------------------ checks and pieces
    def _check(self, x: torch.Tensor, labels, cond) -> None:
        if self.input == "intensity":
            if x.ndim != 4 or x.shape[1] != 1 or not torch.is_floating_point(x):
                raise ValueError(f"x must be floats of shape (B, 1, H, W), got {tuple(x.shape)} {x.dtype}")
        elif x.ndim != 3 or x.dtype != torch.long:
            raise ValueError(f"x must be long indices of shape (B, H, W), got {tuple(x.shape)} {x.dtype}")
        if self.n_classes and (labels is None or labels.shape != (x.shape[0],)):
            raise ValueError(f"this model is class-conditional: pass labels of shape ({x.shape[0]},)")
        if not self.n_classes and labels is not None:
            raise ValueError("labels given but the model was built with n_classes=0")
        if self.cond_channels:
            want = (x.shape[0], self.cond_channels, *x.shape[-2:])
            if cond is None or tuple(cond.shape) != want:
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"this model takes a conditioning map cond of shape {want}, got {got}")
        elif cond is not None:
            raise ValueError("cond given but the model was built with cond_channels=0")

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """x -> pointwise features (B, C, H, W) of each position (no spatial mixing yet)."""
        if self.input == "intensity":
            return self.embed(2 * x - 1)
        return self.embed(x).permute(0, 3, 1, 2)

    def _biases(self, labels, cond, height: int, width: int, dtype) -> list[tuple]:
        """Per layer (vertical bias, horizontal bias), each broadcastable to (B, 2C, H, W), or 0."""
        total = 0.0
        if self.n_classes:
            total = self.class_bias(labels)[:, :, None, None].to(dtype)
        if self.cond_channels:
            total = total + self.cond_bias(cond.to(dtype))
        if isinstance(total, float):
            return [(0.0, 0.0)] * self.n_layers
        chunks = total.chunk(2 * self.n_layers, dim=1)
        return [(chunks[2 * k], chunks[2 * k + 1]) for k in range(self.n_layers)]

    # ------------------------------------------------------------------ the model
    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, n_values, H, W); position (i, j) sees only rows < i and row i left of j."""
        self._check(x, labels, cond)
        e = self._features(x)
        v, h = shift_down(e), shift_right(e)  # the only place where causality is made strict
        for layer, (bv, bh) in zip(self.layers, self._biases(labels, cond, *e.shape[-2:], e.dtype)):
            v_pre = layer.vertical(v)
            h = layer.horizontal(h, v_pre, bh)
            v = gate(v_pre + bv)
        return self.head(h)

    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """The class index of every position: round(x (n_values-1)) for intensities, x itself for indices."""
        if self.input == "intensity":
            return torch.round(x[:, 0] * (self.n_values - 1)).long()
        return x

    def nll(self, x: torch.Tensor, labels: torch.Tensor | None = None,
            cond: torch.Tensor | None = None) -> torch.Tensor:
        """Mean negative log-likelihood per position, in nats (scalar): the 256-way cross-entropy."""
        return F.cross_entropy(self(x, labels, cond), self.targets(x))

    # ------------------------------------------------------------------ sampling
    def _from_index(self, k: torch.Tensor) -> torch.Tensor:
        return k.float()[:, None] / (self.n_values - 1) if self.input == "intensity" else k

    @torch.no_grad()
    def sample(self, n: int, image_size, labels: torch.Tensor | None = None, cond: torch.Tensor | None = None,
               generator: torch.Generator | None = None, device="cpu", fast: bool = True,
               uniforms: torch.Tensor | None = None, temperature: float | torch.Tensor = 1.0,
               prefix: torch.Tensor | None = None, start: int = 0) -> torch.Tensor:
        """Ancestral sampling in raster order; returns what ``forward`` takes ((n,1,H,W) or (n,H,W)).

        Each value is drawn by inverting the CDF of its softmax at a uniform number, drawn up front
        (``uniforms`` (n, H, W), or from ``generator``): the fast and the naive loop then give the
        same samples for the same random numbers.

        ``fast=True`` computes, for each row, the vertical stack once (on the rows its receptive
        field reaches), then for each pixel only the horizontal stack of that row near the pixel:
        work proportional to what changed. ``fast=False`` reruns the whole network for every pixel.
        ``prefix`` (same form as the output) with ``start``: keep its first ``start`` positions in
        raster order and sample the rest (completions). ``temperature``: a float, or a tensor (n,) of one
        temperature per image (several temperatures in one pass).
        """
        H, W = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        device = torch.device(device)
        if uniforms is None:
            where = generator.device if generator is not None else device
            uniforms = torch.rand((n, H, W), generator=generator, device=where)
        uniforms = uniforms.to(device, torch.float64)
        if uniforms.shape != (n, H, W):
            raise ValueError(f"uniforms must have shape {(n, H, W)}, got {tuple(uniforms.shape)}")
        k = torch.zeros((n, H, W), dtype=torch.long, device=device)
        if prefix is not None:
            k = self.targets(prefix.to(device)).clone()
            if k.shape != (n, H, W):
                raise ValueError(f"prefix must hold {n} images of size {(H, W)}")
        was_training = self.training
        self.eval()
        try:
            step = self._sample_fast if fast else self._sample_naive
            k = step(k, labels, cond, uniforms, temperature, start)
        finally:
            self.train(was_training)
        return self._from_index(k)

    def _sample_naive(self, k, labels, cond, uniforms, temperature, start):
        H, W = k.shape[-2:]
        for pos in progress(range(start, H * W), "sampling pixels (naive)"):
            i, j = divmod(pos, W)
            logits = self(self._from_index(k), labels, cond)[:, :, i, j]
            k[:, i, j] = inverse_cdf(logits, uniforms[:, i, j], temperature)
        return k

    def field_reach(self) -> int:
        """How far (in rows above, or columns left) the receptive field reaches: n_layers * p + 1."""
        return self.n_layers * (self.kernel_size // 2) + 1

    def _sample_fast(self, k, labels, cond, uniforms, temperature, start):
        H, W = k.shape[-2:]
        reach = self.field_reach()
        for i in progress(range(start // W, H), "sampling rows", min_total=8):
            # vertical stack of row i from rows i-reach..i only: it never sees row i itself
            top = max(0, i - reach)
            rows = self._from_index(k[:, top:i + 1])
            c_rows = None if cond is None else cond[:, :, top:i + 1]
            self._check(rows, labels, c_rows)
            e = self._features(rows)
            biases = self._biases(labels, c_rows, *e.shape[-2:], e.dtype)
            v, v_pres = shift_down(e), []
            for layer, (bv, _) in zip(self.layers, biases):
                v_pre = layer.vertical(v)
                v_pres.append(v_pre[:, :, -1:])
                v = gate(v_pre + bv)
            h_bias = [bh if isinstance(bh, float) else bh[:, :, -1:] for _, bh in biases]
            for j in range(start % W if i == start // W else 0, W):
                # horizontal stack of row i, columns j-reach..j: its output at j sees columns < j
                left = max(0, j - reach)
                h = shift_right(self._features(self._from_index(k[:, i:i + 1, left:j + 1])))
                for layer, v_pre, bh in zip(self.layers, v_pres, h_bias):
                    bh = bh if isinstance(bh, float) or bh.shape[-1] == 1 else bh[..., left:j + 1]
                    h = layer.horizontal(h, v_pre[..., left:j + 1], bh)
                logits = self.head(h[..., -1:])[:, :, 0, 0]
                k[:, i, j] = inverse_cdf(logits, uniforms[:, i, j], temperature)
        return k
