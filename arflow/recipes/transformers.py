"""Checkpoints of lectures 05 and 06: the byte-level GPT, the image transformers, the dVAE and mini DALL-E."""

from __future__ import annotations

import math

import torch

from arflow import text_corpus
from arflow.checkpoints import Recipe, load_checkpoint, register
from arflow.data import make_loader, mnist, to_float
from arflow.models.dalle import PHRASINGS, MiniDalle, caption_dataset
from arflow.models.dvae import DiscreteVAE, temperature_schedule
from arflow.models.gpt import GPT
from arflow.models.image_transformer import ImageTransformer, prepare_images
from arflow.training import fit
from arflow.utils import LN2


def _cosine(optimizer: torch.optim.Optimizer, steps: int, warmup: int = 50):
    """Linear warm-up then cosine decay to 10 % of the learning rate."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --------------------------------------------------------------------------- byte-level GPT
class RandomWindows:
    """An endless stream of batches (B, T + 1) of random windows of a token stream (reproducible)."""

    def __init__(self, tokens: torch.Tensor, length: int, batch_size: int, seed: int = 0):
        self.tokens, self.length, self.batch_size = tokens, length, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        while True:
            yield text_corpus.random_windows(self.tokens, self.length, self.batch_size, self.generator)


def gpt_bits_per_byte(model: GPT, limit: int | None = None, batch: int = 64) -> float:
    """Test bits per byte on the first ``limit`` non-overlapping windows of the held-out modules."""
    data = text_corpus.windows(text_corpus.corpus_tokens("test"), model.block_size + 1, limit)
    device = next(model.parameters()).device
    total = 0.0
    with torch.no_grad():
        for chunk in data.split(batch):
            total += model.nll(chunk.to(device)).item() * len(chunk)
    return total / len(data) / LN2


def _train_gpt(model: GPT, config: dict, fast: bool):
    steps = 20 if fast else config["steps"]
    stream = RandomWindows(text_corpus.corpus_tokens("train"), model.block_size + 1, config["batch_size"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=0.01)
    return fit(model, lambda m, x: m.nll(x), stream, steps, optimizer=optimizer,
               scheduler=_cosine(optimizer, steps, warmup=min(50, steps)), clip_grad=1.0,
               eval_fn=lambda m: gpt_bits_per_byte(m, 8 if fast else 100), eval_every=0 if fast else 200,
               desc="byte GPT")


register(Recipe(
    name="gpt_bytes",
    build=lambda c: GPT(256, c["block_size"], c["d_model"], c["n_heads"], c["n_layers"]),
    train=_train_gpt,
    evaluate=lambda m, limit: gpt_bits_per_byte(m, limit),
    config={"block_size": 128, "d_model": 96, "n_heads": 4, "n_layers": 3, "steps": 1400, "batch_size": 16,
            "lr": 2e-3},
    metric="test bits/byte",
    data=(f"Python standard-library source: train {', '.join(text_corpus.TRAIN_MODULES)}; test (held out) "
          f"{', '.join(text_corpus.TEST_MODULES)}; windows of 129 bytes"),
    # The standard library's text changes a little between Python versions (see text_corpus).
    tolerance=0.05,
))


# --------------------------------------------------------------------------- image transformers
IMAGE_DATA = ("embedded MNIST subset (4,000 train / 1,000 test), average-pooled to 14x14 and quantized "
              "to 16 intensity levels")


def image_tokens(split: str, config: dict, limit: int | None = None) -> torch.Tensor:
    images, _ = mnist(split, limit=limit)
    return prepare_images(images, config["size"], config["levels"])


def imgtf_bits_per_dim(model: ImageTransformer, config: dict, limit: int | None = None) -> float:
    tokens = image_tokens("test", config, limit)
    device = next(model.parameters()).device
    total = 0.0
    with torch.no_grad():
        for chunk in tokens.split(100):
            total += model.bits_per_dim(chunk.to(device)).item() * len(chunk)
    return total / len(tokens)


def _build_imgtf(c: dict) -> ImageTransformer:
    return ImageTransformer((c["size"], c["size"]), c["levels"], c["d_model"], c["n_heads"], c["n_layers"],
                            attention=c["attention"], stride=c.get("stride"))


def _train_imgtf(model: ImageTransformer, config: dict, fast: bool):
    steps = 10 if fast else config["steps"]
    tokens = image_tokens("train", config, 64 if fast else None)
    loader = make_loader(tokens, batch_size=config["batch_size"], shuffle=True, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=0.01)
    return fit(model, lambda m, batch: m.bits_per_dim(batch[0]), loader, steps, optimizer=optimizer,
               scheduler=_cosine(optimizer, steps, warmup=min(30, steps)), clip_grad=1.0,
               eval_fn=lambda m: imgtf_bits_per_dim(m, config, 20 if fast else 200),
               eval_every=0 if fast else 100, desc=f"image transformer ({config['attention']})")


IMGTF_BASE = {"size": 14, "levels": 16, "d_model": 64, "n_heads": 4, "n_layers": 3, "steps": 500,
              "batch_size": 16, "lr": 2e-3}
for _name, _attention in (("imgtf_dense", "dense"), ("imgtf_sparse", "strided")):
    register(Recipe(
        name=_name,
        build=_build_imgtf,
        train=_train_imgtf,
        evaluate=lambda m, limit, _c={**IMGTF_BASE, "attention": _attention}: imgtf_bits_per_dim(m, _c, limit),
        config={**IMGTF_BASE, "attention": _attention, **({"stride": 14} if _attention == "strided" else {})},
        metric="test bits/dim (14x14 pixels, 16 levels)",
        data=IMAGE_DATA,
    ))


# --------------------------------------------------------------------------- DALL-E in miniature
def dvae_mse(model: DiscreteVAE, limit: int | None = None) -> float:
    """Test mean squared error per pixel (intensities in [0, 1]) of decode(encode(x)): hard tokens, no noise."""
    x = to_float(mnist("test", limit=limit)[0])
    device = next(model.parameters()).device
    total = 0.0
    with torch.no_grad():
        for chunk in x.split(250):
            chunk = chunk.to(device)
            total += ((model.decode(model.encode(chunk)) - chunk) ** 2).sum().item()
    return total / x.numel()


def _train_dvae(model: DiscreteVAE, config: dict, fast: bool):
    steps = 10 if fast else config["steps"]
    x = to_float(mnist("train", limit=64 if fast else None)[0])
    loader = make_loader(x, batch_size=config["batch_size"], shuffle=True, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    state = {"step": 0}

    def dvae_loss(m: DiscreteVAE, batch) -> torch.Tensor:
        tau = temperature_schedule(state["step"], steps, 1.0, config["tau_end"])  # annealed temperature
        state["step"] += 1
        return m.loss(batch[0], tau, config["beta"]) / (28 * 28)  # nats per pixel: a well-scaled loss

    return fit(model, dvae_loss, loader, steps, optimizer=optimizer,
               eval_fn=lambda m: dvae_mse(m, 50 if fast else 200), eval_every=0 if fast else 200,
               desc="dVAE")


register(Recipe(
    name="dvae_mnist",
    build=lambda c: DiscreteVAE(c["n_tokens"], c["hidden"]),
    train=_train_dvae,
    evaluate=lambda m, limit: dvae_mse(m, limit),
    config={"n_tokens": 32, "hidden": 32, "steps": 800, "batch_size": 64, "lr": 2e-3, "beta": 0.1,
            "tau_end": 1.0 / 16},
    metric="test reconstruction MSE per pixel (intensities in [0, 1], argmax tokens)",
))


def dalle_data(split: str, dvae: DiscreteVAE, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(image tokens (N, 7, 7) from the dVAE, labels (N,)) of an MNIST split."""
    images, labels = mnist(split, limit=limit)
    with torch.no_grad():
        tokens = torch.cat([dvae.encode(chunk) for chunk in to_float(images).split(500)])
    return tokens, torch.as_tensor(labels.copy()).long()


