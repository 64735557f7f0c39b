"""An image as a sequence of pixels: a transformer over pixel tokens, dense or Sparse-Transformer attention.

p(x) = prod_i p(x_i | x_1, ..., x_{i-1}) over the n = H W pixels in raster order, as in
PixelCNN, but the conditioning is done by masked self-attention instead of masked convolutions.
The three questions of the slides, answered here:

- **tokens**: a pixel's intensity is a token (256 values for bytes; ``levels`` values after
  quantization, which we use to keep a CPU course fast);
- **positions**: a learned *row* embedding plus a learned *column* embedding, added to the token
  embedding (Child et al., 2019), so the model knows where in the 2-D image each token lies;
- **cost**: dense attention is O(n^2); ``attention="strided"`` or ``"fixed"`` uses the factorized
  masks of :mod:`arflow.models.sparse_attention` (the strided one with its O(n sqrt n) kernel).

The input sequence is shifted right by one (a learned start token first) so that the output at
position i, which predicts pixel i, has seen pixels 0..i-1 only.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from arflow.models.attention import Block
from arflow.models.sampling import check_temperature, draw_categorical
from arflow.models.sparse_attention import PATTERNS, StridedSelfAttention, default_stride, pattern_masks
from arflow.models.token_transformer import TokenTransformer
from arflow.units import nats_to_bits
from arflow.utils import progress


def prepare_images(images, size: int = 14, levels: int = 16) -> torch.Tensor:
    """uint8 MNIST images (N, 1, 28, 28) -> pixel tokens (N, size, size), long in [0, levels).

    Downsampled by average pooling (28 / size must be an integer) and quantized uniformly:
    token = floor(intensity * levels / 256).
    """
    # A copy: the MNIST arrays are read-only.
    x = images.clone() if isinstance(images, torch.Tensor) else torch.from_numpy(np.array(images))
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"images must be uint8 of shape (N, 1, H, W), got {x.dtype} {tuple(x.shape)}")
    if x.shape[-1] % size or x.shape[-2] % size:
        raise ValueError(f"size {size} must divide the image size {tuple(x.shape[-2:])}")
    if not 2 <= levels <= 256:
        raise ValueError(f"levels must lie in 2..256, got {levels}")
    pooled = F.avg_pool2d(x.float(), x.shape[-1] // size)[:, 0]  # (N, size, size), 0..255
    return (pooled.round() * levels / 256).floor().long().clamp(0, levels - 1)


def tokens_to_images(tokens: torch.Tensor, levels: int) -> torch.Tensor:
    """Pixel tokens (N, H, W) -> float images (N, 1, H, W) in [0, 1] (token / (levels - 1)), for display."""
    return (tokens.float() / (levels - 1))[:, None]


class ImageTransformer(TokenTransformer):
    """Autoregressive transformer over the pixels of an image.

    Args:
        image_size: (H, W); the sequence length is n = H W.
        levels: number of intensity tokens K.
        attention: ``"dense"`` (causal), ``"strided"`` or ``"fixed"`` (Sparse Transformer).
        stride: l of the factorized patterns (default: about sqrt(n); W is natural for images).
        fast_kernel: for ``"strided"``, compute attention with the O(n sqrt n) kernel (same result).

    ``forward(tokens)``: (B, H, W) long -> logits (B, K, H, W); logits of pixel i depend on pixels
    before i in raster order only.
    """

    def __init__(self, image_size: tuple[int, int] = (14, 14), levels: int = 16, d_model: int = 64,
                 n_heads: int = 4, n_layers: int = 4, attention: str = "dense", stride: int | None = None,
                 fast_kernel: bool = True):
        super().__init__()
        if attention not in PATTERNS:
            raise ValueError(f"attention must be one of {PATTERNS}, got {attention!r}")
        self.image_size, self.levels, self.attention = tuple(image_size), levels, attention
        H, W = self.image_size
        self.n = n = H * W
        self.stride = stride or (W if attention == "strided" else default_stride(n))
        self.tok_emb = nn.Embedding(levels, d_model)
        self.start = nn.Parameter(torch.zeros(d_model))
        self.row_emb = nn.Parameter(torch.randn(H, 1, d_model) * 0.02)
        self.col_emb = nn.Parameter(torch.randn(1, W, d_model) * 0.02)
        masks = pattern_masks(attention, n, self.stride, n_heads)
        blocks = []
        for _ in range(n_layers):
            fast = attention == "strided" and fast_kernel
            attn = StridedSelfAttention(d_model, n_heads, n, self.stride) if fast else None
            blocks.append(Block(d_model, n_heads, masks, attention=attn))
        self.build_trunk(blocks, d_model)
        self.head = nn.Linear(d_model, levels)

    def check_tokens(self, tokens: torch.Tensor) -> None:
        if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.long:
            got = getattr(tokens, "dtype", type(tokens).__name__)
            raise TypeError(f"tokens must be a LongTensor (B, H, W), got {got}")
        if tokens.ndim != 3 or tuple(tokens.shape[1:]) != self.image_size:
            raise ValueError(f"tokens must have shape (B, {self.image_size[0]}, {self.image_size[1]}), "
                             f"got {tuple(tokens.shape)}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.levels):
            raise ValueError(f"tokens must lie in [0, {self.levels}), got [{tokens.min()}, {tokens.max()}]")

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, H, W) -> (B, n, C): input position i holds pixel i - 1 (start token at 0) + position of i."""
        self.check_tokens(tokens)
        B = tokens.shape[0]
        seq = self.tok_emb(tokens.flatten(1))  # (B, n, C)
        shifted = torch.cat([self.start.expand(B, 1, -1), seq[:, :-1]], dim=1)
        return shifted + (self.row_emb + self.col_emb).flatten(0, 1)

    def read_out(self, h: torch.Tensor) -> torch.Tensor:
        """Normalized features (B, n, C) -> logits (B, n, K) of each pixel."""
        return self.head(h)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = self.forward_embeddings(self.embed(tokens))
        H, W = self.image_size
        return logits.transpose(1, 2).reshape(-1, self.levels, H, W)

    def nll_bits_per_dim(self, tokens: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of tokens (B, H, W) in bits per pixel (a scalar)."""
        return nats_to_bits(F.cross_entropy(self(tokens), tokens))

    @torch.no_grad()
    def sample(self, n_samples: int, temperature: float = 1.0, generator: torch.Generator | None = None,
               device: str | torch.device = "cpu") -> torch.Tensor:
        """Ancestral sampling in raster order: n forward passes. Returns tokens (n_samples, H, W)."""
        check_temperature(temperature)
        H, W = self.image_size
        tokens = torch.zeros(n_samples, H, W, dtype=torch.long, device=device)
        for i in progress(range(self.n), "sampling pixels"):
            r, c = divmod(i, W)
            logits = self(tokens)[:, :, r, c]  # pixels >= i are ignored (causal)
            tokens[:, r, c] = draw_categorical(logits, temperature, generator=generator)
        return tokens
