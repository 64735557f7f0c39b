"""Checkpoints of lectures 04 and 05: the byte-level GPT, the image transformers, the dVAE and mini DALL-E."""

from __future__ import annotations

import torch

from arflow.data import make_loader, mnist, text_corpus, to_float
from arflow.data.windows import RandomWindows
from arflow.evaluate.judges import judge_dalle
from arflow.evaluate.transformers import (
    dalle_data,
    dalle_image_bits,
    dvae_mse,
    gpt_bits_per_byte,
    image_tokens,
    imgtf_bits_per_dim,
)
from arflow.models.dalle import PHRASINGS, MiniDalle, caption_dataset
from arflow.models.dvae import DiscreteVAE, temperature_schedule
from arflow.models.gpt import GPT
from arflow.models.image_transformer import ImageTransformer
from arflow.train.checkpoints import digit_classifier
from arflow.train.loop import History, fit
from arflow.train.recipe import Recipe
from arflow.train.schedules import cosine


# --------------------------------------------------------------------------- byte-level GPT
def train_gpt(model: GPT, config: dict, inputs: dict, fast: bool) -> History:
    """AdamW, warm-up then cosine to 10 %, on random windows (block_size + 1 bytes) of the training text."""
    steps = 20 if fast else config["steps"]
    stream = RandomWindows(text_corpus.corpus_tokens("train"), model.block_size + 1, config["batch_size"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=0.01)
    return fit(model, lambda m, x: m.nll(x), stream, steps, optimizer=optimizer,
               scheduler=cosine(optimizer, steps, warmup=min(50, steps), floor=0.1), clip_grad=1.0,
               eval_fn=lambda m: gpt_bits_per_byte(m, 8 if fast else 100), eval_every=0 if fast else 200,
               desc="byte GPT")


GPT_BYTES = Recipe(
    name="gpt_bytes",
    build=lambda c: GPT(c["vocab_size"], c["block_size"], c["d_model"], c["n_heads"], c["n_layers"]),
    train=train_gpt,
    evaluate=lambda model, limit, inputs: gpt_bits_per_byte(model, limit),
    model_config={"vocab_size": 256, "block_size": 128, "d_model": 96, "n_heads": 4, "n_layers": 3},
    training_config={"steps": 1400, "batch_size": 16, "lr": 2e-3},
    metric="test bits/byte",
    data=(f"Python standard-library source: train {', '.join(text_corpus.TRAIN_MODULES)}; test (held out) "
          f"{', '.join(text_corpus.TEST_MODULES)}; windows of 129 bytes"),
    # The standard library's text changes a little between Python versions (see text_corpus).
    tolerance=0.05,
)


# --------------------------------------------------------------------------- image transformers
IMAGE_DATA = ("embedded MNIST subset (4,000 train / 500 test), average-pooled to 14x14 and quantized "
              "to 16 intensity levels")
IMGTF_MODEL = {"size": 14, "levels": 16, "d_model": 64, "n_heads": 4, "n_layers": 3}
IMGTF_TRAINING = {"steps": 500, "batch_size": 16, "lr": 2e-3}


def build_imgtf(c: dict) -> ImageTransformer:
    return ImageTransformer((c["size"], c["size"]), c["levels"], c["d_model"], c["n_heads"], c["n_layers"],
                            attention=c["attention"], stride=c.get("stride"))


def train_imgtf(model: ImageTransformer, config: dict, inputs: dict, fast: bool) -> History:
    steps = 10 if fast else config["steps"]
    tokens = image_tokens("train", model.image_size[0], model.levels, 64 if fast else None)
    loader = make_loader(tokens, batch_size=config["batch_size"], shuffle=True, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=0.01)
    return fit(model, lambda m, batch: m.nll_bits_per_dim(batch[0]), loader, steps, optimizer=optimizer,
               scheduler=cosine(optimizer, steps, warmup=min(30, steps), floor=0.1), clip_grad=1.0,
               eval_fn=lambda m: imgtf_bits_per_dim(m, 20 if fast else 200),
               eval_every=0 if fast else 100, desc=f"image transformer ({model.attention})")


def _image_transformer(name: str, attention: dict) -> Recipe:
    return Recipe(name=name, build=build_imgtf, train=train_imgtf,
                  evaluate=lambda model, limit, inputs: imgtf_bits_per_dim(model, limit),
                  model_config={**IMGTF_MODEL, **attention}, training_config=IMGTF_TRAINING,
                  metric="test bits/dim (14x14 pixels, 16 levels)", data=IMAGE_DATA)


IMGTF_DENSE = _image_transformer("imgtf_dense", {"attention": "dense"})
IMGTF_SPARSE = _image_transformer("imgtf_sparse", {"attention": "strided", "stride": 14})


# --------------------------------------------------------------------------- DALL-E in miniature
def train_dvae(model: DiscreteVAE, config: dict, inputs: dict, fast: bool) -> History:
    """Adam on the negative ELBO (nats per pixel) with the Gumbel-softmax temperature annealed."""
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


DVAE = Recipe(
    name="dvae_mnist",
    build=lambda c: DiscreteVAE(c["n_tokens"], c["hidden"]),
    train=train_dvae,
    evaluate=lambda model, limit, inputs: dvae_mse(model, limit),
    model_config={"n_tokens": 32, "hidden": 32},
    training_config={"steps": 800, "batch_size": 64, "lr": 2e-3, "beta": 0.1, "tau_end": 1.0 / 16},
    metric="test reconstruction MSE per pixel (intensities in [0, 1], argmax tokens)",
)


def train_dalle(model: MiniDalle, config: dict, inputs: dict, fast: bool) -> History:
    """AdamW on the caption and image tokens of ``inputs["dvae_mnist"]``, a new phrasing each time."""
    steps = 10 if fast else config["steps"]
    dvae = inputs["dvae_mnist"]
    tokens, labels = dalle_data("train", dvae, 64 if fast else None)
    loader = make_loader(tokens, labels, batch_size=config["batch_size"], shuffle=True, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=0.01)
    generator = torch.Generator().manual_seed(0)

    def dalle_loss(m: MiniDalle, batch) -> torch.Tensor:
        image, label = batch
        phrasing = torch.randint(0, len(PHRASINGS), (len(label),), generator=generator)  # a new caption each time
        return m.losses(caption_dataset(label, phrasing, m.text_len), image)["loss"]

    return fit(model, dalle_loss, loader, steps, optimizer=optimizer,
               scheduler=cosine(optimizer, steps, warmup=min(30, steps), floor=0.1), clip_grad=1.0,
               eval_fn=lambda m: dalle_image_bits(m, dvae, 20 if fast else 200), eval_every=0 if fast else 200,
               desc="mini DALL-E")


DALLE = Recipe(
    name="dalle_mnist",
    build=lambda c: MiniDalle(c["text_len"], image_vocab=c["image_vocab"], grid=c["grid"], d_model=c["d_model"],
                              n_heads=c["n_heads"], n_layers=c["n_layers"]),
    train=train_dalle,
    evaluate=lambda model, limit, inputs: dalle_image_bits(model, inputs["dvae_mnist"], limit),
    judge=lambda model, inputs: judge_dalle(model, inputs["dvae_mnist"], digit_classifier()),
    model_config={"text_len": 20, "image_vocab": 32, "grid": 7, "d_model": 64, "n_heads": 4, "n_layers": 4},
    training_config={"steps": 3000, "batch_size": 32, "lr": 2e-3},
    requires=("dvae_mnist",),
    metric="test bits per image token given the caption",
    data="embedded MNIST subset tokenized by dvae_mnist; captions from the labels in 4 phrasings",
)

RECIPES = [GPT_BYTES, IMGTF_DENSE, IMGTF_SPARSE, DVAE, DALLE]
