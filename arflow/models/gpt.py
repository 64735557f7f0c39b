"""A small GPT: a decoder-only transformer over tokens (bytes of text, in lecture 04).

p(x_1, ..., x_T) = prod_t p(x_t | x_{<t}): the model reads tokens x_1..x_T and its output at
position t is the distribution of x_{t+1}. Token embedding + learned position embedding,
``n_layers`` decoder blocks with the causal mask, a final LayerNorm and a linear head whose
weight is tied to the token embedding (as in GPT-2; it halves the embedding parameters).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from arflow.models.attention import Block, causal_mask
from arflow.models.sampling import check_temperature, draw_categorical
from arflow.models.token_transformer import TokenTransformer
from arflow.utils import progress


class GPT(TokenTransformer):
    """Decoder-only transformer.

    Args:
        vocab_size: number of token values V (256 for bytes).
        block_size: the context T, the longest sequence the model reads.
        d_model, n_heads, n_layers: width C, heads H, depth.

    ``forward(idx)``: idx (B, T') long in [0, V), T' <= T -> logits (B, T', V); the logits at
    position t predict token t + 1. ``forward(idx, return_attention=True)`` also returns the
    attention weights of every layer, a list of (B, H, T', T').
    """

    def __init__(self, vocab_size: int = 256, block_size: int = 128, d_model: int = 96, n_heads: int = 4,
                 n_layers: int = 3, dropout: float = 0.0):
        super().__init__()
        self.vocab_size, self.block_size = vocab_size, block_size
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Parameter(torch.zeros(1, block_size, d_model))
        mask = causal_mask(block_size)
        self.build_trunk((Block(d_model, n_heads, mask, dropout=dropout) for _ in range(n_layers)), d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying
        self.apply(self._init)
        nn.init.normal_(self.pos_emb, std=0.02)

    @staticmethod
    def _init(module: nn.Module) -> None:
        # GPT-2's initialisation: small normal weights, zero biases.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def check_tokens(self, idx: torch.Tensor) -> None:
        if not isinstance(idx, torch.Tensor) or idx.dtype != torch.long:
            got = getattr(idx, "dtype", type(idx).__name__)
            raise TypeError(f"idx must be a LongTensor of token ids, got {got}")
        if idx.ndim != 2:
            raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}")
        if idx.shape[1] > self.block_size:
            raise ValueError(f"sequence of length {idx.shape[1]} is longer than the context (block_size = "
                             f"{self.block_size}); crop it to its last {self.block_size} tokens")
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got values in "
                             f"[{idx.min().item()}, {idx.max().item()}]")

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) tokens -> (B, T, C) inputs of the first block. Split out so tests can take gradients."""
        self.check_tokens(idx)
        return self.tok_emb(idx) + self.pos_emb[:, : idx.shape[1]]

    def read_out(self, h: torch.Tensor) -> torch.Tensor:
        """Normalized features (B, T, C) -> logits (B, T, V) of the next token."""
        return self.head(h)

    def forward(self, idx: torch.Tensor, return_attention: bool = False):
        return self.forward_embeddings(self.embed(idx), return_attention)

    def nll(self, idx: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood in nats per predicted token of windows idx (B, T+1)."""
        logits = self(idx[:, :-1])
        return F.cross_entropy(logits.reshape(-1, self.vocab_size), idx[:, 1:].reshape(-1))

    @torch.no_grad()
    def sample(self, prompt: torch.Tensor, n_new: int, temperature: float = 1.0, top_k: int | None = None,
               generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
        """Continue ``prompt`` (B, T0) by ``n_new`` tokens drawn one at a time; returns (B, T0 + n_new).

        Each step reads the last ``block_size`` tokens, takes the logits of the last position,
        divides them by ``temperature`` (< 1 sharper, > 1 flatter) and samples. With ``use_cache``
        the keys and values of earlier positions are kept (a KV cache), so a step costs one new
        position, not the whole window, while the sequence fits in the context; once it is longer
        the window slides, every token changes position (the position embeddings are absolute),
        and the window is read again each step. Both ways draw the same tokens.
        """
        check_temperature(temperature)
        if prompt.ndim != 2 or prompt.shape[1] < 1:
            raise ValueError(f"prompt must have shape (B, T0) with T0 >= 1, got {tuple(prompt.shape)}")
        idx = prompt.to(self.pos_emb.device)
        caches = None
        for _ in progress(range(n_new), "sampling tokens"):
            if use_cache and caches is not None and idx.shape[1] <= self.block_size:
                logits, caches = self._extend(idx[:, -1:], caches)
            else:
                logits, caches = self._extend(idx[:, -self.block_size:], None)
            nxt = draw_categorical(logits, temperature, top_k, generator)
            idx = torch.cat([idx, nxt[:, None]], dim=1)
        return idx

    @torch.no_grad()
    def _extend(self, new: torch.Tensor, caches: list | None) -> tuple[torch.Tensor, list]:
        """Tokens new (B, T_new) after the cached positions -> (logits (B, V) of the last one, caches)."""
        start = 0 if caches is None else caches[0][0].shape[2]
        self.check_tokens(new)
        h = self.tok_emb(new) + self.pos_emb[:, start:start + new.shape[1]]
        caches = caches or [None] * len(self.blocks)
        for i, block in enumerate(self.blocks):
            h, caches[i] = block.step(h, caches[i])
        return self.head(self.ln_f(h[:, -1])), caches
