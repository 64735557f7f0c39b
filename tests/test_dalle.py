"""DALL-E in miniature: the dVAE (Gumbel-softmax, KL, annealing) and the text + image transformer."""

import math

import numpy as np
import pytest
import torch

from arflow.models.dalle import ALPHABET, CaptionTokenizer, MiniDalle, caption_dataset, make_caption
from arflow.models.dvae import DiscreteVAE, temperature_schedule

torch.set_num_threads(1)


# --------------------------------------------------------------------------- stage 1: dVAE
def test_dvae_shapes_and_relaxed_one_hot():
    torch.manual_seed(0)
    model = DiscreteVAE(n_tokens=16, hidden=8)
    x = torch.rand(3, 1, 28, 28)
    out = model(x, tau=0.5)
    assert out["logits"].shape == (3, 16, 7, 7) and out["recon_logits"].shape == (3, 1, 28, 28)
    torch.testing.assert_close(out["z"].sum(dim=1), torch.ones(3, 7, 7))  # a point of the simplex per cell
    assert (out["z"] >= 0).all()
    assert torch.equal(out["indices"], out["logits"].argmax(1))
    assert torch.equal(model.encode(x), out["indices"])
    assert model.decode(model.encode(x)).shape == (3, 1, 28, 28)


def test_dvae_losses_against_hand_computation():
    torch.manual_seed(1)
    model = DiscreteVAE(n_tokens=8, hidden=8)
    x = torch.rand(2, 1, 28, 28)
    out = model(x, tau=1.0)
    q = torch.softmax(out["logits"], 1).detach().numpy()
    kl = np.sum(q * (np.log(q) + np.log(8))) / 2
    assert out["kl"].item() == pytest.approx(kl, rel=1e-4)
    p = torch.sigmoid(out["recon_logits"]).detach().numpy()
    xn = x.numpy()
    bce = -np.sum(xn * np.log(p) + (1 - xn) * np.log(1 - p)) / 2
    assert out["recon"].item() == pytest.approx(bce, rel=1e-4)


def test_kl_to_uniform_is_zero_for_uniform_posterior_and_log_k_for_one_hot():
    model = DiscreteVAE(n_tokens=8, hidden=8)
    with torch.no_grad():
        last = model.encoder[-1]
        last.weight.zero_()
        last.bias.zero_()
    x = torch.rand(1, 1, 28, 28)
    assert model(x)["kl"].item() == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        last.bias[3] = 100.0  # q is (almost) one-hot on token 3 everywhere
    assert model(x)["kl"].item() == pytest.approx(49 * math.log(8), rel=1e-4)


def test_gumbel_softmax_tends_to_one_hot_as_temperature_drops():
    torch.manual_seed(2)
    model = DiscreteVAE(n_tokens=16, hidden=8)
    x = torch.rand(4, 1, 28, 28)
    hot = model(x, tau=1.0)["z"].max(1).values.mean()
    cold = model(x, tau=0.01)["z"].max(1).values.mean()
    assert cold > 0.99 > hot


def test_temperature_schedule_anneals_from_one_to_one_sixteenth():
    steps = 100
    taus = [temperature_schedule(s, steps) for s in range(steps)]
    assert taus[0] == pytest.approx(1.0) and taus[-1] == pytest.approx(1 / 16)
    assert all(a > b for a, b in zip(taus, taus[1:]))
    assert taus[50] == pytest.approx((1 / 16) ** (50 / 99))  # exponential: a straight line in log tau


def test_dvae_errors():
    model = DiscreteVAE(n_tokens=8, hidden=8)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        model.encode(torch.rand(1, 1, 14, 14))
    with pytest.raises(TypeError, match="float"):
        model.encode(torch.zeros(1, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        model.decode(torch.full((1, 7, 7), 9))


# --------------------------------------------------------------------------- stage 2: transformer
def test_tokenizer_round_trip_and_errors():
    tok = CaptionTokenizer(20)
    ids = tok.encode("The digit 7")
    assert ids.shape == (20,) and tok.decode(ids) == "the digit 7"
    assert tok.vocab_size == len(ALPHABET)
    with pytest.raises(ValueError, match=r"outside the vocabulary: \['!', 'é'\]"):
        tok.encode("a café!")
    with pytest.raises(ValueError, match="more than the text context of 20"):
        tok.encode("a very very long handwritten seven")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.encode("a_seven")  # the padding symbol cannot be typed
    with pytest.raises(ValueError, match="empty"):
        tok.encode("   ")


def test_captions_from_labels():
    assert make_caption(7, 0) == "a handwritten seven"
    assert make_caption(7, 1) == "the digit 7"
    text = caption_dataset(torch.tensor([3, 3, 3, 3, 3]))
    tok = CaptionTokenizer(20)
    assert [tok.decode(t) for t in text] == ["a handwritten three", "the digit 3", "number three", "three",
                                             "a handwritten three"]


def small_dalle() -> MiniDalle:
    torch.manual_seed(0)
    return MiniDalle(text_len=20, image_vocab=16, grid=7, d_model=16, n_heads=2, n_layers=2)


def test_dalle_shapes_and_causality_over_text_and_image():
    model = small_dalle()
    text = caption_dataset(torch.tensor([1, 2]))
    image = torch.randint(0, 16, (2, 7, 7))
    text_logits, image_logits = model(text, image)
    assert text_logits.shape == (2, 19, len(ALPHABET)) and image_logits.shape == (2, 49, 16)
    # Changing image token k changes only the predictions of image tokens after k.
    for k in (0, 20, 47):
        changed = image.clone().flatten(1)
        changed[:, k] = (changed[:, k] + 1) % 16
        _, new = model(text, changed.view(2, 7, 7))
        diff = (new - image_logits).abs().sum(-1)[0] > 1e-6
        assert not diff[: k + 1].any() and diff[k + 1]
    # The caption conditions every image token: another caption changes the first image prediction.
    _, other = model(caption_dataset(torch.tensor([5, 2])), image)
    assert not torch.allclose(other[0, 0], image_logits[0, 0])
    torch.testing.assert_close(other[1], image_logits[1])


def test_dalle_losses_are_cross_entropies_and_weighted_as_in_the_paper():
    model = small_dalle()
    with torch.no_grad():
        for head in (model.text_head, model.image_head):
            head.weight.zero_()
            head.bias.zero_()
    text = caption_dataset(torch.tensor([4]))
    losses = model.losses(text, torch.randint(0, 16, (1, 7, 7)))
    assert losses["image"].item() == pytest.approx(math.log(16), rel=1e-6)
    assert losses["text"].item() == pytest.approx(math.log(len(ALPHABET)), rel=1e-6)
    assert losses["loss"].item() == pytest.approx(math.log(len(ALPHABET)) / 8 + 7 * math.log(16) / 8, rel=1e-6)


def test_dalle_sampling_from_typed_captions():
    model = small_dalle()
    dvae = DiscreteVAE(n_tokens=16, hidden=8)
    images = model.images_from_captions(["the digit 7", "Two"], dvae, n_per_caption=2, seed=0)
    assert images.shape == (4, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    again = model.images_from_captions(["the digit 7", "Two"], dvae, n_per_caption=2, seed=0)
    torch.testing.assert_close(images, again)  # seeded
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.images_from_captions(["a seven?"], dvae)
    with pytest.raises(ValueError, match=r"text must be a LongTensor \(B, 20\)"):
        model(torch.zeros(1, 25, dtype=torch.long), torch.zeros(1, 7, 7, dtype=torch.long))
