"""Temperature explorers: samples drawn once at a handful of temperatures, a slider that picks among them.

Sampling an autoregressive model is slow (one network pass per pixel or byte), far slower than the
0.2 s an explorer may take to redraw; so every sampler runs once per temperature up front (with a
progress bar) and the slider only chooses which precomputed set to draw. The noise is shared across
temperatures: the same uniform numbers (PixelCNN), the same generator seed (GPT), the same Gaussian
draw scaled by T (flows), so that moving the slider shows the effect of the temperature alone.

- :func:`precompute_samples`: ``{T: sample(T)}`` with a tqdm bar;
- :func:`draw_image_samples`, :func:`draw_text_sample`: one frame (a Figure);
- :func:`temperature_explorer` and the three model-specific ones: :func:`flow_temperature_explorer`
  (RealNVP, Glow), :func:`pixelcnn_temperature_explorer`, :func:`gpt_temperature_explorer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from arflow.models.sampling import adjust_logits, check_temperature
from arflow.utils import to_numpy
from arflow.viz.palette import BLUE, ORANGE

FLOW_TEMPERATURES = (0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1)
PIXELCNN_TEMPERATURES = (0.6, 0.8, 1.0, 1.2)
GPT_TEMPERATURES = (0.3, 0.5, 0.8, 1.0, 1.3, 2.0)


def precompute_samples(sample: Callable[[float], object], temperatures: Sequence[float],
                       desc: str = "sampling") -> dict[float, object]:
    """``{T: sample(T)}`` for every temperature T (> 0, no repeats), in the given order, with a progress bar."""
    from tqdm.auto import tqdm

    temperatures = [float(t) for t in temperatures]
    if not temperatures:
        raise ValueError("give at least one temperature")
    if len(set(temperatures)) != len(temperatures):
        raise ValueError(f"temperatures must not repeat, got {temperatures}")
    for t in temperatures:
        check_temperature(t)
    return {t: sample(t) for t in tqdm(temperatures, desc=desc)}


def mosaic(images, nrow: int, pad: int = 1) -> np.ndarray:
    """Images (N, 1, H, W) or (N, H, W) in [0, 1] -> one (nrow (H + pad) - pad, ncol (W + pad) - pad) array,
    row by row, with white (1.0) gaps: one ``imshow`` draws much faster than one axes per image."""
    images = to_numpy(images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"images must be (N, 1, H, W) or (N, H, W), got shape {images.shape}")
    n, H, W = images.shape
    ncol = math.ceil(n / nrow)
    out = np.ones((nrow * (H + pad) - pad, ncol * (W + pad) - pad), dtype=np.float32)
    for k in range(n):
        r, c = divmod(k, ncol)
        out[r * (H + pad):r * (H + pad) + H, c * (W + pad):c * (W + pad) + W] = images[k]
    return out


def draw_image_samples(samples: dict, temperature: float, title: str = "samples", nrow: int = 2):
    """One frame: the precomputed image samples (N, 1, H, W) at ``temperature`` (a key of ``samples``)."""
    if temperature not in samples:
        raise KeyError(f"no samples precomputed at T = {temperature}; have {sorted(samples)}")
    images = samples[temperature]
    grid = mosaic(images, nrow)
    lines = [title, f"temperature T = {temperature:g} ({len(images)} samples)"]
    width = max(0.03 * grid.shape[1], 0.075 * max(map(len, lines))) + 0.3  # room for the title
    fig, ax = plt.subplots(figsize=(width, 0.03 * grid.shape[0] + 0.8))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title("\n".join(lines), fontsize=10)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.5 / (0.03 * grid.shape[0] + 0.8))
    return fig


def temperature_explorer(samples: dict, draw: Callable[..., object], description: str = "temperature T"):
    """A slider over the temperatures of ``samples`` (``{T: ...}``); ``draw(temperature=T)`` draws one frame.

    Starts at T = 1 if it was precomputed, else at the temperature nearest to it. The explorer keeps
    the precomputed sets as ``.samples``.
    """
    import ipywidgets as widgets

    from arflow.viz.explorer import explorer

    temperatures = list(samples)
    start = min(temperatures, key=lambda t: abs(t - 1.0))
    slider = widgets.SelectionSlider(options=[(f"{t:g}", t) for t in temperatures], value=start,
                                     description=description, continuous_update=False)
    box = explorer(draw, temperature=slider)
    box.samples = samples
    return box


# ----------------------------------------------------------------------------- flows: one pass per temperature
def flow_samples(flow, temperatures: Sequence[float] = FLOW_TEMPERATURES, n: int = 16,
                 seed: int = 0) -> dict[float, torch.Tensor]:
    """``{T: flow.decode(T * eps)}`` for one fixed Gaussian draw ``eps`` (n, D): each column of the
    explorer is the same latent direction, pulled towards the mode as T shrinks. Images (n, C, H, W)."""
    eps = torch.randn(n, flow.n_dims, generator=torch.Generator().manual_seed(seed))
    device = next(flow.parameters()).device

    def sample(t: float) -> torch.Tensor:
        with torch.no_grad():
            return flow.decode((t * eps).to(device)).clamp(0, 1).cpu()

    return precompute_samples(sample, temperatures, desc=f"{type(flow).__name__} samples")


def flow_temperature_explorer(flow, temperatures: Sequence[float] = FLOW_TEMPERATURES, n: int = 16,
                              seed: int = 0):
    """Samples of a flow (RealNVP, Glow) with z ~ N(0, T^2 I), one slider over T; see :func:`flow_samples`."""
    samples = flow_samples(flow, temperatures, n, seed)
    name = type(flow).__name__
    return temperature_explorer(samples, lambda temperature: draw_image_samples(
        samples, temperature, f"{name}: x = f⁻¹(T·ε), the same ε for every T", nrow=2))


# ----------------------------------------------------------------------------- PixelCNN: shared uniforms
def pixelcnn_samples(model, temperatures: Sequence[float] = PIXELCNN_TEMPERATURES, n: int = 8,
                     image_size=(28, 28), labels: torch.Tensor | None = None,
                     seed: int = 0) -> dict[float, torch.Tensor]:
    """``{T: model.sample(n, image_size, temperature=T, uniforms=u)}`` with the same uniforms ``u`` (n, H, W)
    for every T (inverse-CDF sampling): the differences come from the temperature alone.

    All temperatures are drawn in one batch (a temperature per image): the sampler's cost is mostly its
    pixel-by-pixel loop, so one pass over len(temperatures) * n images costs little more than one over n.
    """
    H, W = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    u = torch.rand(n, H, W, generator=torch.Generator().manual_seed(seed))
    per_image = torch.tensor([float(t) for t in temperatures], dtype=torch.float64).repeat_interleave(n)
    batch_labels = None if labels is None else labels.repeat(len(temperatures))
    images = model.sample(len(per_image), (H, W), labels=batch_labels, uniforms=u.repeat(len(temperatures), 1, 1),
                          temperature=per_image).cpu()
    return dict(zip(temperatures, images.split(n)))


def pixelcnn_temperature_explorer(model, temperatures: Sequence[float] = PIXELCNN_TEMPERATURES, n: int = 8,
                                  labels: torch.Tensor | None = None, seed: int = 0):
    """Gated PixelCNN samples at a few temperatures (softmax of logits / T per pixel), one slider over T."""
    samples = pixelcnn_samples(model, temperatures, n, labels=labels, seed=seed)
    return temperature_explorer(samples, lambda temperature: draw_image_samples(
        samples, temperature, "Gated PixelCNN, the same uniforms for every T", nrow=1 if n <= 8 else 2))


# ----------------------------------------------------------------------------- GPT: text and the next byte
def gpt_samples(gpt, prompt: str, n_new: int, temperatures: Sequence[float] = GPT_TEMPERATURES,
                seed: int = 0) -> dict[float, dict]:
    """``{T: {"text": continuation, "probs": (256,) next-byte distribution after the prompt at T}}``.

    The text is ``gpt.sample`` with a generator seeded ``seed`` at every T; the distribution is
    softmax(:func:`~arflow.models.sampling.adjust_logits` (logits, T)) of the first new byte.
    """
    from arflow.data.text_corpus import decode, encode

    tokens = encode(prompt)[None]
    with torch.no_grad():
        logits = gpt(tokens[:, -gpt.block_size:].to(gpt.pos_emb.device))[:, -1].cpu()  # (1, 256)

    def sample(t: float) -> dict:
        out = gpt.sample(tokens, n_new, temperature=t, generator=torch.Generator().manual_seed(seed))
        probs = torch.softmax(adjust_logits(logits, t), dim=-1)[0]
        return {"text": decode(out[0, tokens.shape[1]:].cpu()), "probs": probs}

    return precompute_samples(sample, temperatures, desc="GPT samples")


def _printable(byte: int) -> str:
    return {32: "␣", 10: "⏎", 9: "⇥"}.get(byte, chr(byte) if 32 < byte < 127 else f"\\x{byte:02x}")


def draw_text_sample(samples: dict, temperature: float, prompt: str = "", top: int = 12, width: int = 72,
                     max_lines: int = 14):
    """One frame: the continuation sampled at ``temperature`` (left) and the next-byte distribution
    after the prompt at that temperature (right, its ``top`` most likely bytes)."""
    if temperature not in samples:
        raise KeyError(f"no samples precomputed at T = {temperature}; have {sorted(samples)}")
    text, probs = samples[temperature]["text"], samples[temperature]["probs"]
    text = "".join(ch if ch == "\n" or ch.isprintable() else "·" for ch in text.replace("\t", "    "))
    lines = []
    for raw in (prompt + text).split("\n"):
        lines += [raw[k:k + width] for k in range(0, max(len(raw), 1), width)]
    shown = "\n".join(lines[:max_lines]) + ("\n…" if len(lines) > max_lines else "")
    fig, (ax_text, ax_bar) = plt.subplots(1, 2, figsize=(9.0, 3.4), gridspec_kw={"width_ratios": [2.6, 1]})
    ax_text.text(0, 1, shown, family="monospace", fontsize=8, va="top", ha="left", parse_math=False,
                 transform=ax_text.transAxes)
    ax_text.set_axis_off()
    ax_text.set_title(f"continuation of {prompt!r} sampled at T = {temperature:g}", fontsize=10, loc="left")
    values, index = torch.topk(probs, top)
    entropy_bits = float(-(probs * torch.log2(probs.clamp_min(1e-30))).sum())
    ax_bar.barh(range(top), to_numpy(values), color=[ORANGE] + [BLUE] * (top - 1))
    ax_bar.set_yticks(range(top), [_printable(int(i)) for i in index], family="monospace", fontsize=8)
    ax_bar.invert_yaxis()
    ax_bar.set_xlim(0, 1)
    ax_bar.set_xlabel("probability")
    ax_bar.set_title(f"next byte after the prompt\nentropy {entropy_bits:.2f} bits", fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.98, bottom=0.14, top=0.86, wspace=0.12)
    return fig


def gpt_temperature_explorer(gpt, prompt: str = "def ", n_new: int = 300,
                             temperatures: Sequence[float] = GPT_TEMPERATURES, seed: int = 0):
    """The byte-level GPT's continuation of ``prompt`` and its next-byte distribution, one slider over T."""
    samples = gpt_samples(gpt, prompt, n_new, temperatures, seed)
    return temperature_explorer(samples, lambda temperature: draw_text_sample(samples, temperature, prompt))
