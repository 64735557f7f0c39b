"""What a generative checkpoint's samples show, as numbers its manifest records (``"samples"``).

Each judge draws a fixed number of samples from fixed seeds and returns a flat dict of numbers,
so ``tests/test_checkpoints.py`` can draw them again and compare. ``classifier`` is the shipped
digit classifier (the recipes pass :func:`arflow.train.checkpoints.digit_classifier`):

- image models: the digit classifier's verdict (:func:`~arflow.evaluate.samples.score_digits`):
  ``confident`` (fraction classified with p >= 0.9), ``spread_bits`` (entropy of the predicted
  classes, 3.32 at most) and, for models given a label or a caption, ``as_labelled``;
- VQ-VAE-2: whether the top codes carry the digit's identity and the bottom codes its stroke
  (:func:`judge_top_swap`);
- WaveNet: whether its samples keep a note's period (:func:`judge_wavenet_period`).
"""

from __future__ import annotations

import numpy as np
import torch

from arflow.data import mnist, to_float
from arflow.data.signals import SAMPLE_RATE, melody_dataset, mu_law_decode
from arflow.evaluate.samples import score_digits
from arflow.evaluate.strokes import slant, stroke_thickness


def _scores(classifier, images: torch.Tensor, labels=None) -> dict:
    """The classifier's scores of images (N, 1, 28, 28), flat for a manifest (no ``as_labelled`` without labels)."""
    score = score_digits(classifier, images.detach().float().clamp(0, 1), labels)
    return {name: value for name, value in score.as_dict().items() if value is not None}


@torch.no_grad()
def judge_flow(model, classifier, temperature: float = 0.7, n: int = 100, seed: int = 0) -> dict:
    """n flow samples at ``temperature`` (z ~ N(0, T^2 I)), scored by the classifier."""
    images = model.sample(n, temperature=temperature, generator=torch.Generator().manual_seed(seed))
    return {"temperature": temperature, **_scores(classifier, images)}


@torch.no_grad()
def judge_pixelcnn(model, classifier, per_class: int = 10, seed: int = 0, temperature: float = 1.0) -> dict:
    """10 * ``per_class`` samples of a Gated PixelCNN on pixels; a class-conditional model draws
    ``per_class`` of each digit and is also scored on ``as_labelled``."""
    n = 10 * per_class
    labels = torch.arange(10).repeat_interleave(per_class) if model.n_classes else None
    images = model.sample(n, (28, 28), labels=labels, generator=torch.Generator().manual_seed(seed),
                          temperature=temperature)
    return {"temperature": temperature, **_scores(classifier, images, labels)}


@torch.no_grad()
def judge_code_prior(prior, autoencoder, classifier, n: int = 50, seed: int = 0) -> dict:
    """n codes grids from a VQ-VAE prior (one grid, or top then bottom), decoded and scored."""
    generator = torch.Generator().manual_seed(seed)
    if hasattr(prior, "num_embeddings_top"):
        images = autoencoder.decode(*prior.sample(n, generator=generator))
    else:
        images = autoencoder.decode(prior.sample(n, (7, 7), generator=generator))
    return _scores(classifier, images)


@torch.no_grad()
def judge_dalle(model, dvae, classifier, per_caption: int = 10, temperature: float = 1.0, seed: int = 0) -> dict:
    """Images from the ten captions "a handwritten zero" .. "a handwritten nine", scored on as_labelled."""
    from arflow.models.dalle import make_caption

    captions = [make_caption(digit, 0) for digit in range(10)]
    images = model.images_from_captions(captions, dvae, n_per_caption=per_caption, temperature=temperature,
                                        seed=seed)
    return {"temperature": temperature, **_scores(classifier, images, torch.arange(10).repeat_interleave(per_caption))}


