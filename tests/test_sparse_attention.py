"""Sparse Transformer patterns: masks against their definitions, two-layer reach, the O(n sqrt n) kernel,
and the causality of the image transformer."""

import math

import pytest
import torch

from arflow.analysis.gradients import sequence_support
from arflow.models.attention import MaskedSelfAttention, causal_mask
from arflow.models.image_transformer import ImageTransformer, prepare_images, tokens_to_images
from arflow.models.sparse_attention import (
    StridedSelfAttention,
    attended_pairs,
    column_attention,
    fixed_masks,
    local_attention,
    pattern_masks,
    reachable,
    strided_masks,
)

torch.set_num_threads(1)


def brute_strided(n, l):
    a = [[j <= i and i - j < l for j in range(n)] for i in range(n)]
    b = [[j <= i and (i - j) % l == 0 for j in range(n)] for i in range(n)]
    return torch.tensor([a, b])


def brute_fixed(n, l, c=1):
    a = [[j <= i and j // l == i // l for j in range(n)] for i in range(n)]
    b = [[j <= i and (j % l >= l - c or j == i) for j in range(n)] for i in range(n)]
    return torch.tensor([a, b])


@pytest.mark.parametrize("n,l", [(16, 4), (25, 5), (30, 4), (49, 7)])
def test_masks_match_their_definitions(n, l):
    assert torch.equal(strided_masks(n, l), brute_strided(n, l))
    assert torch.equal(fixed_masks(n, l), brute_fixed(n, l))
    assert torch.equal(fixed_masks(n, l, 2), brute_fixed(n, l, 2))


@pytest.mark.parametrize("pattern", ["strided", "fixed"])
@pytest.mark.parametrize("n,l", [(16, 4), (36, 6), (50, 7), (64, 5)])
def test_two_layers_reach_every_earlier_position_and_no_later_one(pattern, n, l):
    masks = pattern_masks(pattern, n, l)
    assert not (masks & ~causal_mask(n)).any()  # each head is causal
    one, two = reachable(masks, 1), reachable(masks, 2)
    assert torch.equal(two, causal_mask(n))
    assert not torch.equal(one, causal_mask(n))  # one layer alone does not


@pytest.mark.parametrize("pattern", ["strided", "fixed"])
def test_reach_by_gradients_through_two_real_layers(pattern):
    torch.manual_seed(0)
    n, l = 25, 5
    model = ImageTransformer((5, 5), levels=4, d_model=16, n_heads=2, n_layers=2, attention=pattern,
                             stride=l).double()
    support = sequence_support(model.forward_embeddings, model.embed(torch.randint(0, 4, (1, 5, 5))))
    assert torch.equal(support, causal_mask(n))


def test_attended_positions_grow_like_n_sqrt_n():
    for n in (64, 256, 1024):
        l = int(math.isqrt(n))
        dense = attended_pairs(causal_mask(n))
        assert dense == n * (n + 1) // 2
        for pattern in ("strided", "fixed"):
            pairs = attended_pairs(pattern_masks(pattern, n, l))
            assert 0.5 * n * l <= pairs <= 2 * n * l
        assert attended_pairs(strided_masks(n, l)[0]) == n * l - l * (l - 1) // 2  # head A: min(i + 1, l)


@pytest.mark.parametrize("T,l", [(16, 4), (23, 5), (49, 7), (7, 7), (10, 3)])
def test_fast_kernels_equal_masked_attention(T, l):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, T, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))

    def masked(mask):
        s = (q @ k.transpose(-2, -1) / math.sqrt(8)).masked_fill(~mask, float("-inf"))
        return torch.softmax(s, -1) @ v

    masks = strided_masks(T, l)
    torch.testing.assert_close(local_attention(q, k, v, l), masked(masks[0]))
    torch.testing.assert_close(column_attention(q, k, v, l), masked(masks[1]))


def test_strided_module_equals_masked_module_including_gradients():
    torch.manual_seed(1)
    n, l = 30, 6
    fast = StridedSelfAttention(16, 4, n, l).double()
    slow = MaskedSelfAttention(16, 4, pattern_masks("strided", n, l, 4)).double()
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(2, n, 16, dtype=torch.float64, requires_grad=True)
    a, b = fast(x), slow(x)
    torch.testing.assert_close(a, b)
    (ga,) = torch.autograd.grad(a.square().sum(), x)
    (gb,) = torch.autograd.grad(b.square().sum(), x)
    torch.testing.assert_close(ga, gb)
    torch.testing.assert_close(fast(x[:, :17]), slow(x[:, :17]))  # shorter sequences too


def test_strided_image_transformer_runs_the_fast_kernel(monkeypatch):
    import arflow.models.sparse_attention as sa

    calls = []
    original = sa.local_attention
    monkeypatch.setattr(sa, "local_attention", lambda *a: calls.append(1) or original(*a))
    monkeypatch.setattr(MaskedSelfAttention, "forward", lambda *a, **k: pytest.fail("dense path used"))
    model = ImageTransformer((6, 6), levels=4, d_model=16, n_heads=2, n_layers=2, attention="strided")
    model.nll_bits_per_dim(torch.randint(0, 4, (2, 6, 6))).backward()
    assert len(calls) == 2  # once per layer, and never the dense masked path


@pytest.mark.parametrize("attention", ["dense", "strided", "fixed"])
def test_image_transformer_pixel_i_depends_only_on_earlier_pixels(attention):
    torch.manual_seed(2)
    model = ImageTransformer((4, 4), levels=8, d_model=16, n_heads=2, n_layers=2, attention=attention)
    tokens = torch.randint(0, 8, (1, 4, 4))
    base = model(tokens)
    assert base.shape == (1, 8, 4, 4)
    for k in range(16):
        changed = tokens.clone().flatten()
        changed[k] = (changed[k] + 3) % 8
        diff = (model(changed.view(1, 4, 4)) - base).abs().sum(dim=1).flatten() > 1e-6
        assert not diff[: k + 1].any()  # pixels 0..k never see pixel k
        if k < 15:
            assert diff[k + 1]  # the next pixel does


def test_prepare_images_downsamples_and_quantizes():
    img = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    img[0, 0, :2, :2] = 255  # one full 2x2 block -> pixel (0, 0) = 255 -> top level
    img[0, 0, 2:4, 0:2] = torch.tensor([[0, 64], [64, 0]], dtype=torch.uint8)  # mean 32 -> level 2
    tokens = prepare_images(img.numpy(), size=14, levels=16)
    assert tokens.shape == (1, 14, 14) and tokens.dtype == torch.long
    assert tokens[0, 0, 0] == 15 and tokens[0, 1, 0] == 2 and tokens.sum() == 17
    assert tokens_to_images(tokens, 16).shape == (1, 1, 14, 14)
    with pytest.raises(ValueError, match="uint8"):
        prepare_images(torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match="divide"):
        prepare_images(img.numpy(), size=10)


def test_sampling_and_errors():
    model = ImageTransformer((3, 3), levels=4, d_model=8, n_heads=2, n_layers=1, attention="strided")
    out = model.sample(2, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 3) and out.min() >= 0 and out.max() < 4
    with pytest.raises(ValueError, match="attention must be one of"):
        ImageTransformer(attention="sparse")
    with pytest.raises(ValueError, match="even"):
        pattern_masks("fixed", 16, 4, n_heads=3)
    with pytest.raises(ValueError, match="stride"):
        strided_masks(16, 0)
    with pytest.raises(ValueError, match=r"shape \(B, 3, 3\)"):
        model(torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        model(torch.full((1, 3, 3), 7))
