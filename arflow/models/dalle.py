"""Stage 2 of DALL-E in miniature: one transformer over caption tokens followed by image tokens.

DALL-E (Ramesh et al., 2021) concatenates up to 256 BPE text tokens with the 32 x 32 = 1024
image tokens of its dVAE and trains one autoregressive transformer on the joint sequence:
p(text, image) = prod_t p(s_t | s_{<t}). To draw an image from a caption, feed the caption and
sample the image tokens one at a time; the dVAE decoder turns them into pixels.

Here: captions made from MNIST labels in a few phrasings ("a handwritten seven", "the digit 7",
...), tokenized by **characters** (a 38-symbol vocabulary instead of 16,384 BPE tokens),
padded to ``text_len`` = 20; the 7 x 7 = 49 image tokens of :class:`arflow.models.dvae.DiscreteVAE`.
Text and image tokens have their own embedding tables and their own output heads; text
positions get a learned position embedding and image positions learned row + column embeddings,
as in the paper. The loss weights text by 1/8 and image by 7/8, as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from arflow.models.attention import Block, causal_mask
from arflow.models.sampling import check_temperature, draw_categorical
from arflow.models.token_transformer import TokenTransformer
from arflow.utils import progress

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
PHRASINGS = ("a handwritten {word}", "the digit {digit}", "number {word}", "{word}")
PAD = "_"  # the padding symbol (not typeable in a caption)
ALPHABET = PAD + " abcdefghijklmnopqrstuvwxyz0123456789"


def make_caption(label: int, phrasing: int) -> str:
    """Caption of digit ``label`` in phrasing number ``phrasing`` (0 .. len(PHRASINGS) - 1)."""
    return PHRASINGS[phrasing].format(word=DIGIT_WORDS[int(label)], digit=int(label))


class CaptionTokenizer:
    """Characters -> token ids, padded to ``text_len``. Captions are lower-cased first."""

    def __init__(self, text_len: int = 20):
        self.text_len = text_len
        self.vocab_size = len(ALPHABET)
        self.index = {ch: i for i, ch in enumerate(ALPHABET)}

    def encode(self, caption: str) -> torch.Tensor:
        """A caption -> (text_len,) long. ValueError for unknown characters or a caption too long."""
        if not isinstance(caption, str):
            raise TypeError(f"a caption must be a str, got {type(caption).__name__}")
        text = caption.lower().strip()
        unknown = sorted({ch for ch in text if ch not in self.index or ch == PAD})
        if unknown:
            raise ValueError(f"caption {caption!r} has characters outside the vocabulary: {unknown}; "
                             f"allowed: space, a-z and 0-9")
        if not text:
            raise ValueError("the caption is empty")
        if len(text) > self.text_len:
            raise ValueError(f"caption {caption!r} has {len(text)} characters, more than the text context "
                             f"of {self.text_len}")
        ids = [self.index[ch] for ch in text] + [self.index[PAD]] * (self.text_len - len(text))
        return torch.tensor(ids, dtype=torch.long)

    def encode_batch(self, captions: list[str]) -> torch.Tensor:
        return torch.stack([self.encode(c) for c in captions])

    def decode(self, ids: torch.Tensor) -> str:
        return "".join(ALPHABET[i] for i in ids.tolist()).rstrip(PAD)


def caption_dataset(labels, phrasings: torch.Tensor | None = None, text_len: int = 20) -> torch.Tensor:
    """Text tokens (N, text_len) for digit labels (N,); ``phrasings`` (N,) picks each phrasing
    (default: example i gets phrasing i mod the number of phrasings)."""
    labels = torch.as_tensor(labels).long()
    if phrasings is None:
        phrasings = torch.arange(len(labels)) % len(PHRASINGS)
    tok = CaptionTokenizer(text_len)
    return tok.encode_batch([make_caption(y, p) for y, p in zip(labels.tolist(), phrasings.tolist())])


class MiniDalle(TokenTransformer):
    """One decoder-only transformer over [text tokens (text_len)] + [image tokens (grid * grid)].

    ``forward(text, image)``: text (B, text_len), image (B, grid, grid) longs -> (text_logits
    (B, text_len - 1, text_vocab), image_logits (B, grid * grid, image_vocab)). Position t of the
    sequence predicts token t + 1: the last text position predicts the first image token.
    """

    def __init__(self, text_len: int = 20, text_vocab: int = len(ALPHABET), image_vocab: int = 32,
                 grid: int = 7, d_model: int = 64, n_heads: int = 4, n_layers: int = 4):
        super().__init__()
        self.text_len, self.text_vocab, self.image_vocab, self.grid = text_len, text_vocab, image_vocab, grid
        self.seq_len = text_len + grid * grid
        self.text_emb = nn.Embedding(text_vocab, d_model)
        self.text_pos = nn.Parameter(torch.randn(text_len, d_model) * 0.02)
        self.image_emb = nn.Embedding(image_vocab, d_model)
        self.row_emb = nn.Parameter(torch.randn(grid, 1, d_model) * 0.02)
        self.col_emb = nn.Parameter(torch.randn(1, grid, d_model) * 0.02)
        # The last image token is never an input (nothing follows it): context seq_len - 1.
        mask = causal_mask(self.seq_len - 1)
        self.build_trunk((Block(d_model, n_heads, mask) for _ in range(n_layers)), d_model)
        self.text_head = nn.Linear(d_model, text_vocab)
        self.image_head = nn.Linear(d_model, image_vocab)

    def _check(self, text: torch.Tensor, image: torch.Tensor) -> None:
        if text.dtype != torch.long or text.ndim != 2 or text.shape[1] != self.text_len:
            raise ValueError(f"text must be a LongTensor (B, {self.text_len}), got {text.dtype} {tuple(text.shape)}")
        if text.numel() and (text.min() < 0 or text.max() >= self.text_vocab):
            raise ValueError(f"text tokens must lie in [0, {self.text_vocab})")
        if image.dtype != torch.long or image.ndim != 3 or image.shape[0] != text.shape[0] \
                or image.shape[1] * image.shape[2] > self.grid * self.grid:
            raise ValueError(f"image must be a LongTensor (B, {self.grid}, {self.grid}) (or fewer rows while "
                             f"sampling), got {image.dtype} {tuple(image.shape)}")
        if image.numel() and (image.min() < 0 or image.max() >= self.image_vocab):
            raise ValueError(f"image tokens must lie in [0, {self.image_vocab})")

    def embed(self, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """(B, text_len), (B, g, g) -> the input sequence (B, seq_len - 1, C) (the last image token dropped)."""
        self._check(text, image)
        t = self.text_emb(text) + self.text_pos
        pos = (self.row_emb + self.col_emb).flatten(0, 1)  # (g * g, C): row + column of each image token
        im = self.image_emb(image.flatten(1)) + pos[: image.shape[1] * image.shape[2]]
        return torch.cat([t, im], dim=1)[:, : self.seq_len - 1]

    def read_out(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized features (B, seq_len - 1, C) -> logits of text tokens 2..text_len
        (B, text_len - 1, text_vocab) and of the image tokens (B, g * g, image_vocab)."""
        L = self.text_len
        return self.text_head(h[:, : L - 1]), self.image_head(h[:, L - 1:])

    def forward(self, text: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_embeddings(self.embed(text, image))

    def losses(self, text: torch.Tensor, image: torch.Tensor) -> dict:
        """Mean negative log-likelihoods in nats per token: ``text`` (tokens 2..text_len), ``image``,
        and the paper's weighted ``loss`` = text / 8 + 7 image / 8."""
        text_logits, image_logits = self(text, image)
        text_nll = F.cross_entropy(text_logits.reshape(-1, self.text_vocab), text[:, 1:].reshape(-1))
        image_nll = F.cross_entropy(image_logits.reshape(-1, self.image_vocab), image.flatten())
        return {"text": text_nll, "image": image_nll, "loss": text_nll / 8 + 7 * image_nll / 8}

    @torch.no_grad()
    def sample_image_tokens(self, text: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                            generator: torch.Generator | None = None) -> torch.Tensor:
        """Image tokens (B, grid, grid) drawn one at a time given captions ``text`` (B, text_len)."""
        check_temperature(temperature)
        B, g = text.shape[0], self.grid
        image = torch.zeros(B, g, g, dtype=torch.long, device=text.device)
        for i in progress(range(g * g), "sampling image tokens", min_total=32):
            r, c = divmod(i, g)
            _, logits = self(text, image)
            # later image positions are zeros and unseen (causal)
            image[:, r, c] = draw_categorical(logits[:, i], temperature, top_k, generator)
        return image

    def images_from_captions(self, captions: list[str], dvae, n_per_caption: int = 8, temperature: float = 1.0,
                             top_k: int | None = None, seed: int = 0) -> torch.Tensor:
        """Typed captions -> images (len(captions) * n_per_caption, 1, 28, 28), one block of rows per caption."""
        tokenizer = CaptionTokenizer(self.text_len)
        device = self.text_pos.device
        text = tokenizer.encode_batch(list(captions)).repeat_interleave(n_per_caption, dim=0).to(device)
        generator = torch.Generator().manual_seed(seed)
        tokens = self.sample_image_tokens(text, temperature, top_k, generator)
        return dvae.decode(tokens)
