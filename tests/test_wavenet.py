"""WaveNet: causality by gradients through the embedding, shifted targets, fast == naive generation, mu-law."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from arflow.data.signals import melody, melody_dataset, mu_law_decode, mu_law_encode
from arflow.data.windows import random_windows
from arflow.models.wavenet import WaveNet

torch.set_num_threads(1)


def small(**kw):
    torch.manual_seed(0)
    return WaveNet(n_values=16, channels=6, skip_channels=8, **{"dilations": (1, 2, 4), **kw})


def embedding_gradient(model, x, t):
    """Which input positions reach logits at t: gradients with respect to the embedded input."""
    emb = model.embed(x).detach().requires_grad_(True)
    handle = model.embed.register_forward_hook(lambda module, args, out: emb)  # use the leaf tensor
    try:
        out = model(x)[0, :, t].sum()
        (grad,) = torch.autograd.grad(out, emb)
    finally:
        handle.remove()
    return grad[0].abs().sum(-1) != 0


def test_output_t_sees_inputs_up_to_t_within_the_receptive_field():
    model = small().double()
    x = torch.randint(0, 16, (1, 30))
    R = model.receptive_field
    assert R == 8
    for t in [0, 3, 12, 29]:
        seen = embedding_gradient(model, x, t)
        expect = torch.zeros(30, dtype=torch.bool)
        expect[max(0, t - R + 1): t + 1] = True
        assert torch.equal(seen, expect), t


def test_nll_uses_shifted_targets():
    model = small()
    x = torch.randint(0, 16, (2, 12))
    logits = model(x[:, :-1])
    by_hand = -torch.log_softmax(logits, 1).gather(1, x[:, None, 1:])[:, 0].mean()
    assert torch.allclose(model.nll(x), by_hand)
    assert torch.allclose(model.nll(x, skip_first=4), F.cross_entropy(logits[:, :, 4:], x[:, 5:]))


def test_fast_generation_equals_naive_generation():
    model = small(dilations=(1, 2, 4, 8, 1, 2))
    prime = torch.randint(0, 16, (3, 5))
    u = torch.rand(3, 40, generator=torch.Generator().manual_seed(1))
    naive = model.generate(40, prime, u, fast=False)
    fast = model.generate(40, prime, u, fast=True)
    assert naive.shape == (3, 45)
    assert torch.equal(naive, fast)
    assert torch.equal(naive[:, :5], prime)
    assert not torch.equal(naive[0, 5:], naive[1, 5:])
    assert not fast.is_inference() and not naive.is_inference()  # ordinary tensors, whatever the caller does next


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_fast_generation_equals_naive_for_other_kernels_and_a_prime_longer_than_the_receptive_field(kernel_size):
    """The stepper folds the residual biases into the kernels' biases and sums the skips at the
    end: both rewrites must hold for every tap layout and when the prime fills the queues."""
    torch.manual_seed(2)
    model = WaveNet(16, channels=8, skip_channels=12, dilations=(1, 2, 4, 1), kernel_size=kernel_size)
    with torch.no_grad():  # biases far from zero, so that a bias folded wrongly would show
        for block in model.blocks:
            block.res.bias.uniform_(-1, 1)
            block.conv.conv.bias.uniform_(-1, 1)
    prime = torch.randint(0, 16, (2, model.receptive_field + 7))
    u = torch.rand(2, 30, generator=torch.Generator().manual_seed(3))
    assert torch.equal(model.generate(30, prime, u, fast=False), model.generate(30, prime, u, fast=True))


def test_mu_law_round_trip_and_resolution():
    x = torch.linspace(-1, 1, 2001)
    k = mu_law_encode(x)
    assert k.min() == 0 and k.max() == 255
    assert (mu_law_decode(k) - x).abs().max() < 0.025  # quantization error, largest at loud samples
    assert torch.equal(mu_law_encode(mu_law_decode(torch.arange(256))), torch.arange(256))
    # quiet samples get finer steps than loud ones
    levels = mu_law_decode(torch.arange(256))
    assert (levels[128] - levels[127]) < (levels[255] - levels[254]) / 20
    # the formula by hand at one point
    assert k[1500].item() == round((math.log1p(255 * 0.5) / math.log1p(255) + 1) / 2 * 255)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        mu_law_encode(torch.tensor([1.5]))


def test_melody_is_deterministic_bounded_and_periodic():
    a, b = melody(4000, seed=3), melody(4000, seed=3)
    assert np.array_equal(a, b) and not np.array_equal(a, melody(4000, seed=4))
    assert a.dtype == np.float32 and np.abs(a).max() <= 1
    # a harmonic tone: strong autocorrelation at some lag of 10..40 samples (one period)
    seg = a[100:600] - a[100:600].mean()
    corr = [np.dot(seg[:-lag], seg[lag:]) / np.dot(seg, seg) for lag in range(10, 41)]
    assert max(corr) > 0.5
    windows = random_windows(melody_dataset(1000, 0), 64, 5, torch.Generator().manual_seed(0))
    assert windows.shape == (5, 64) and windows.dtype == torch.long


def test_bad_input_raises():
    with pytest.raises(ValueError, match="dilations"):
        WaveNet(dilations=[])
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        small()(torch.rand(2, 10))
