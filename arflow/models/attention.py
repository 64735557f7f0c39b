"""Masked multi-head self-attention and the transformer decoder block, built from scratch.

Notation (shapes): B batch, T sequence length, C = ``d_model`` channels, H heads, D = C / H
channels per head.

Self-attention mixes the positions of a sequence: every position i emits a query q_i, a key
k_i and a value v_i (three linear maps of its input x_i); position i then outputs the average
of the values v_j weighted by softmax_j(q_i . k_j / sqrt(D)). An autoregressive model must
not let position i see the future, so the scores of the forbidden pairs (i, j) are set to
-inf before the softmax: the **mask** is a (T, T) boolean matrix, True where i may attend to j.
For a GPT the mask is lower-triangular (j <= i, the causal mask); the Sparse Transformer
keeps the same code and only changes the mask (one per head, see ``sparse_attention.py``).

As in karpathy/minGPT, the mask is a registered buffer (saved with the model, moved with
``.to(device)``, never trained) and the forward reads top to bottom.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def causal_mask(T: int) -> torch.Tensor:
    """The (T, T) boolean causal mask: True at (i, j) when j <= i (position i may attend to j)."""
    if T < 1:
        raise ValueError(f"the sequence length T must be >= 1, got {T}")
    return torch.tril(torch.ones(T, T, dtype=torch.bool))


def _check_mask(mask: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Return ``mask`` as (H or 1, T, T) bool; every row must allow at least one position."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor of booleans, got {type(mask).__name__}")
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3 or mask.shape[1] != mask.shape[2] or mask.shape[0] not in (1, n_heads):
        raise ValueError(f"mask must have shape (T, T), (1, T, T) or ({n_heads}, T, T) for {n_heads} heads, "
                         f"got {tuple(mask.shape)}")
    mask = mask.bool()
    if not mask.any(dim=-1).all():
        raise ValueError("every query position must be allowed to attend to at least one key "
                         "(a row of the mask is all False, its softmax would be undefined)")
    return mask


class MaskedSelfAttention(nn.Module):
    """Multi-head self-attention with a fixed boolean mask (one for all heads, or one per head).

    Args:
        d_model: channels C of the input and output.
        n_heads: number of heads H (C must be divisible by H).
        mask: (T, T) or (H, T, T) boolean, True where query i may attend to key j. Its size T
            is the longest sequence (the context); shorter inputs use its top-left corner,
            which for causal and sparse masks is the mask of the shorter sequence.
        dropout: dropout on the attention weights and the output.

    ``forward(x)``: x (B, T', C) with T' <= T -> (B, T', C). With ``return_attention=True``
    also returns the attention weights (B, H, T', T') (rows sum to 1).
    """

    def __init__(self, d_model: int, n_heads: int, mask: torch.Tensor, dropout: float = 0.0):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        # One linear map computes queries, keys and values of all heads at once (3 C outputs).
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", _check_mask(mask, n_heads), persistent=True)

    @property
    def context(self) -> int:
        return self.mask.shape[-1]

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, C) -> queries, keys, values, each (B, H, T, D), after checking the shape and the context."""
        if x.ndim != 3:
            raise ValueError(f"x must have shape (B, T, C), got {tuple(x.shape)}")
        B, T, C = x.shape
        if T > self.context:
            raise ValueError(f"sequence of length {T} is longer than the context of {self.context} positions")
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, H, T, D): each head works on its own D channels.
        return tuple(t.view(B, T, self.n_heads, self.d_head).transpose(1, 2) for t in (q, k, v))

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        q, k, v = self.project(x)
        B, T, C = x.shape
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)  # (B, H, T, T)
        scores = scores.masked_fill(~self.mask[:, :T, :T], float("-inf"))
        weights = F.softmax(scores, dim=-1)  # exp(-inf) = 0: forbidden keys get weight 0
        out = self.dropout(weights) @ v  # (B, H, T, D)
        out = out.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        out = self.dropout(self.proj(out))
        return (out, weights) if return_attention else out


    def step(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None):
        """Attention for new positions only, with a key/value cache (generation).

        x (B, T_new, C): the inputs at positions P..P+T_new-1, where P is the number of cached
        positions (0 without a cache); ``cache``: the keys and values (B, H, P, D) of the earlier
        positions. Returns (out (B, T_new, C), the cache extended to P + T_new positions). The new
        queries meet all keys, masked by rows P..P+T_new-1 of the mask: the same numbers as
        ``forward`` on the whole sequence, at the cost of the new rows only.
        """
        q, k, v = self.project(x)
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        B, T_new, C = x.shape
        T = k.shape[2]
        if T > self.context:
            raise ValueError(f"{T} cached and new positions exceed the context of {self.context}")
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)  # (B, H, T_new, T)
        scores = scores.masked_fill(~self.mask[:, T - T_new:T, :T], float("-inf"))
        out = (F.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T_new, C)
        return self.proj(out), (k, v)


class Block(nn.Module):
    """A transformer decoder block (pre-LayerNorm, as in GPT-2): x + attn(LN(x)), then x + MLP(LN(x)).

    Only the attention mixes positions, so the block is exactly as causal as its mask.
    ``attention``: an attention module to use instead of ``MaskedSelfAttention(d_model, n_heads, mask)``
    (the Sparse Transformer's fast kernel); then ``mask`` is ignored.
    ``forward(x)``: (B, T, C) -> (B, T, C).
    """

    def __init__(self, d_model: int, n_heads: int, mask: torch.Tensor | None, mlp_ratio: int = 4,
                 dropout: float = 0.0, attention: nn.Module | None = None):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        if attention is None:
            attention = MaskedSelfAttention(d_model, n_heads, mask, dropout)
        self.attn = attention
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(),
                                 nn.Linear(mlp_ratio * d_model, d_model), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        # Ask for the weights only when wanted: a fast attention kernel never forms them.
        if return_attention:
            a, weights = self.attn(self.ln1(x), return_attention=True)
        else:
            a = self.attn(self.ln1(x))
        x = x + a
        x = x + self.mlp(self.ln2(x))
        return (x, weights) if return_attention else x

    def step(self, x: torch.Tensor, cache=None):
        """The block for new positions x (B, T_new, C) given its attention's key/value cache (see
        :meth:`MaskedSelfAttention.step`); returns (out (B, T_new, C), the extended cache)."""
        a, cache = self.attn.step(self.ln1(x), cache)
        x = x + a
        return x + self.mlp(self.ln2(x)), cache


def run_blocks(blocks: nn.ModuleList, h: torch.Tensor, return_attention: bool = False):
    """(B, T, C) through a stack of decoder blocks -> (B, T, C), and each block's attention weights
    (a list, empty unless ``return_attention``). Shared by the byte GPT and the image transformers."""
    maps = []
    for block in blocks:
        if return_attention:
            h, weights = block(h, return_attention=True)
            maps.append(weights)
        else:
            h = block(h)
    return h, maps
