"""Stage 1 of DALL-E in miniature: a discrete VAE that turns a 28x28 digit into a 7x7 grid of tokens.

The encoder outputs, at each of the 7x7 grid cells, logits over K image tokens: a categorical
posterior q(z | x). A sample from it cannot be backpropagated through, so training uses the
**Gumbel-softmax relaxation** (Jang et al., 2017; Maddison et al., 2017): add Gumbel noise to the
logits and take softmax(. / tau), a *soft* one-hot vector that tends to a true one-hot sample as
the temperature tau -> 0. DALL-E anneals tau from 1 to 1/16 during training; so do we.

The decoder reads the (soft) one-hot grid through a 1x1 convolution, which is a lookup in a
codebook of K vectors, and upsamples to 28x28 Bernoulli logits for the intensities k/255
(DALL-E uses a logit-Laplace likelihood on RGB; a Bernoulli likelihood on grey levels is the
common MNIST choice). The loss is the negative ELBO: reconstruction + beta KL(q(z|x) || uniform).
After training, an image's tokens are the argmax of the encoder logits (no noise).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def temperature_schedule(step: int, steps: int, start: float = 1.0, end: float = 1.0 / 16) -> float:
    """Exponential annealing of the Gumbel-softmax temperature from ``start`` (step 0) to ``end`` (last step)."""
    if steps <= 1:
        return end
    progress = min(1.0, max(0.0, step / (steps - 1)))
    return start * (end / start) ** progress


class DiscreteVAE(nn.Module):
    """A dVAE for 1x28x28 images with a ``grid`` x ``grid`` token map (grid 7: two stride-2 stages).

    Args:
        n_tokens: K, the size of the image-token vocabulary.
        hidden: channels of the convolutions.

    ``forward(x, tau)``: x (B, 1, 28, 28) floats in [0, 1] -> dict with ``logits`` (B, K, 7, 7),
    ``z`` (B, K, 7, 7) relaxed one-hot samples, ``recon_logits`` (B, 1, 28, 28), ``indices`` (B, 7, 7)
    (argmax), and the losses in nats per image: ``recon``, ``kl``.
    """

    grid = 7

    def __init__(self, n_tokens: int = 32, hidden: int = 64):
        super().__init__()
        self.n_tokens = n_tokens
        h = hidden
        self.encoder = nn.Sequential(
            nn.Conv2d(1, h, 4, stride=2, padding=1), nn.ReLU(),  # 28 -> 14
            nn.Conv2d(h, h, 4, stride=2, padding=1), nn.ReLU(),  # 14 -> 7
            nn.Conv2d(h, h, 3, padding=1), nn.ReLU(),
            nn.Conv2d(h, n_tokens, 1),  # logits over the K tokens at each cell
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(n_tokens, h, 1),  # one-hot -> codebook vector (a 1x1 conv is a lookup table)
            nn.ReLU(), nn.Conv2d(h, h, 3, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(h, h, 4, stride=2, padding=1), nn.ReLU(),  # 7 -> 14
            nn.ConvTranspose2d(h, 1, 4, stride=2, padding=1),  # 14 -> 28, Bernoulli logits
        )

    def _check_images(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
            raise TypeError("x must be a float tensor of intensities in [0, 1] (use arflow.data.to_float)")
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"x must have shape (B, 1, 28, 28), got {tuple(x.shape)}")

    def encoder_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) -> (B, K, 7, 7) logits of q(z | x)."""
        self._check_images(x)
        return self.encoder(x * 2 - 1)  # centre the inputs

    def forward(self, x: torch.Tensor, tau: float = 1.0, hard: bool = False) -> dict:
        logits = self.encoder_logits(x)
        z = F.gumbel_softmax(logits, tau=tau, hard=hard, dim=1)
        recon_logits = self.decoder(z)
        recon = F.binary_cross_entropy_with_logits(recon_logits, x, reduction="sum") / len(x)
        log_q = F.log_softmax(logits, dim=1)
        # KL(q || uniform over K) = sum_k q_k (log q_k + log K), summed over the grid, per image.
        kl = (log_q.exp() * (log_q + math.log(self.n_tokens))).sum() / len(x)
        return {"logits": logits, "z": z, "recon_logits": recon_logits, "indices": logits.argmax(dim=1),
                "recon": recon, "kl": kl}

    def loss(self, x: torch.Tensor, tau: float, beta: float = 1.0) -> torch.Tensor:
        """Negative ELBO (with a weight ``beta`` on the KL), nats per image."""
        out = self(x, tau)
        return out["recon"] + beta * out["kl"]

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 1, 28, 28) -> image tokens (B, 7, 7), long in [0, K): the most likely token per cell."""
        return self.encoder_logits(x).argmax(dim=1)

    @torch.no_grad()
    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Image tokens (B, 7, 7) -> images (B, 1, 28, 28): the Bernoulli means sigmoid(logits) in [0, 1]."""
        if indices.dtype != torch.long or indices.ndim != 3 or tuple(indices.shape[1:]) != (self.grid, self.grid):
            raise ValueError(f"indices must be a LongTensor (B, {self.grid}, {self.grid}), "
                             f"got {indices.dtype} {tuple(indices.shape)}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.n_tokens):
            raise ValueError(f"image tokens must lie in [0, {self.n_tokens})")
        one_hot = F.one_hot(indices, self.n_tokens).permute(0, 3, 1, 2).float()
        return torch.sigmoid(self.decoder(one_hot))
