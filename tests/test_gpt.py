"""The byte-level GPT and its corpus: shapes, causality, the loss in bits, baselines, encoding errors."""

import math

import numpy as np
import pytest
import torch

from arflow.analysis.gradients import sequence_support
from arflow.data import text_corpus as tc
from arflow.data.windows import windows
from arflow.models.attention import causal_mask
from arflow.models.gpt import GPT

torch.set_num_threads(1)


def small_gpt(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(**{"vocab_size": 256, "block_size": 16, "d_model": 32, "n_heads": 4, "n_layers": 2, **kw})


def test_shapes_and_attention_maps():
    model = small_gpt()
    idx = torch.randint(0, 256, (3, 10))
    logits, maps = model(idx, return_attention=True)
    assert logits.shape == (3, 10, 256)
    assert len(maps) == 2 and maps[0].shape == (3, 4, 10, 10)


def test_logits_at_t_depend_only_on_tokens_up_to_t_by_gradients():
    model = small_gpt().double()
    T = 12
    support = sequence_support(model.forward_embeddings, model.embed(torch.randint(0, 256, (1, T))))
    assert torch.equal(support, causal_mask(T))


def test_changing_a_future_token_leaves_earlier_predictions_unchanged():
    model = small_gpt()
    idx = torch.randint(0, 256, (1, 16))
    changed = idx.clone()
    changed[0, 9] = (changed[0, 9] + 1) % 256
    a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :9], b[:, :9])
    assert not torch.allclose(a[:, 9:], b[:, 9:])


def test_uniform_model_costs_eight_bits_per_byte():
    model = small_gpt()
    with torch.no_grad():
        model.head.weight.zero_()  # tied with the embedding: all logits become 0
    idx = torch.randint(0, 256, (2, 17))
    assert model.nll(idx).item() == pytest.approx(math.log(256), abs=1e-6)  # 8 bits per byte


def test_nll_is_the_mean_cross_entropy_of_next_bytes():
    model = small_gpt()
    idx = torch.randint(0, 256, (2, 9))
    logp = torch.log_softmax(model(idx[:, :-1]), -1)
    manual = -np.mean([logp[b, t, idx[b, t + 1]].item() for b in range(2) for t in range(8)])
    assert model.nll(idx).item() == pytest.approx(manual, rel=1e-5)


def test_bad_inputs_give_clear_errors():
    model = small_gpt()
    with pytest.raises(ValueError, match="longer than the context"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(TypeError, match="LongTensor"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        model(torch.full((1, 4), 300))
    with pytest.raises(ValueError, match="temperature"):
        model.sample(torch.zeros(1, 2, dtype=torch.long), 3, temperature=0)


def test_sampling_keeps_the_prompt_and_crops_to_the_context():
    model = small_gpt()
    prompt = tc.encode("def f(x):")[None]
    out = model.sample(prompt, 20, temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, prompt.shape[1] + 20)  # longer than block_size 16: the context slides
    assert torch.equal(out[:, : prompt.shape[1]], prompt)
    assert 0 <= out.min() and out.max() < 256


def test_encode_decode_round_trip_and_errors():
    text = "naïve café: λx. x → 𝔼"
    tokens = tc.encode(text)
    assert tokens.dtype == torch.long and len(tokens) == len(text.encode("utf-8"))
    assert tc.decode(tokens) == text
    assert tc.decode(torch.tensor([0xFF, 65])) == "\ufffdA"  # invalid UTF-8 becomes U+FFFD
    with pytest.raises(ValueError, match="unknown character set"):
        tc.encode("abc", encoding="klingon-8")
    with pytest.raises(ValueError, match="cannot be written in 'ascii'"):
        tc.encode("λ", encoding="ascii")
    with pytest.raises(TypeError, match="str"):
        tc.encode(b"bytes")


def test_ngram_baselines_against_hand_computation():
    train, test = tc.encode("aab"), tc.encode("ab")
    a, b = ord("a"), ord("b")
    uni = np.ones(256)
    uni[a] += 2
    uni[b] += 1
    uni /= uni.sum()
    expected_uni = -(np.log2(uni[a]) + np.log2(uni[b])) / 2
    assert tc.ngram_bits_per_byte(train, test, 1) == pytest.approx(expected_uni)
    # bigram: pairs (a, a), (a, b) in train; p(b | a) = (1 + 1) / (2 + 256)
    expected_bi = -(np.log2(uni[a]) + np.log2(2 / 258)) / 2
    assert tc.ngram_bits_per_byte(train, test, 2) == pytest.approx(expected_bi)
    with pytest.raises(ValueError, match="order"):
        tc.ngram_bits_per_byte(train, test, 3)


def test_corpus_is_the_fixed_module_list():
    text = tc.corpus_text("test")
    assert text.startswith("# ---- file: textwrap.py\n")
    assert all(f"# ---- file: {m}.py" in text for m in tc.TEST_MODULES)
    fp = tc.corpus_fingerprint()
    assert fp["train"]["bytes"] > 100_000 and fp["test"]["bytes"] > 10_000
    w = windows(tc.corpus_tokens("test"), 129, limit=5)
    assert w.shape == (5, 129)
    assert torch.equal(w[1], tc.corpus_tokens("test")[129:258])
    with pytest.raises(ValueError, match="split"):
        tc.corpus_text("valid")


def test_kv_cache_gives_the_logits_of_the_whole_sequence():
    torch.manual_seed(0)
    model = GPT(vocab_size=32, block_size=16, d_model=24, n_heads=3, n_layers=2).eval()
    idx = torch.randint(0, 32, (2, 12))
    with torch.no_grad():
        full = model(idx)  # (B, T, V): logits at every position
    logits, caches = model._extend(idx[:, :5], None)  # prefill 5 tokens
    assert torch.allclose(logits, full[:, 4], atol=1e-5)
    for t in range(5, 12):  # then one token at a time, from the cache
        logits, caches = model._extend(idx[:, t:t + 1], caches)
        assert torch.allclose(logits, full[:, t], atol=1e-5), f"position {t}"
    assert caches[0][0].shape == (2, 3, 12, 8)  # keys (B, H, T, D) of all 12 positions


def test_sampling_with_and_without_the_cache_draws_the_same_tokens():
    torch.manual_seed(1)
    model = GPT(vocab_size=32, block_size=16, d_model=24, n_heads=3, n_layers=2).eval()
    prompt = torch.randint(0, 32, (3, 4))
    # 30 new tokens: the first 12 fit the context (cached), then the window slides (re-read each step)
    cached = model.sample(prompt, 30, generator=torch.Generator().manual_seed(5))
    plain = model.sample(prompt, 30, generator=torch.Generator().manual_seed(5), use_cache=False)
    assert torch.equal(cached, plain)


def test_the_cache_cannot_grow_past_the_context():
    model = GPT(vocab_size=32, block_size=8, d_model=24, n_heads=3, n_layers=1).eval()
    _, caches = model._extend(torch.zeros(1, 8, dtype=torch.long), None)
    with pytest.raises(ValueError, match="exceed the context of 8"):
        model.blocks[0].attn.step(torch.zeros(1, 1, 24), caches[0])
