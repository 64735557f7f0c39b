"""Test metrics of the transformers: the byte GPT (bits/byte), the image transformers (bits/dim),
the dVAE (reconstruction MSE) and mini DALL-E (bits per image token given the caption)."""

from __future__ import annotations

import torch

from arflow.data import mnist, text_corpus, to_float
from arflow.data.windows import windows
from arflow.evaluate.batched import mean_over_batches
from arflow.models.dalle import caption_dataset
from arflow.models.image_transformer import prepare_images
from arflow.units import nats_to_bits
from arflow.utils import model_device


def gpt_bits_per_byte(model, limit: int | None = None, batch: int = 64) -> float:
    """Test bits per byte on the first ``limit`` non-overlapping windows of the held-out modules."""
    data = windows(text_corpus.corpus_tokens("test"), model.block_size + 1, limit)
    device = model_device(model)
    return nats_to_bits(mean_over_batches(lambda chunk: model.nll(chunk.to(device)), data, batch))


def image_tokens(split: str, size: int, levels: int, limit: int | None = None) -> torch.Tensor:
    """Pixel tokens (N, size, size) of an MNIST split, pooled and quantized to ``levels``."""
    images, _ = mnist(split, limit=limit)
    return prepare_images(images, size, levels)


def imgtf_bits_per_dim(model, limit: int | None = None) -> float:
    """Test bits/dim of an image transformer on its own image size and levels."""
    tokens = image_tokens("test", model.image_size[0], model.levels, limit)
    device = model_device(model)
    return mean_over_batches(lambda chunk: model.nll_bits_per_dim(chunk.to(device)), tokens, 100)


def dvae_mse(model, limit: int | None = None) -> float:
    """Test mean squared error per pixel (intensities in [0, 1]) of decode(encode(x)): hard tokens, no noise."""
    x = to_float(mnist("test", limit=limit)[0])
    device = model_device(model)

    def mse(chunk: torch.Tensor) -> torch.Tensor:
        chunk = chunk.to(device)
        return ((model.decode(model.encode(chunk)) - chunk) ** 2).mean()

    return mean_over_batches(mse, x, 250)


def dalle_data(split: str, dvae, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(image tokens (N, 7, 7) from the dVAE, labels (N,)) of an MNIST split."""
    images, labels = mnist(split, limit=limit)
    with torch.no_grad():
        tokens = torch.cat([dvae.encode(chunk) for chunk in to_float(images).split(500)])
    return tokens, torch.as_tensor(labels.copy()).long()


def dalle_image_bits(model, dvae, limit: int | None = None) -> float:
    """Test negative log-likelihood of the image tokens (made by ``dvae``) given the caption, in bits
    per image token. Test example i is captioned in phrasing i mod 4 (deterministic)."""
    tokens, labels = dalle_data("test", dvae, limit)
    text = caption_dataset(labels, text_len=model.text_len)
    device = model_device(model)
    nats = mean_over_batches(lambda b: model.losses(b[0].to(device), b[1].to(device))["image"], (text, tokens), 250)
    return nats_to_bits(nats)
