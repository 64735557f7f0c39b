"""Vector quantization: the discrete bottleneck of VQ-VAE (van den Oord et al., 2017).

An encoder output ``f(x)`` (one D-dimensional vector per position of a feature map) is replaced
by its nearest codebook vector ``z_k``, ``k = argmin_j ||f(x) - z_j||``. Two ways to learn the
codebook, one class each:

- :class:`VectorQuantizer`: the codebook is a parameter trained by the *codebook loss*
  ``||sg[f(x)] - z_k||^2``;
- :class:`VectorQuantizerEMA`: the codebook follows exponential moving averages of the encoder
  outputs assigned to each code (``N_k``, ``m_k``, ``z_k = m_k / N_k``), no gradient involved.

Both return a dict like deepmind/sonnet's ``vqvae.py``::

    out = vq(z_e)                 # z_e: (B, D, H, W) or (N, D)
    out["quantize"]               # same shape as z_e: z_k, with straight-through gradients
    out["loss"]                   # scalar: codebook loss (plain variant) + beta * commitment loss
    out["perplexity"]             # scalar: exp(entropy of the batch's code usage), 1..K
    out["encodings"]              # (B, H, W, K) or (N, K): one-hot assignments
    out["indices"]                # (B, H, W) or (N,): long codes in [0, K)

Dead codes (codes no encoder output is assigned to, which then never move again) can be
re-seeded from encoder outputs of the current batch: ``reseed_threshold > 0``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def nearest_code(flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook row (squared Euclidean distance) for each row of ``flat``.

    flat: (N, D); codebook: (K, D) -> (N,) long.
    """
    # ||x - z||^2 = ||x||^2 - 2 x.z + ||z||^2, without materialising (N, K, D).
    distances = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.t() + codebook.pow(2).sum(1)[None, :])
    return distances.argmin(dim=1)


