"""Sparse Transformer attention patterns (Child et al., 2019): factorized masks and a fast strided kernel.

A standard causal transformer lets position i attend to all j <= i: n(n+1)/2 pairs, time and
memory O(n^2). The Sparse Transformer splits the work between two heads, each attending to
about sqrt(n) positions, so that **two layers** still connect every j <= i to i:

- **strided** (stride l): head A attends to the previous l positions (i - j < l), head B to
  every l-th position before (i - j divisible by l). For an image of width l, A sees the
  last row of pixels and B the column above: a path j -> k -> i goes up the column, then along the row.
- **fixed** (stride l, c summary positions): head A attends within the block of l positions
  that holds i (floor(j / l) = floor(i / l)), head B to the last c positions of every block
  (j mod l >= l - c), which summarise their block for all later positions (and to itself, so that
  the first positions, which have no summary before them, attend somewhere).

Masks are (2, n, n) boolean, True where query i may attend to key j (always j <= i), the same
convention as :mod:`arflow.models.attention`; :class:`StridedSelfAttention` computes the
strided pattern without ever forming an n x n matrix, in O(n sqrt(n)) time and memory.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from arflow.models.attention import MaskedSelfAttention, causal_mask

PATTERNS = ("dense", "strided", "fixed")


def _positions(n: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    if n < 1:
        raise ValueError(f"the sequence length n must be >= 1, got {n}")
    if not 1 <= stride <= n:
        raise ValueError(f"the stride l must lie in 1..n = 1..{n}, got {stride}")
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    return i, j


def strided_masks(n: int, stride: int) -> torch.Tensor:
    """(2, n, n): head 0 the previous ``stride`` positions, head 1 every ``stride``-th earlier position."""
    i, j = _positions(n, stride)
    causal = j <= i
    return torch.stack([causal & (i - j < stride), causal & ((i - j) % stride == 0)])


def fixed_masks(n: int, stride: int, summary: int = 1) -> torch.Tensor:
    """(2, n, n): head 0 its own block of ``stride`` positions, head 1 the last ``summary`` positions
    of every block."""
    i, j = _positions(n, stride)
    if not 1 <= summary <= stride:
        raise ValueError(f"summary c must lie in 1..stride = 1..{stride}, got {summary}")
    causal = j <= i
    # Head B also lets i attend to itself, so that the first positions (before any summary) have a key.
    summaries = causal & ((j % stride >= stride - summary) | (i == j))
    return torch.stack([causal & (j // stride == i // stride), summaries])


def pattern_masks(pattern: str, n: int, stride: int | None = None, n_heads: int = 2) -> torch.Tensor:
    """Per-head masks (n_heads, n, n): ``dense`` the causal mask for all heads; ``strided``/``fixed``
    give the first half of the heads pattern A and the second half pattern B."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown attention pattern {pattern!r}; expected one of {PATTERNS}")
    if pattern == "dense":
        return causal_mask(n)[None].expand(n_heads, n, n).clone()
    if n_heads % 2:
        raise ValueError(f"a factorized pattern splits the heads in two halves; n_heads must be even, "
                         f"got {n_heads}")
    stride = stride or default_stride(n)
    pair = strided_masks(n, stride) if pattern == "strided" else fixed_masks(n, stride)
    return pair.repeat_interleave(n_heads // 2, dim=0)


def default_stride(n: int) -> int:
    """l close to sqrt(n), as the paper chooses it."""
    return max(1, round(math.sqrt(n)))


def reachable(masks: torch.Tensor, layers: int) -> torch.Tensor:
    """(n, n) boolean: True where information can flow from position j to position i through ``layers``
    layers of attention with these head masks (H, n, n). A layer merges its heads, and the residual
    connection keeps every position's own information (the identity)."""
    if masks.ndim == 2:
        masks = masks[None]
    n = masks.shape[-1]
    step = (masks.any(dim=0) | torch.eye(n, dtype=torch.bool)).float()
    reach = torch.eye(n)
    for _ in range(layers):
        reach = (step @ reach).clamp(max=1)  # paths of one more layer: i <- k <- ... <- j
    return reach.bool()


def attended_pairs(masks: torch.Tensor) -> int:
    """Number of (query, key) pairs one layer computes: the sum over heads of each head's mask."""
    return int(masks.sum())


# --------------------------------------------------------------------------- O(n sqrt n) kernels
def _pad_to_multiple(t: torch.Tensor, stride: int) -> torch.Tensor:
    """Pad (..., T, D) with zero positions at the end to a multiple of ``stride`` (later positions:
    causality hides them from every real query)."""
    extra = (-t.shape[-2]) % stride
    return F.pad(t, (0, 0, 0, extra)) if extra else t


def local_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, stride: int) -> torch.Tensor:
    """Head A of the strided pattern without an n x n matrix: (B, T, D) x 3 -> (B, T, D).

    Cut the sequence into blocks of ``stride``; a query in block b only needs keys of blocks b - 1
    and b, so the scores are (B, T / l, l, 2 l): O(T l) time and memory.
    """
    B, T, D = q.shape
    l = stride
    q, k, v = (_pad_to_multiple(t, l) for t in (q, k, v))
    nb = q.shape[1] // l
    qb = q.view(B, nb, l, D)
    kb, vb = k.view(B, nb, l, D), v.view(B, nb, l, D)
    # Keys of (previous block, this block): (B, nb, 2 l, D); block 0's previous block is zeros.
    k2 = torch.cat([F.pad(kb, (0, 0, 0, 0, 1, 0))[:, :-1], kb], dim=2)
    v2 = torch.cat([F.pad(vb, (0, 0, 0, 0, 1, 0))[:, :-1], vb], dim=2)
    scores = qb @ k2.transpose(-2, -1) / math.sqrt(D)  # (B, nb, l, 2l)
    r = torch.arange(l, device=q.device)[:, None]  # query offset in its block
    s = torch.arange(2 * l, device=q.device)[None, :]  # key offset from the previous block's start
    allowed = (s > r) & (s <= r + l)  # i - j = l + r - s must lie in [0, l)
    allowed = allowed.expand(nb, l, 2 * l).clone()
    allowed[0, :, :l] = False  # there is no block before block 0
    weights = F.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
    return (weights @ v2).reshape(B, nb * l, D)[:, :T]


