"""Part I benchmarks: fast vs naive generation (WaveNet, Gated PixelCNN). (Explorer redraw times: `explorers`.)"""

from __future__ import annotations

import torch

from arflow.bench import median_seconds


def _wavenet_lines() -> list[str]:
    from arflow.models.wavenet import WaveNet
    from arflow.train.recipes.convolutional import WAVENET

    torch.manual_seed(0)
    model = WAVENET.build(WAVENET.model_config).eval()
    assert isinstance(model, WaveNet)
    lines, n_steps = [], 400
    for batch in (1, 3):  # one clip, and the lecture's three clips sampled together
        prime = torch.randint(0, 256, (batch, 1), generator=torch.Generator().manual_seed(0))
        u = torch.rand(batch, n_steps, generator=torch.Generator().manual_seed(0))
        same = torch.equal(model.generate(n_steps, prime, u, fast=False), model.generate(n_steps, prime, u, fast=True))
        naive = median_seconds(lambda p=prime, u=u: model.generate(n_steps, p, u, fast=False), repeat=3)
        fast = median_seconds(lambda p=prime, u=u: model.generate(n_steps, p, u, fast=True), repeat=3)
        lines.append(f"WaveNet ({len(model.dilations)} layers, receptive field {model.receptive_field}), "
                     f"{batch} clip(s) of {n_steps} samples: naive (network on the last "
                     f"{model.receptive_field} samples per step) {naive:.2f} s, queues {fast:.2f} s: "
                     f"speed-up x{naive / fast:.1f}; same samples: {same}")
    return lines


def _pixelcnn_lines() -> list[str]:
    from arflow.train.recipes.convolutional import GATED_PIXELCNN_COND

    torch.manual_seed(0)
    model = GATED_PIXELCNN_COND.build(GATED_PIXELCNN_COND.model_config).eval()
    labels = torch.arange(4)
    lines = []
    for size in (14, 28):
        u = torch.rand(4, size, size, generator=torch.Generator().manual_seed(0))
        runs = {}
        for fast in (False, True):
            runs[fast] = model.sample(4, size, labels=labels, uniforms=u, fast=fast)
        naive = median_seconds(lambda u=u, s=size: model.sample(4, s, labels=labels, uniforms=u, fast=False),
                               repeat=1, warmup=0)
        quick = median_seconds(lambda u=u, s=size: model.sample(4, s, labels=labels, uniforms=u, fast=True),
                               repeat=3, warmup=0)
        lines.append(f"Gated PixelCNN sampling, 4 images of {size}x{size}: naive (whole network per pixel) "
                     f"{naive:.2f} s, row cache + local horizontal stack {quick:.2f} s: speed-up x{naive / quick:.1f}; "
                     f"same samples: {torch.equal(runs[False], runs[True])}")
    return lines


def run() -> list[str]:
    torch.set_num_threads(1)
    return _wavenet_lines() + _pixelcnn_lines()
