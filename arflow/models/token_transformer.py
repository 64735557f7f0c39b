"""The core shared by every token transformer of the course (byte GPT, image transformers, mini DALL-E).

A subclass embeds its tokens (``embed``: tokens -> (B, T, C), with its own positions) and reads
logits out (``read_out``: normalized features (B, T, C) -> logits); in between, the same trunk:
a stack of pre-norm decoder :class:`~arflow.models.attention.Block` s, then a final LayerNorm.
``forward_embeddings`` runs the trunk from embeddings, so tests and lectures can take gradients
with respect to the inputs of the first block.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from arflow.models.attention import run_blocks


class TokenTransformer(nn.Module):
    """Embeddings -> decoder blocks -> LayerNorm -> heads. Subclasses call :meth:`build_trunk` in
    their ``__init__`` and define ``read_out``."""

    def build_trunk(self, blocks: Iterable[nn.Module], d_model: int) -> None:
        """The stack of decoder blocks (``self.blocks``) and the final LayerNorm (``self.ln_f``)."""
        self.blocks = nn.ModuleList(blocks)
        self.ln_f = nn.LayerNorm(d_model)

    def read_out(self, h: torch.Tensor):
        """Normalized features (B, T, C) -> logits; defined by each model."""
        raise NotImplementedError

    def forward_embeddings(self, h: torch.Tensor, return_attention: bool = False):
        """(B, T, C) embeddings -> logits (and the attention weights (B, heads, T, T) of every layer)."""
        h, maps = run_blocks(self.blocks, h, return_attention)
        logits = self.read_out(self.ln_f(h))
        return (logits, maps) if return_attention else logits
