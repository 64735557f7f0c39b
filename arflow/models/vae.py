"""Variational autoencoders on binarized MNIST, to *show* posterior collapse.

Both models share the encoder q(z | x) = N(mu(x), diag sigma(x)^2) and the prior p(z) = N(0, I);
they differ only in the decoder p(x | z):

- ``decoder="factorized"`` (weak): every pixel an independent Bernoulli given z. All that the
  pixels share must travel through z, so the KL term stays well above zero.
- ``decoder="pixelcnn"`` (strong): a Gated PixelCNN over the pixels, conditioned on z through a
  spatial map (``cond_channels``). It can model the digits from the pixels above and to the left
  alone; the ELBO's KL penalty then pushes q(z | x) onto the prior, and z is ignored:
  *posterior collapse*, the motivation of VQ-VAE.

Loss: the negative ELBO per image in nats, ``recon + kl`` with
``recon = -E_q log p(x | z)`` (one sample of z) and ``kl = KL(q(z | x) || N(0, I))`` (analytic).
Training logs both terms (``kl``, ``recon``) into its history, which the lecture plots.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from arflow.models.gated_pixelcnn import GatedPixelCNN
from arflow.models.vqvae import check_images
from arflow.utils import model_device

DECODERS = ("factorized", "pixelcnn")


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per example, in nats: (B, L), (B, L) -> (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)


class VAE(nn.Module):
    """A convolutional VAE for binarized 28x28 digits with a weak or an autoregressive decoder.

    Args:
        latent_dim: L, the size of z.
        decoder: ``"factorized"`` or ``"pixelcnn"``.
        hidden: channels of the encoder (and of the factorized decoder).
        cond_channels, pixelcnn_channels, pixelcnn_layers: the PixelCNN decoder's conditioning map
            (z -> (B, cond_channels, 28, 28)) and size.
    """

    def __init__(self, latent_dim: int = 16, decoder: str = "factorized", hidden: int = 32,
                 cond_channels: int = 8, pixelcnn_channels: int = 32, pixelcnn_layers: int = 5):
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        self.latent_dim, self.decoder_kind = latent_dim, decoder
        self.encoder = nn.Sequential(
            nn.Conv2d(1, hidden, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, 2 * hidden, 4, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(2 * hidden * 49, 2 * latent_dim))
        if decoder == "factorized":
            self.decoder = nn.Sequential(
                nn.Linear(latent_dim, 2 * hidden * 49), nn.ReLU(), nn.Unflatten(1, (2 * hidden, 7, 7)),
                nn.ConvTranspose2d(2 * hidden, hidden, 4, stride=2, padding=1), nn.ReLU(),
                nn.ConvTranspose2d(hidden, 1, 4, stride=2, padding=1))  # Bernoulli logits
        else:
            # z -> a coarse 7x7 map -> upsampled to every pixel, added inside every gate of the PixelCNN
            self.cond_net = nn.Sequential(nn.Linear(latent_dim, cond_channels * 49),
                                          nn.Unflatten(1, (cond_channels, 7, 7)),
                                          nn.Upsample(scale_factor=4, mode="nearest"))
            self.pixelcnn = GatedPixelCNN(2, pixelcnn_channels, pixelcnn_layers, 5, input="intensity",
                                          cond_channels=cond_channels)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 1, 28, 28) of 0/1 -> mu, logvar (B, L)."""
        check_images(x)
        mu, logvar = self.encoder(2 * x - 1).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)

    def recon_nll(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) per image in nats: x (B, 1, 28, 28) of 0/1, z (B, L) -> (B,)."""
        if self.decoder_kind == "factorized":
            logits = self.decoder(z)
            return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=(1, 2, 3))
        logits = self.pixelcnn(x, cond=self.cond_net(z))
        return F.cross_entropy(logits, x[:, 0].long(), reduction="none").sum(dim=(1, 2))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Negative ELBO terms per image, in nats (means over the batch): ``recon``, ``kl``, ``loss``."""
        mu, logvar = self.encode(x)
        noise = torch.randn(mu.shape, generator=generator, device=mu.device)
        z = mu + noise * (0.5 * logvar).exp()  # reparameterisation: gradients reach mu and logvar
        recon, kl = self.recon_nll(x, z).mean(), gaussian_kl(mu, logvar).mean()
        return {"recon": recon, "kl": kl, "loss": recon + kl, "mu": mu, "logvar": logvar}

    @torch.no_grad()
    def decode(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """z (B, L) -> a binary image (B, 1, 28, 28) drawn from p(x | z) (a PixelCNN samples pixel by pixel)."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        if self.decoder_kind == "factorized":
            probs = torch.sigmoid(self.decoder(z))
            return (torch.rand(probs.shape, generator=generator) < probs).float()
        return self.pixelcnn.sample(len(z), (28, 28), cond=self.cond_net(z), generator=generator,
                                    device=z.device)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode the posterior mean of x: (B, 1, 28, 28) -> (B, 1, 28, 28) of 0/1."""
        return self.decode(self.encode(x)[0], generator)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images from the model: z ~ N(0, I), x ~ p(x | z)."""
        device = model_device(self)
        return self.decode(torch.randn((n, self.latent_dim), generator=generator).to(device), generator)

    @torch.no_grad()
    def latent_usage(self, x: torch.Tensor) -> dict[str, float]:
        """How much the decoder uses z: -log p(x | z) per image with the right z (posterior mean of
        x) and with a wrong one (the posterior mean of another image). Equal when z is ignored."""
        mu, _ = self.encode(x)
        own = self.recon_nll(x, mu).mean().item()
        other = self.recon_nll(x, mu.roll(1, dims=0)).mean().item()
        return {"own_z": own, "other_z": other, "gap": other - own}
