"""A 1-D signal for the WaveNet lecture, generated in code, and mu-law quantization.

Why synthetic: the course runs offline and ships no audio. :func:`melody` is a sequence of
short notes, each a harmonic tone (a fundamental plus overtones of random strengths) under an
attack-decay envelope, with a little vibrato and noise. It is not trivial to predict: the next
sample depends on the current note's period (10 to 40 samples, so a model needs a receptive
field of several periods), on its timbre, and on where the envelope is; the note changes at
random times. It is deterministic given its seed, so train and test signals are reproducible
(different seeds: the test melody is never seen in training).

mu-law (ITU-T G.711, as in WaveNet) compresses amplitudes in [-1, 1] logarithmically before
quantizing them to 256 levels, so quiet samples keep more resolution than loud ones.
"""

from __future__ import annotations

import math

import numpy as np
import torch

SAMPLE_RATE = 4000  # Hz; notes of 100-400 Hz have periods of 10-40 samples
SCALE = (0, 2, 4, 7, 9)  # a pentatonic scale, in semitones above the base note


def melody(n_samples: int, seed: int = 0, sample_rate: int = SAMPLE_RATE, note_seconds=(0.06, 0.16),
           noise: float = 0.0005) -> np.ndarray:
    """The synthetic melody: float32 (n_samples,) in [-1, 1], deterministic given ``seed``."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    rng = np.random.default_rng(seed)
    out = np.zeros(n_samples)
    start = 0
    while start < n_samples:
        length = int(rng.uniform(*note_seconds) * sample_rate)
        octave = rng.integers(0, 2)
        semitone = SCALE[rng.integers(len(SCALE))] + 12 * octave
        f0 = 110.0 * 2 ** (semitone / 12)  # 110 Hz .. about 370 Hz
        t = np.arange(length) / sample_rate
        vibrato = 0.004 * np.sin(2 * math.pi * rng.uniform(4, 7) * t)
        phase = 2 * math.pi * f0 * t * (1 + vibrato)
        harmonics = rng.uniform(0, 1, size=3) * np.array([1.0, 0.6, 0.35])
        tone = np.sin(phase) + sum(a * np.sin((h + 2) * phase + rng.uniform(0, 2 * math.pi))
                                   for h, a in enumerate(harmonics))
        envelope = np.minimum(1.0, t / 0.008) * np.exp(-t * rng.uniform(4, 14))
        note = rng.uniform(0.5, 0.9) * envelope * tone / (1 + harmonics.sum())
        end = min(n_samples, start + length)
        out[start:end] = note[: end - start]
        start = end
    out += noise * rng.standard_normal(n_samples)
    return np.clip(out, -1, 1).astype(np.float32)


def mu_law_encode(x, n_values: int = 256) -> torch.Tensor:
    """Amplitudes in [-1, 1] -> long indices in [0, n_values): mu-law compression, then uniform quantization."""
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.numel() and (x.min() < -1 or x.max() > 1):
        raise ValueError("mu-law expects amplitudes in [-1, 1]")
    mu = n_values - 1
    compressed = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return torch.round((compressed + 1) / 2 * mu).long()


def mu_law_decode(k, n_values: int = 256) -> torch.Tensor:
    """Long indices in [0, n_values) -> float32 amplitudes in [-1, 1] (inverse of mu_law_encode)."""
    k = torch.as_tensor(k)
    if k.dtype.is_floating_point:
        raise TypeError(f"mu_law_decode expects integer indices, got {k.dtype}")
    mu = n_values - 1
    compressed = 2 * k.double() / mu - 1
    return (torch.sign(compressed) * ((1 + mu) ** compressed.abs() - 1) / mu).float()


def melody_dataset(n_samples: int, seed: int, n_values: int = 256) -> torch.Tensor:
    """The melody of ``seed`` as mu-law indices (n_samples,) long."""
    return mu_law_encode(melody(n_samples, seed), n_values)
