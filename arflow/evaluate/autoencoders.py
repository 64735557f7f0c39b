"""Test metrics of the latent-variable models of lecture 03: the VAEs' negative ELBO, the
reconstruction error of VQ-VAE and VQ-VAE-2, code usage, and the priors over the codes."""

from __future__ import annotations

import torch

from arflow.data import binarize, mnist, to_float
from arflow.evaluate.batched import mean_over_batches
from arflow.units import nats_to_bits


def embedded_digits(split: str = "test", limit: int | None = None, binary: bool = False) -> torch.Tensor:
    """Embedded MNIST digits (N, 1, 28, 28): float k/255, or 0/1 when ``binary``."""
    images, _ = mnist(split, source="embedded", limit=limit)
    return binarize(images) if binary else to_float(images)


def vae_negative_elbo(model, limit: int | None = None, batch_size: int = 100) -> float:
    """Test negative ELBO in nats per image (one z sample per image from a fixed generator)."""
    x = embedded_digits("test", limit, binary=True)
    generator = torch.Generator().manual_seed(0)
    model.eval()
    return mean_over_batches(lambda batch: model(batch, generator=generator)["loss"], x, batch_size)


def reconstruction_mse(model, x: torch.Tensor, batch_size: int = 500) -> float:
    """Mean squared error per pixel of ``model.decode(*encode)`` reconstructions of ``x`` (values in [0, 1])."""
    model.eval()

    def mse(batch: torch.Tensor) -> torch.Tensor:
        codes = model.encode(batch)
        x_hat = model.decode(*codes) if isinstance(codes, tuple) else model.decode(codes)
        return torch.nn.functional.mse_loss(x_hat, batch)

    return mean_over_batches(mse, x, batch_size)


def reconstruction_mse_on_test(model, limit: int | None = None) -> float:
    """:func:`reconstruction_mse` on the first ``limit`` embedded test digits."""
    return reconstruction_mse(model, embedded_digits("test", limit))


@torch.no_grad()
def encode_split(autoencoder, split: str, limit: int | None = None, batch_size: int = 500):
    """Codes of the embedded split: (N, 7, 7) for a VQ-VAE, (top (N, 4, 4), bottom (N, 7, 7)) for a VQ-VAE-2."""
    x = embedded_digits(split, limit)
    parts = [autoencoder.encode(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(p) for p in zip(*parts))
    return torch.cat(parts)


@torch.no_grad()
def code_histogram(model, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """How often each code of a VQ-VAE is used over images ``x`` (N, 1, 28, 28): (K,) long counts."""
    model.eval()
    return sum(code_counts(model.encode(chunk), model.num_embeddings) for chunk in x.split(batch_size))


def code_counts(codes: torch.Tensor, n_codes: int) -> torch.Tensor:
    """How often each of ``n_codes`` codes occurs in ``codes`` (any shape, long): (n_codes,) long."""
    return torch.bincount(codes.flatten().cpu(), minlength=n_codes)


def usage_perplexity(counts: torch.Tensor) -> float:
    """exp(entropy) of the code usage ``counts`` (K,): 1 if one code is used, K if all equally."""
    p = counts.float() / counts.sum()
    p = p[p > 0]
    return torch.exp(-(p * p.log()).sum()).item()


def prior_bits_per_code(prior, autoencoder, limit: int | None = None) -> float:
    """Test NLL under ``prior`` of the codes of the first ``limit`` test digits, in bits per code."""
    codes = encode_split(autoencoder, "test", limit)
    prior.eval()
    with torch.no_grad():
        return nats_to_bits(prior.nll(codes).item())


def prior2_bits_per_image(priors, autoencoder, limit: int | None = None) -> float:
    """Test -log2 p(top, bottom) per image, in bits (16 top codes + 49 bottom codes)."""
    top, bottom = encode_split(autoencoder, "test", limit)
    priors.eval()
    with torch.no_grad():
        return priors.bits_per_image(top, bottom).item()