def column_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, stride: int) -> torch.Tensor:
    """Head B of the strided pattern: position i = r l + c attends to r' l + c for r' <= r.

    Reshape the sequence into rows of length l; each of the l columns is an independent causal
    attention over T / l rows: O(T^2 / l) time and memory. (B, T, D) x 3 -> (B, T, D).
    """
    B, T, D = q.shape
    l = stride
    q, k, v = (_pad_to_multiple(t, l) for t in (q, k, v))
    rows = q.shape[1] // l
    qc, kc, vc = (t.view(B, rows, l, D).transpose(1, 2) for t in (q, k, v))  # (B, l, rows, D)
    scores = qc @ kc.transpose(-2, -1) / math.sqrt(D)  # (B, l, rows, rows)
    scores = scores.masked_fill(~causal_mask(rows).to(q.device), float("-inf"))
    out = F.softmax(scores, dim=-1) @ vc  # (B, l, rows, D)
    return out.transpose(1, 2).reshape(B, rows * l, D)[:, :T]


class StridedSelfAttention(MaskedSelfAttention):
    """Multi-head self-attention with the strided pattern, computed in O(n sqrt(n)).

    The first half of the heads attend locally (previous ``stride`` positions), the second half
    along columns (every ``stride``-th position). Its parameters and results are those of a
    :class:`MaskedSelfAttention` with ``pattern_masks("strided", n, stride, n_heads)``
    (the tests check it); the masks are kept as a buffer for ``return_attention=True``, which
    takes the dense path to return the (B, H, T, T) weights for plotting.
    """

    def __init__(self, d_model: int, n_heads: int, n: int, stride: int, dropout: float = 0.0):
        super().__init__(d_model, n_heads, pattern_masks("strided", n, stride, n_heads), dropout)
        self.stride = stride

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        if return_attention:
            return super().forward(x, return_attention=True)
        q, k, v = self.project(x)  # each (B, H, T, D)
        B, T, C = x.shape
        H, D, half = self.n_heads, self.d_head, self.n_heads // 2
        # (B, H, T, D) -> (B * heads, T, D) for each half of the heads.

        def heads(t: torch.Tensor, part: slice) -> torch.Tensor:
            return t[:, part].reshape(-1, T, D)

        a, b = slice(0, half), slice(half, H)
        out_a = local_attention(heads(q, a), heads(k, a), heads(v, a), self.stride).view(B, half, T, D)
        out_b = column_attention(heads(q, b), heads(k, b), heads(v, b), self.stride).view(B, H - half, T, D)
        out = torch.cat([out_a, out_b], dim=1).transpose(1, 2).reshape(B, T, C)
        return self.dropout(self.proj(out))