def perplexity(encodings: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of the average one-hot assignment (N, K): 1 if one code is used, K if all equally."""
    probs = encodings.float().mean(0)
    return torch.exp(-(probs * torch.log(probs + 1e-10)).sum())


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantizer with a codebook learned by gradient (the codebook loss).

    Args:
        num_embeddings: K, the number of codes.
        embedding_dim: D, the dimension of each code (the channel dimension of the input).
        commitment_cost: beta in ``beta * ||f(x) - sg[z_k]||^2``.
        reseed_threshold: when > 0 (and training), a code whose running usage (an exponential
            moving average of the fraction of positions assigned to it) falls below
            ``reseed_threshold / K`` is moved onto a random encoder output of the current batch.
        usage_decay: decay of that running usage.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, commitment_cost: float = 0.25,
                 reseed_threshold: float = 0.0, usage_decay: float = 0.99):
        super().__init__()
        if num_embeddings < 1 or embedding_dim < 1:
            raise ValueError(f"num_embeddings and embedding_dim must be positive, got {num_embeddings}, "
                             f"{embedding_dim}")
        if commitment_cost < 0:
            raise ValueError(f"commitment_cost must be >= 0, got {commitment_cost}")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.commitment_cost = commitment_cost
        self.reseed_threshold = reseed_threshold
        self.usage_decay = usage_decay
        # Small uniform init (as in the paper's code): every code starts near the origin.
        self.embedding = nn.Parameter(torch.empty(num_embeddings, embedding_dim).uniform_(
            -1 / num_embeddings, 1 / num_embeddings))
        self.register_buffer("usage", torch.full((num_embeddings,), 1.0 / num_embeddings))
        self.register_buffer("n_reseeded", torch.zeros((), dtype=torch.long))

    @property
    def codebook(self) -> torch.Tensor:
        """(K, D): the current code vectors z_k."""
        return self.embedding

    # ------------------------------------------------------------------ shapes
    def _flatten(self, z_e: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """(B, D, H, W) -> (B*H*W, D) and the (B, H, W) index shape; (N, D) passes through."""
        if not isinstance(z_e, torch.Tensor):
            raise TypeError(f"z_e must be a torch.Tensor, got {type(z_e).__name__}")
        if not torch.is_floating_point(z_e):
            raise TypeError(f"z_e must be a float tensor (encoder outputs), got {z_e.dtype}")
        if z_e.ndim not in (2, 4):
            raise ValueError(f"z_e must have shape (B, D, H, W) or (N, D), got {tuple(z_e.shape)}")
        if z_e.shape[1] != self.embedding_dim:
            raise ValueError(f"z_e must have D={self.embedding_dim} channels (dimension 1), got "
                             f"{z_e.shape[1]} in shape {tuple(z_e.shape)}")
        if z_e.shape[0] == 0:
            raise ValueError("z_e is an empty batch; expected at least one example")
        if z_e.ndim == 2:
            return z_e, (z_e.shape[0],)
        b, d, h, w = z_e.shape
        return z_e.permute(0, 2, 3, 1).reshape(-1, d), (b, h, w)

    @staticmethod
    def _unflatten(flat: torch.Tensor, index_shape: tuple[int, ...]) -> torch.Tensor:
        if len(index_shape) == 1:
            return flat
        b, h, w = index_shape
        return flat.reshape(b, h, w, -1).permute(0, 3, 1, 2)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors of ``indices``: (B, H, W) long -> (B, D, H, W); (N,) -> (N, D)."""
        if indices.dtype != torch.long:
            raise TypeError(f"indices must be long codes, got {indices.dtype}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.num_embeddings):
            raise ValueError(f"indices must lie in [0, {self.num_embeddings}), got values in "
                             f"[{indices.min().item()}, {indices.max().item()}]")
        vectors = F.embedding(indices, self.codebook)
        return vectors.permute(0, 3, 1, 2) if indices.ndim == 3 else vectors

    # ------------------------------------------------------------------ forward
    def forward(self, z_e: torch.Tensor) -> dict[str, torch.Tensor]:
        flat, index_shape = self._flatten(z_e)
        with torch.no_grad():
            indices = nearest_code(flat, self.codebook)
        encodings = F.one_hot(indices, self.num_embeddings).to(flat.dtype)
        # F.embedding's backward needs only the indices, so the codebook may be updated in place below.
        quantized = F.embedding(indices, self.codebook)
        commitment = F.mse_loss(flat, quantized.detach())
        codebook_loss = self._codebook_loss(flat, quantized)
        loss = codebook_loss + self.commitment_cost * commitment
        # Straight-through estimator: the forward value is z_k, the gradient w.r.t. z_e is the
        # gradient w.r.t. z_k (the decoder's input), copied unchanged.
        quantized_st = flat + (quantized - flat).detach()
        if self.training:
            with torch.no_grad():
                self.update_codebook(flat.detach(), encodings)
                self._track_usage_and_reseed(flat.detach(), encodings)
        return {
            "quantize": self._unflatten(quantized_st, index_shape),
            "loss": loss,
            "commitment_loss": commitment,
            "codebook_loss": codebook_loss,
            "perplexity": perplexity(encodings),
            "encodings": encodings.reshape(*index_shape, self.num_embeddings),
            "indices": indices.reshape(index_shape),
        }

    def _codebook_loss(self, flat: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
        # ||sg[f(x)] - z_k||^2: moves each used code towards the encoder outputs assigned to it.
        return F.mse_loss(quantized, flat.detach())

    def update_codebook(self, flat: torch.Tensor, encodings: torch.Tensor) -> None:
        """Gradient-free codebook update after each training batch (none here: the optimizer does it)."""

    def _track_usage_and_reseed(self, flat: torch.Tensor, encodings: torch.Tensor) -> None:
        fraction = encodings.mean(0)
        self.usage.mul_(self.usage_decay).add_(fraction, alpha=1 - self.usage_decay)
        if self.reseed_threshold <= 0:
            return
        dead = torch.nonzero(self.usage < self.reseed_threshold / self.num_embeddings).flatten()
        if len(dead) == 0:
            return
        # Move each dead code onto a random encoder output of this batch: it now wins at least
        # that position, so it receives updates again.
        chosen = flat[torch.randint(len(flat), (len(dead),), device=flat.device)]
        self._reseed(dead, chosen)
        self.usage[dead] = 1.0 / self.num_embeddings
        self.n_reseeded += len(dead)

    def _reseed(self, dead: torch.Tensor, vectors: torch.Tensor) -> None:
        self.embedding.data[dead] = vectors

    def extra_repr(self) -> str:
        return (f"K={self.num_embeddings}, D={self.embedding_dim}, beta={self.commitment_cost}, "
                f"reseed_threshold={self.reseed_threshold}")


class VectorQuantizerEMA(VectorQuantizer):
    """Quantizer whose codebook follows exponential moving averages (no codebook loss, no gradient).

    For each training batch, with n_k the number of encoder outputs assigned to code k::

        N_k <- gamma N_k + (1 - gamma) n_k
        m_k <- gamma m_k + (1 - gamma) sum_{i: k_i = k} f(x_i)
        z_k <- m_k / N_k          (N_k Laplace-smoothed by ``epsilon`` so that it is never 0)

    ``N_k`` starts at 1 and ``m_k`` at the initial code, i.e. one pseudo-observation at z_k.
    The loss is only ``beta * ||f(x) - sg[z_k]||^2`` (the commitment term).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, commitment_cost: float = 0.25,
                 decay: float = 0.99, epsilon: float = 1e-5, reseed_threshold: float = 0.0,
                 usage_decay: float = 0.99):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        super().__init__(num_embeddings, embedding_dim, commitment_cost, reseed_threshold, usage_decay)
        self.decay = decay
        self.epsilon = epsilon
        initial = self.embedding.detach().clone()
        del self.embedding  # a buffer, not a parameter: the optimizer never touches it
        self.register_buffer("embedding", initial)
        self.register_buffer("cluster_size", torch.ones(num_embeddings))  # N_k
        self.register_buffer("embed_sum", initial.clone())  # m_k

    def _codebook_loss(self, flat: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
        return flat.new_zeros(())

    def update_codebook(self, flat: torch.Tensor, encodings: torch.Tensor) -> None:
        gamma = self.decay
        self.cluster_size.mul_(gamma).add_(encodings.sum(0), alpha=1 - gamma)
        self.embed_sum.mul_(gamma).add_(encodings.t() @ flat, alpha=1 - gamma)
        # Laplace smoothing keeps N_k > 0 for unused codes while preserving sum_k N_k.
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (n + self.num_embeddings * self.epsilon) * n
        self.embedding.copy_(self.embed_sum / smoothed[:, None])

    def _reseed(self, dead: torch.Tensor, vectors: torch.Tensor) -> None:
        self.embedding[dead] = vectors
        self.cluster_size[dead] = 1.0
        self.embed_sum[dead] = vectors

    def extra_repr(self) -> str:
        return super().extra_repr() + f", decay={self.decay} (EMA codebook)"
