"""Masked self-attention: the causal mask, the softmax arithmetic, and causality by gradients."""

import math

import numpy as np
import pytest
import torch

from arflow.models.attention import Block, MaskedSelfAttention, causal_mask

torch.set_num_threads(1)


def jacobian_support(fn, T: int, C: int) -> torch.Tensor:
    """(T, T) boolean: [i, j] True where output position i has a non-zero gradient w.r.t. input position j."""
    x = torch.randn(1, T, C, dtype=torch.float64, requires_grad=True)
    out = fn(x)
    support = torch.zeros(T, T, dtype=torch.bool)
    for i in range(T):
        (g,) = torch.autograd.grad(out[0, i].sum(), x, retain_graph=True)
        support[i] = g[0].abs().sum(dim=-1) > 0
    return support


def test_causal_mask_is_lower_triangular():
    assert torch.equal(causal_mask(5), torch.from_numpy(np.tril(np.ones((5, 5), dtype=bool))))
    with pytest.raises(ValueError, match="T must be >= 1"):
        causal_mask(0)


def test_attention_matches_hand_computation():
    torch.manual_seed(0)
    T, C = 6, 8
    attn = MaskedSelfAttention(C, 1, causal_mask(T)).double()
    x = torch.randn(2, T, C, dtype=torch.float64)
    out, weights = attn(x, return_attention=True)
    # By hand with numpy: softmax(q k^T / sqrt(C) with -inf above the diagonal) v, then the output map.
    W, b = attn.qkv.weight.detach().numpy(), attn.qkv.bias.detach().numpy()
    qkv = x.numpy() @ W.T + b
    q, k, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(C)
    scores = np.where(np.tril(np.ones((T, T))) > 0, scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    expected = (p @ v) @ attn.proj.weight.detach().numpy().T + attn.proj.bias.detach().numpy()
    np.testing.assert_allclose(weights[:, 0].detach().numpy(), p, atol=1e-12)
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-10)


def test_attention_weights_are_distributions_over_the_past():
    torch.manual_seed(1)
    attn = MaskedSelfAttention(16, 4, causal_mask(10))
    _, w = attn(torch.randn(3, 10, 16), return_attention=True)
    assert w.shape == (3, 4, 10, 10)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 4, 10))
    assert (w.triu(diagonal=1) == 0).all()
    assert (w[..., causal_mask(10)] > 0).all()  # every allowed position gets some weight


@pytest.mark.parametrize("module", ["attention", "block"])
def test_no_position_attends_to_a_later_one_by_gradients(module):
    torch.manual_seed(2)
    T, C = 9, 16
    layer = MaskedSelfAttention(C, 4, causal_mask(T)) if module == "attention" else Block(C, 4, causal_mask(T))
    support = jacobian_support(layer.double(), T, C)
    assert torch.equal(support, causal_mask(T))  # zero for j > i, non-zero for all j <= i


def test_shorter_sequences_use_the_top_left_corner_of_the_mask():
    torch.manual_seed(3)
    layer = MaskedSelfAttention(8, 2, causal_mask(12)).double()
    assert torch.equal(jacobian_support(layer, 5, 8), causal_mask(5))


def test_per_head_masks_apply_to_their_own_head():
    T = 6
    masks = torch.stack([causal_mask(T), torch.eye(T, dtype=torch.bool)])  # head 1 sees only itself
    attn = MaskedSelfAttention(8, 2, masks)
    _, w = attn(torch.randn(1, T, 8), return_attention=True)
    torch.testing.assert_close(w[0, 1], torch.eye(T))
    assert (w[0, 0][causal_mask(T)] > 0).all()


def test_clear_errors():
    with pytest.raises(ValueError, match="divisible"):
        MaskedSelfAttention(10, 3, causal_mask(4))
    with pytest.raises(ValueError, match="shape"):
        MaskedSelfAttention(8, 2, torch.ones(3, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one"):
        MaskedSelfAttention(8, 2, torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask"):
        MaskedSelfAttention(8, 2, np.ones((4, 4)))
    attn = MaskedSelfAttention(8, 2, causal_mask(4))
    with pytest.raises(ValueError, match="longer than the context of 4"):
        attn(torch.randn(1, 5, 8))
    with pytest.raises(ValueError, match=r"\(B, T, C\)"):
        attn(torch.randn(5, 8))


def test_mask_is_a_buffer_saved_with_the_model():
    attn = MaskedSelfAttention(8, 2, causal_mask(4))
    assert "mask" in attn.state_dict()
    assert all(p is not attn.mask for p in attn.parameters())
