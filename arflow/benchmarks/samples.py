"""What every generative checkpoint's samples show, judged by the digit classifier (``digit_classifier``).

For each image model: how many samples, the fraction confidently a digit, the spread over the ten
classes (bits, 3.32 at most), and for models given a label or a caption the fraction classified
as it; real test digits and uniform noise give the scale. The WaveNet and the byte-level GPT
draw no digits and are not judged here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from arflow.data import mnist, to_float
from arflow.evaluate.samples import score_digits
from arflow.models.dalle import make_caption
from arflow.models.image_transformer import tokens_to_images
from arflow.train.checkpoints import load_checkpoint

Sampler = Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor | None]]


def _flow(name: str, temperature: float, n: int = 100) -> Sampler:
    def draw(generator):
        return load_checkpoint(name).sample(n, temperature=temperature, generator=generator).clamp(0, 1), None
    return draw


def _pixelcnn(n: int = 20) -> Sampler:
    return lambda generator: (load_checkpoint("gated_pixelcnn_mnist").sample(n, (28, 28), generator=generator), None)


def _pixelcnn_conditional(per_digit: int = 2) -> Sampler:
    def draw(generator):
        labels = torch.arange(10).repeat_interleave(per_digit)
        model = load_checkpoint("gated_pixelcnn_mnist_cond")
        return model.sample(len(labels), (28, 28), labels=labels, generator=generator), labels
    return draw


def _vqvae(n: int = 50) -> Sampler:
    def draw(generator):
        codes = load_checkpoint("prior_vqvae_mnist").sample(n, (7, 7), generator=generator)
        return load_checkpoint("vqvae_mnist").decode(codes).clamp(0, 1), None
    return draw


def _vqvae2(n: int = 50) -> Sampler:
    def draw(generator):
        top, bottom = load_checkpoint("prior_vqvae2_mnist").sample(n, generator=generator)
        return load_checkpoint("vqvae2_mnist").decode(top, bottom).clamp(0, 1), None
    return draw


def _dalle(per_caption: int = 4) -> Sampler:
    def draw(generator):
        captions = [make_caption(digit, 0) for digit in range(10)]
        seed = int(torch.randint(0, 2**31 - 1, (), generator=generator))
        images = load_checkpoint("dalle_mnist").images_from_captions(captions, load_checkpoint("dvae_mnist"),
                                                                    n_per_caption=per_caption, seed=seed)
        return images.clamp(0, 1), torch.arange(10).repeat_interleave(per_caption)
    return draw


def _image_transformer(name: str, n: int = 16) -> Sampler:
    def draw(generator):
        tokens = load_checkpoint(name).sample(n, generator=generator)
        small = tokens_to_images(tokens, 16)  # (n, 1, 14, 14)
        return F.interpolate(small, size=(28, 28), mode="bilinear").clamp(0, 1), None
    return draw


def _vae(name: str, n: int = 50) -> Sampler:
    return lambda generator: (load_checkpoint(name).sample(n, generator=generator).clamp(0, 1), None)


SAMPLERS: dict[str, Sampler] = {
    "real test digits (scale)": lambda g: (to_float(mnist("test", source="embedded", limit=100)[0]), None),
    "uniform noise (scale)": lambda g: (torch.rand(100, 1, 28, 28, generator=g), None),
    "realnvp_mnist T=0.7": _flow("realnvp_mnist", 0.7),
    "realnvp_mnist T=1": _flow("realnvp_mnist", 1.0),
    "glow_mnist T=0.7": _flow("glow_mnist", 0.7),
    "glow_mnist T=1": _flow("glow_mnist", 1.0),
    "gated_pixelcnn_mnist": _pixelcnn(),
    "gated_pixelcnn_mnist_cond": _pixelcnn_conditional(),
    "prior_vqvae_mnist + vqvae": _vqvae(),
    "prior_vqvae2_mnist + vqvae2": _vqvae2(),
    "dalle_mnist (10 captions)": _dalle(),
    "imgtf_dense (14x14)": _image_transformer("imgtf_dense"),
    "imgtf_sparse (14x14)": _image_transformer("imgtf_sparse"),
    "vae_factorized (binary)": _vae("vae_factorized"),
    "vae_pixelcnn (binary)": _vae("vae_pixelcnn"),
}


def judge_all(names: list[str] | None = None) -> list[dict]:
    """Sample each model (fixed seed) and score its samples: a row per model."""
    classifier = load_checkpoint("digit_classifier")
    rows = []
    for name, draw in SAMPLERS.items():
        if names is not None and name not in names:
            continue
        began = time.perf_counter()
        with torch.no_grad():
            images, labels = draw(torch.Generator().manual_seed(0))
        score = score_digits(classifier, images.cpu().float(), labels)
        rows.append({"model": name, "seconds": time.perf_counter() - began, **score.as_dict()})
    return rows


def run():
    yield (f"{'samples of':30s} {'n':>4s} {'confident':>9s} {'spread (bits)':>13s} {'as labelled':>11s} "
           f"{'sampling (s)':>12s}")
    for row in judge_all():
        labelled = "-" if row["as_labelled"] is None else f"{100 * row['as_labelled']:.0f}%"
        yield (f"{row['model']:30s} {row['n']:>4d} {100 * row['confident']:>8.0f}% {row['spread_bits']:>13.2f} "
               f"{labelled:>11s} {row['seconds']:>12.1f}")