def dalle_image_bits(model: MiniDalle, limit: int | None = None) -> float:
    """Test negative log-likelihood of the image tokens given the caption, bits per image token.
    Test example i is captioned in phrasing i mod 4 (deterministic)."""
    dvae = load_checkpoint("dvae_mnist")
    tokens, labels = dalle_data("test", dvae, limit)
    text = caption_dataset(labels, text_len=model.text_len)
    device = next(model.parameters()).device
    total = 0.0
    with torch.no_grad():
        for t, im in zip(text.split(250), tokens.split(250)):
            total += model.losses(t.to(device), im.to(device))["image"].item() * len(t)
    return total / len(tokens) / LN2


def _train_dalle(model: MiniDalle, config: dict, fast: bool):
    steps = 10 if fast else config["steps"]
    dvae = load_checkpoint("dvae_mnist")
    tokens, labels = dalle_data("train", dvae, 64 if fast else None)
    loader = make_loader(tokens, labels, batch_size=config["batch_size"], shuffle=True, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=0.01)
    generator = torch.Generator().manual_seed(0)

    def dalle_loss(m: MiniDalle, batch) -> torch.Tensor:
        image, label = batch
        phrasing = torch.randint(0, len(PHRASINGS), (len(label),), generator=generator)  # a new caption each time
        return m.losses(caption_dataset(label, phrasing, m.text_len), image)["loss"]

    return fit(model, dalle_loss, loader, steps, optimizer=optimizer,
               scheduler=_cosine(optimizer, steps, warmup=min(30, steps)), clip_grad=1.0,
               eval_fn=lambda m: dalle_image_bits(m, 20 if fast else 200), eval_every=0 if fast else 200,
               desc="mini DALL-E")


register(Recipe(
    name="dalle_mnist",
    build=lambda c: MiniDalle(c["text_len"], image_vocab=c["image_vocab"], grid=7, d_model=c["d_model"],
                              n_heads=c["n_heads"], n_layers=c["n_layers"]),
    train=_train_dalle,
    evaluate=lambda m, limit: dalle_image_bits(m, limit),
    config={"text_len": 20, "image_vocab": 32, "d_model": 64, "n_heads": 4, "n_layers": 4, "steps": 800,
            "batch_size": 32, "lr": 2e-3},
    metric="test bits per image token given the caption",
    data="embedded MNIST subset tokenized by the shipped dvae_mnist checkpoint (retrain this after it); "
         "captions from the labels in 4 phrasings",
))
