"""Drawing from the categorical distributions that autoregressive models predict, one way for all samplers.

- :func:`adjust_logits`: temperature (< 1 sharper, > 1 flatter) and top-k truncation;
- :func:`draw_categorical`: a draw per row of logits (B, K) with ``torch.multinomial``, on the CPU
  so that a CPU ``generator`` gives the same samples on every device;
- :func:`inverse_cdf`: the index where the softmax's cumulative distribution first reaches a
  given uniform number per row. With the uniforms fixed in advance, two samplers that compute the
  same logits (a naive loop and a cached one) draw exactly the same values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def check_temperature(temperature: float | torch.Tensor, rows: int | None = None) -> None:
    """A temperature is a float (or 0-d tensor) > 0 or, where ``rows`` is given, a tensor (rows,) of values > 0."""
    if isinstance(temperature, torch.Tensor) and temperature.ndim > 0:
        if rows is None or temperature.shape != (rows,) or not bool((temperature > 0).all()):
            want = "a float" if rows is None else f"a float, or a tensor of shape ({rows},)"
            raise ValueError(f"a temperature tensor must hold one positive value per row: expected {want}, "
                             f"got shape {tuple(temperature.shape)}")
    elif temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def adjust_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None) -> torch.Tensor:
    """Logits (B, K) divided by ``temperature``; with ``top_k``, all but the k largest of each row set to -inf."""
    check_temperature(temperature)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return logits


def draw_categorical(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """One index per row of ``logits`` (B, K) from softmax(adjusted logits): (B,) long, on the logits' device."""
    probs = F.softmax(adjust_logits(logits, temperature, top_k), dim=-1).cpu()
    return torch.multinomial(probs, 1, generator=generator)[:, 0].to(logits.device)


def inverse_cdf(logits: torch.Tensor, uniforms: torch.Tensor, temperature: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Inverse-CDF sampling: logits (B, K) and uniforms (B,) in [0, 1) -> indices (B,) long.

    ``temperature``: one float, or a tensor (B,) of one temperature per row (several temperatures
    in one batch). Computed in float64, so that a uniform number falls in the same bin whatever the batch.
    """
    check_temperature(temperature, rows=logits.shape[0])
    if isinstance(temperature, torch.Tensor):
        temperature = temperature.to(logits.device, torch.float64).reshape(-1, 1)  # (B, 1) or (1, 1)
    cdf = torch.softmax(logits.double() / temperature, dim=-1).cumsum(-1)
    u = uniforms.to(cdf.device, torch.float64)[:, None].contiguous()
    return torch.searchsorted(cdf, u).clamp_max(logits.shape[-1] - 1)[:, 0]
