"""What every generative checkpoint's samples show, judged by the digit classifier (``digit_classifier``).

For each image model: how many samples, the fraction confidently a digit, the spread over the ten
classes (bits, 3.32 at most), and for models given a label or a caption the fraction classified
as it; real test digits and uniform noise give the scale. Checkpoints with a judge
(:mod:`arflow.evaluate.judges`) are scored by it, on the samples their manifests record. The
WaveNet and the byte-level GPT draw no digits and are not judged here. A second table swaps the
codes of the two VQ-VAE-2 autoencoders (:func:`~arflow.evaluate.judges.judge_top_swap`): which
level the swapped digit's class, stroke thickness and slant follow.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from arflow.data import mnist, to_float
from arflow.evaluate.judges import judge_code_prior, judge_dalle, judge_flow, judge_pixelcnn, judge_top_swap
from arflow.evaluate.samples import score_digits
from arflow.models.image_transformer import tokens_to_images
from arflow.train.checkpoints import digit_classifier, load_checkpoint

# classifier -> {"n", "confident", "spread_bits"[, "as_labelled"]}: the checkpoints with a judge use it
# (the same samples as their manifests' "samples"); the others draw here with a fixed seed
Row = Callable[[torch.nn.Module], dict]


def _drawn(draw: Callable[[torch.Generator], torch.Tensor]) -> Row:
    """A row for images (N, 1, 28, 28) drawn with the generator of seed 0, scored without labels."""
    def row(classifier):
        images = draw(torch.Generator().manual_seed(0))
        return score_digits(classifier, images.cpu().float().clamp(0, 1)).as_dict()
    return row


def _image_transformer(name: str, n: int = 16) -> Row:
    def draw(generator):
        small = tokens_to_images(load_checkpoint(name).sample(n, generator=generator), 16)  # (n, 1, 14, 14)
        return F.interpolate(small, size=(28, 28), mode="bilinear")
    return _drawn(draw)


def _vae(name: str, n: int = 50) -> Row:
    return _drawn(lambda generator: load_checkpoint(name).sample(n, generator=generator))


def _flow(name: str, temperature: float) -> Row:
    return lambda classifier: judge_flow(load_checkpoint(name), classifier, temperature=temperature)


def _code_prior(prior: str, autoencoder: str) -> Row:
    return lambda classifier: judge_code_prior(load_checkpoint(prior), load_checkpoint(autoencoder), classifier)


ROWS: dict[str, Row] = {
    "real test digits (scale)": _drawn(lambda g: to_float(mnist("test", source="embedded", limit=100)[0])),
    "uniform noise (scale)": _drawn(lambda g: torch.rand(100, 1, 28, 28, generator=g)),
    "realnvp_mnist T=0.7": _flow("realnvp_mnist", 0.7),
    "realnvp_mnist T=1": _flow("realnvp_mnist", 1.0),
    "glow_mnist T=0.7": _flow("glow_mnist", 0.7),
    "glow_mnist T=1": _flow("glow_mnist", 1.0),
    "realnvp_mnist_vd T=0.7": _flow("realnvp_mnist_vd", 0.7),
    "glow_mnist_vd T=0.7": _flow("glow_mnist_vd", 0.7),
    "gated_pixelcnn_mnist": lambda c: judge_pixelcnn(load_checkpoint("gated_pixelcnn_mnist"), c),
    "gated_pixelcnn_mnist_cond": lambda c: judge_pixelcnn(load_checkpoint("gated_pixelcnn_mnist_cond"), c),
    "prior_vqvae_mnist + vqvae": _code_prior("prior_vqvae_mnist", "vqvae_mnist"),
    "prior_vqvae2_mnist + vqvae2": _code_prior("prior_vqvae2_mnist", "vqvae2_mnist"),
    "dalle_mnist (10 captions)": lambda c: judge_dalle(load_checkpoint("dalle_mnist"), load_checkpoint("dvae_mnist"),
                                                       c),
    "imgtf_dense (14x14)": _image_transformer("imgtf_dense"),
    "imgtf_sparse (14x14)": _image_transformer("imgtf_sparse"),
    "vae_factorized (binary)": _vae("vae_factorized"),
    "vae_pixelcnn (binary)": _vae("vae_pixelcnn"),
}


def judge_all(names: list[str] | None = None) -> list[dict]:
    """Score each row's samples (fixed seeds): a dict per row, with the seconds it took."""
    classifier = digit_classifier()
    rows = []
    for name, row in ROWS.items():
        if names is not None and name not in names:
            continue
        began = time.perf_counter()
        with torch.no_grad():
            score = row(classifier)
        rows.append({"model": name, "seconds": time.perf_counter() - began, **score})
    return rows


def run():
    yield (f"{'samples of':30s} {'n':>4s} {'confident':>9s} {'spread (bits)':>13s} {'as labelled':>11s} "
           f"{'sampling (s)':>12s}")
    for row in judge_all():
        labelled = f"{100 * row['as_labelled']:.0f}%" if row.get("as_labelled") is not None else "-"
        yield (f"{row['model']:30s} {row['n']:>4d} {100 * row['confident']:>8.0f}% {row['spread_bits']:>13.2f} "
               f"{labelled:>11s} {row['seconds']:>12.1f}")
    yield ""
    yield (f"{'VQ-VAE-2 top A + bottom B':30s} {'pairs':>5s} {'class: top/bottom':>17s} "
           f"{'thickness r: top/bottom':>23s} {'slant r: top/bottom':>19s}")
    classifier = digit_classifier()
    for name in ("vqvae2_mnist", "vqvae2_mnist_plain"):
        swap = judge_top_swap(load_checkpoint(name), classifier)
        classes = f"{100 * swap['follows_top']:.0f}% / {100 * swap['follows_bottom']:.0f}%"
        thickness = f"{swap['thickness_follows_top']:.2f} / {swap['thickness_follows_bottom']:.2f}"
        slant = f"{swap['slant_follows_top']:.2f} / {swap['slant_follows_bottom']:.2f}"
        yield f"{name:30s} {swap['pairs']:>5d} {classes:>17s} {thickness:>23s} {slant:>19s}"
