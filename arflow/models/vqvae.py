"""VQ-VAE stage 1: an autoencoder with a grid of discrete latent codes (van den Oord et al., 2017).

    x (B, 1, 28, 28) --encoder f--> z_e (B, D, 7, 7) --quantize--> z_q (B, D, 7, 7) --decoder g--> x_hat

The 28x28 digit becomes a 7x7 grid of code indices in [0, K): 49 symbols instead of 784 pixels.
Loss (per batch, averaged over pixels and latent positions)::

    ||x - g(z_q)||^2  +  ||sg[f(x)] - z_k||^2 (plain codebook only)  +  beta ||f(x) - sg[z_k]||^2

Stage 2 (a PixelCNN prior over the 7x7 code grid) lives in :mod:`arflow.models.gated_pixelcnn`
with ``input="index"``; :func:`train_vqvae` records the curves the lecture plots.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from arflow.models.vector_quantizer import VectorQuantizer, VectorQuantizerEMA


class ResBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))): (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or channels // 2
        self.net = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def encoder_28_to_7(in_channels: int, hidden: int, out_channels: int) -> nn.Sequential:
    """(B, in, 28, 28) -> (B, out, 7, 7): two stride-2 convolutions and a residual block."""
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden // 2, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(hidden // 2, hidden, 4, stride=2, padding=1),
        ResBlock(hidden), nn.ReLU(),
        nn.Conv2d(hidden, out_channels, 1))


def decoder_7_to_28(in_channels: int, hidden: int, out_channels: int = 1) -> nn.Sequential:
    """(B, in, 7, 7) -> (B, out, 28, 28) logits: a residual block and two stride-2 transposed convolutions."""
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, 3, padding=1),
        ResBlock(hidden), nn.ReLU(),
        nn.ConvTranspose2d(hidden, hidden // 2, 4, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(hidden // 2, out_channels, 4, stride=2, padding=1))


def check_images(x: torch.Tensor, size: int = 28) -> None:
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
        raise TypeError(f"x must be a float tensor of images in [0, 1], got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[2:] != (size, size):
        raise ValueError(f"x must have shape (B, 1, {size}, {size}), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch; expected at least one image")


class VQVAE(nn.Module):
    """Convolutional VQ-VAE for 28x28 grey images with a 7x7 grid of codes.

    Args:
        num_embeddings: K codes; embedding_dim: D; hidden: channels of encoder and decoder.
        commitment_cost: beta. ema: learn the codebook with moving averages instead of the codebook loss.
        decay: EMA decay gamma. reseed_threshold: > 0 re-seeds dead codes (see the quantizer).
    """

    def __init__(self, num_embeddings: int = 64, embedding_dim: int = 16, hidden: int = 64,
                 commitment_cost: float = 0.25, ema: bool = True, decay: float = 0.99,
                 reseed_threshold: float = 0.0):
        super().__init__()
        self.encoder = encoder_28_to_7(1, hidden, embedding_dim)
        if ema:
            self.quantizer = VectorQuantizerEMA(num_embeddings, embedding_dim, commitment_cost, decay=decay,
                                                reseed_threshold=reseed_threshold)
        else:
            self.quantizer = VectorQuantizer(num_embeddings, embedding_dim, commitment_cost,
                                             reseed_threshold=reseed_threshold)
        self.decoder = decoder_7_to_28(embedding_dim, hidden)
        self.num_embeddings = num_embeddings
        self.grid_size = 7

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, 1, 28, 28) in [0, 1] -> the quantizer's dict plus ``z_e``, ``x_hat`` (B, 1, 28, 28) (unclamped),
        ``recon_loss`` (mean squared error per pixel) and ``total_loss``."""
        check_images(x)
        z_e = self.encoder(x)
        out = self.quantizer(z_e)
        # A linear output trained with MSE learns much faster than a sigmoid (which starts saturated
        # at the mean image); images for display are clamped to [0, 1].
        x_hat = self.decoder(out["quantize"])
        recon = F.mse_loss(x_hat, x)
        out.update(z_e=z_e, x_hat=x_hat, recon_loss=recon, total_loss=recon + out["loss"])
        return out

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 1, 28, 28) -> code indices (B, 7, 7) long."""
        check_images(x)
        # Encoding must never update the codebook, even in training mode.
        was = self.quantizer.training
        self.quantizer.eval()
        try:
            return self.quantizer(self.encoder(x))["indices"]
        finally:
            self.quantizer.train(was)

    @torch.no_grad()
    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Code indices (B, 7, 7) long -> images (B, 1, 28, 28) in [0, 1]."""
        if indices.ndim != 3:
            raise ValueError(f"indices must have shape (B, H, W), got {tuple(indices.shape)}")
        return self.decoder(self.quantizer.lookup(indices)).clamp(0, 1)
