"""Dense against sparse attention: time and memory of one layer as n grows, and training steps of the
14x14 image transformers. Memory is measured as the bytes autograd saves for the backward pass
(the activations a training step must keep), counted with ``saved_tensors_hooks``."""

from __future__ import annotations

import math

import torch

from arflow.bench import median_seconds
from arflow.models.attention import MaskedSelfAttention, causal_mask
from arflow.models.image_transformer import ImageTransformer
from arflow.models.sparse_attention import StridedSelfAttention, pattern_masks


def saved_bytes(fn) -> int:
    """Bytes of the distinct tensors autograd saves for backward while running ``fn()``."""
    seen: dict[tuple, int] = {}

    def pack(t: torch.Tensor):
        key = (t.untyped_storage().data_ptr(), t.dtype, tuple(t.shape))
        seen[key] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def attention_layers(n: int, d_model: int = 64, n_heads: int = 4) -> dict[str, torch.nn.Module]:
    l = max(1, round(math.sqrt(n)))
    torch.manual_seed(0)
    return {
        "dense (causal)": MaskedSelfAttention(d_model, n_heads, causal_mask(n)),
        "strided, masked dense": MaskedSelfAttention(d_model, n_heads, pattern_masks("strided", n, l, n_heads)),
        "strided, O(n sqrt n) kernel": StridedSelfAttention(d_model, n_heads, n, l),
    }


def attention_costs(ns, batch: int = 4, d_model: int = 64, repeat: int = 3) -> dict:
    """For each n: seconds of forward + backward and bytes saved for backward, per attention variant."""
    out = {"n": list(ns), "seconds": {}, "bytes": {}}
    for n in ns:
        x = torch.randn(batch, n, d_model, requires_grad=True)
        for name, layer in attention_layers(n, d_model).items():
            def step(layer=layer, x=x):
                layer(x).sum().backward()
            out["seconds"].setdefault(name, []).append(median_seconds(step, repeat=repeat, warmup=1))
            out["bytes"].setdefault(name, []).append(saved_bytes(lambda layer=layer, x=x: layer(x).sum()))
    return out


def train_step_seconds(attention: str, batch: int = 16, repeat: int = 3, size: int = 14) -> float:
    """Median seconds of one training step (forward, backward, Adam) of the lecture's image transformer."""
    torch.manual_seed(0)
    model = ImageTransformer((size, size), 16, 64, 4, 3, attention=attention)
    optimizer = torch.optim.Adam(model.parameters())
    tokens = torch.randint(0, 16, (batch, size, size))

    def step():
        loss = model.nll_bits_per_dim(tokens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return median_seconds(step, repeat=repeat)


def run() -> list[str]:
    lines = []
    costs = attention_costs([64, 256, 576, 1024])
    for i, n in enumerate(costs["n"]):
        parts = [f"{name} {costs['seconds'][name][i] * 1000:.1f} ms / {costs['bytes'][name][i] / 1e6:.1f} MB"
                 for name in costs["seconds"]]
        lines.append(f"attention layer fwd+bwd, n = {n}: " + "; ".join(parts))
    dense, fast = costs["seconds"]["dense (causal)"][-1], costs["seconds"]["strided, O(n sqrt n) kernel"][-1]
    lines.append(f"at n = {costs['n'][-1]}: strided kernel / dense time = {fast / dense:.2f}, memory = "
                 f"{costs['bytes']['strided, O(n sqrt n) kernel'][-1] / costs['bytes']['dense (causal)'][-1]:.2f}")
    for size in (14, 28):
        repeat = 3 if size <= 14 else 1  # a 28x28 dense step takes seconds
        d = train_step_seconds("dense", size=size, repeat=repeat)
        s = train_step_seconds("strided", size=size, repeat=repeat)
        lines.append(f"image transformer training step, {size}x{size}, batch 16: dense {d * 1000:.0f} ms, "
                     f"strided {s * 1000:.0f} ms (ratio {s / d:.2f})")
    return lines + gpt_cache_lines()


def gpt_cache_lines() -> list[str]:
    """The shipped byte GPT's sampling with and without its key/value cache (same tokens)."""
    from arflow.bench import median_seconds
    from arflow.train.checkpoints import load_checkpoint

    gpt = load_checkpoint("gpt_bytes")
    prompt = torch.tensor([[100, 101, 102, 32]])
    lines = []
    for n_new in (gpt.block_size - 4, 300):  # within the context; then the window slides
        def run(use_cache, n=n_new):
            return gpt.sample(prompt, n, generator=torch.Generator().manual_seed(0), use_cache=use_cache)
        same = torch.equal(run(True), run(False))
        cached, plain = median_seconds(lambda: run(True), repeat=3), median_seconds(lambda: run(False), repeat=3)
        lines.append(f"GPT sampling of {n_new} bytes (context {gpt.block_size}): window re-read each step "
                     f"{plain:.2f} s, KV cache {cached:.2f} s: speed-up x{plain / cached:.1f}; same tokens: {same}")
    return lines
