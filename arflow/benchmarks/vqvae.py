"""Sampling time: a PixelCNN prior over 7x7 VQ-VAE codes plus the decoder, against a pixel-space PixelCNN.

Untrained models of the shipped sizes (timing does not depend on the weights); the ratio is the number
to read, since absolute times depend on the machine and its load.
"""

from __future__ import annotations

import torch

from arflow.bench import median_seconds
from arflow.models.gated_pixelcnn import GatedPixelCNN
from arflow.models.vqvae import VQVAE
from arflow.train.recipes.vqvae import PRIOR, VQVAE_RECIPE


def run(n: int = 8) -> list[str]:
    torch.manual_seed(0)
    prior, vqvae = PRIOR.build(PRIOR.model_config).eval(), VQVAE_RECIPE.build(VQVAE_RECIPE.model_config).eval()
    pixel = GatedPixelCNN(256, 32, 5, 5).eval()
    assert isinstance(vqvae, VQVAE)

    def codes_then_decode():
        vqvae.decode(prior.sample(n, (7, 7), generator=torch.Generator().manual_seed(0)))

    def pixels():
        pixel.sample(n, (28, 28), generator=torch.Generator().manual_seed(0))

    t_codes = median_seconds(codes_then_decode, repeat=3)
    t_pixels = median_seconds(pixels, repeat=1, warmup=0)
    return [f"VQ-VAE prior (49 codes) + decoder: {t_codes / n * 1000:.1f} ms per digit ({n} digits a batch)",
            f"pixel Gated PixelCNN (784 pixels, 32 channels, 5 layers): {t_pixels / n * 1000:.1f} ms per digit",
            f"pixel-space / code-space sampling time: {t_pixels / t_codes:.1f}x"]