@torch.no_grad()
def top_swap(vqvae2, classifier, x: torch.Tensor, labels: torch.Tensor, seed: int = 1) -> dict:
    """Decode every digit's **top** codes with another digit's **bottom** codes (pairs of different classes).

    Returns the number of pairs, the fractions classified as the top's digit and as the bottom's, and
    which source the stroke style follows: the correlation, over the pairs, of the decoded digit's
    stroke thickness (and slant, :mod:`arflow.evaluate.strokes`) with that of the top's digit and
    with that of the bottom's digit (``thickness_follows_top`` ... ``slant_follows_bottom``).
    """
    labels = torch.as_tensor(labels).long()
    other = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    differ = labels != labels[other]
    top, bottom = vqvae2.encode(x)
    swapped = vqvae2.decode(top[differ], bottom[other][differ])
    predicted = classifier.probabilities(swapped).argmax(-1)
    result = {"pairs": int(differ.sum()),
              "follows_top": float((predicted == labels[differ]).double().mean()),
              "follows_bottom": float((predicted == labels[other][differ]).double().mean())}
    for name, measure in (("thickness", stroke_thickness), ("slant", slant)):
        decoded, top_source, bottom_source = measure(swapped), measure(x[differ]), measure(x[other][differ])
        result[f"{name}_follows_top"] = float(np.corrcoef(decoded, top_source)[0, 1])
        result[f"{name}_follows_bottom"] = float(np.corrcoef(decoded, bottom_source)[0, 1])
    return result


def judge_top_swap(vqvae2, classifier, limit: int = 500) -> dict:
    """:func:`top_swap` on the first ``limit`` embedded test digits."""
    images, labels = mnist("test", source="embedded", limit=limit)
    return top_swap(vqvae2, classifier, to_float(images), torch.as_tensor(np.array(labels)))


def periodicity(wave, lags=range(8, 80)) -> tuple[float, int]:
    """Peak autocorrelation of a waveform (T,) over ``lags`` (samples), and the lag of the peak.

    Near 1 for a steady note (its period among the lags), near 0 for noise. Lags 8-80 at 4 kHz are
    2-20 ms: the melody's periods are 10-40 samples.
    """
    x = np.asarray(wave, dtype=np.float64)
    x = x - x.mean()
    energy = float((x * x).sum()) or 1e-12
    r = [float((x[:-k] * x[k:]).sum()) / energy for k in lags]
    best = int(np.argmax(r))
    return r[best], list(lags)[best]


def window_periodicity(indices: torch.Tensor, window: int = 200) -> np.ndarray:
    """mu-law indices (T,) -> the periodicity of each whole window of ``window`` samples."""
    wave = mu_law_decode(indices).numpy()
    return np.array([periodicity(wave[i:i + window])[0] for i in range(0, len(wave) - window + 1, window)])


@torch.no_grad()
def judge_wavenet_period(model, n_steps: int = 1600, starts=(3000, 9000, 15000, 21000), seed: int = 0,
                         temperature: float = 1.0, window: int = 200) -> dict:
    """Prime the WaveNet with the test melody at ``starts``, generate ``n_steps`` samples (0.4 s at 4 kHz)
    and measure the periodicity of every 200-sample window (50 ms), as the real continuation's.

    ``periodicity`` is the mean over windows and clips, ``last_window`` the mean of the last window
    (does the period survive to the end of the clip?), ``real`` the real continuation's mean.
    """
    test = melody_dataset(max(starts) + model.receptive_field + n_steps, seed=1)
    R = model.receptive_field
    prime = torch.stack([test[s:s + R] for s in starts])
    clips = model.generate(n_steps, prime, generator=torch.Generator().manual_seed(seed), temperature=temperature)
    generated = np.stack([window_periodicity(clip[R:], window) for clip in clips])
    real = np.stack([window_periodicity(test[s + R:s + R + n_steps], window) for s in starts])
    return {"temperature": temperature, "clips": len(starts), "seconds": n_steps / SAMPLE_RATE,
            "periodicity": float(generated.mean()), "last_window": float(generated[:, -1].mean()),
            "real": float(real.mean())}
