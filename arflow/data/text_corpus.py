"""A text corpus that every machine running Python has offline: source files of the standard library.

The byte-level GPT of lecture 04 needs text, the course may not download anything, and every
Python installation ships megabytes of English-and-code text: the standard library's source.
We read a **fixed list** of pure-Python modules (so the corpus is the same from run to run),
located at run time with ``inspect.getsourcefile``. They are plain, well-documented code
with long English docstrings, so a model has both prose and program structure to learn.

Caveat, said plainly: the files differ slightly between Python versions (the shipped
checkpoint was measured on the Python recorded in its manifest), so bits per byte measured
on another version differ a little. :func:`corpus_fingerprint` tells which text you have.

Bytes are the tokens (256 of them, as GPT-2 operates on bytes): ``encode`` is UTF-8,
``decode`` its inverse (invalid byte sequences, which a sampler can produce, become U+FFFD).
"""

from __future__ import annotations

import codecs
import hashlib
import importlib
import inspect
import sys
from functools import lru_cache

import numpy as np
import torch

#: Modules whose source is the training text (about 560 kB).
TRAIN_MODULES = ("argparse", "dataclasses", "enum", "difflib", "functools", "statistics", "random",
                 "fractions", "contextlib", "tokenize", "calendar", "pprint", "heapq", "gettext")
#: Held-out modules: the test text (about 45 kB), files the model never saw.
TEST_MODULES = ("textwrap", "shlex", "queue")
VOCAB_SIZE = 256


def module_source(name: str) -> str:
    """The source text of standard-library module ``name`` (read from its .py file)."""
    module = importlib.import_module(name)
    path = inspect.getsourcefile(module)
    if path is None:
        raise ValueError(f"module {name!r} has no Python source file (a C extension?); "
                         "pick a pure-Python module")
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@lru_cache(maxsize=4)
def corpus_text(split: str = "train") -> str:
    """The concatenated source of the split's modules, each preceded by a ``# ---- file: name.py`` line."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    modules = TRAIN_MODULES if split == "train" else TEST_MODULES
    return "".join(f"# ---- file: {name}.py\n{module_source(name)}\n" for name in modules)


def corpus_fingerprint() -> dict:
    """Python version, sizes and sha256 (first 12 hex digits) of both splits: which text this machine has."""
    out = {"python": sys.version.split()[0]}
    for split in ("train", "test"):
        raw = corpus_text(split).encode("utf-8")
        out[split] = {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()[:12]}
    return out


def encode(text: str, encoding: str = "utf-8") -> torch.Tensor:
    """Text -> byte tokens, a LongTensor (N,) of values 0..255.

    Raises TypeError for a non-string and ValueError for an unknown character set or a text that
    the character set cannot represent.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"unknown character set {encoding!r}; the byte-level model reads UTF-8 "
                         "(any codec Python knows, such as 'utf-8' or 'latin-1', works)") from None
    try:
        raw = text.encode(encoding)
    except UnicodeEncodeError as err:
        raise ValueError(f"the text cannot be written in {encoding!r}: {err}; use 'utf-8'") from None
    return torch.tensor(list(raw), dtype=torch.long)


def decode(tokens, encoding: str = "utf-8") -> str:
    """Byte tokens (N,) of values 0..255 -> text; invalid sequences become U+FFFD."""
    values = torch.as_tensor(tokens).flatten().tolist()
    if any(not 0 <= v < VOCAB_SIZE for v in values):
        raise ValueError("byte tokens must lie in 0..255")
    return bytes(values).decode(encoding, errors="replace")


@lru_cache(maxsize=4)
def corpus_tokens(split: str = "train") -> torch.Tensor:
    """The split as byte tokens, LongTensor (N,)."""
    return encode(corpus_text(split))


def ngram_bits_per_byte(train: torch.Tensor, test: torch.Tensor, order: int, alpha: float = 1.0) -> float:
    """Test bits per byte of a count-based n-gram model (order 1 = unigram, 2 = bigram), add-alpha smoothed.

    p(x_t | x_{t-1}) = (count(x_{t-1}, x_t) + alpha) / (count(x_{t-1}) + 256 alpha) for the bigram;
    the first test byte of the bigram is scored by the unigram.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 (unigram) or 2 (bigram), got {order}")
    a, b = train.numpy(), test.numpy()
    uni = np.bincount(a, minlength=VOCAB_SIZE) + alpha
    log_uni = np.log2(uni / uni.sum())
    if order == 1:
        return float(-log_uni[b].mean())
    counts = np.full((VOCAB_SIZE, VOCAB_SIZE), alpha)
    np.add.at(counts, (a[:-1], a[1:]), 1.0)
    log_bi = np.log2(counts / counts.sum(axis=1, keepdims=True))
    total = -log_uni[b[0]] - log_bi[b[:-1], b[1:]].sum()
    return float(total / len(b))
