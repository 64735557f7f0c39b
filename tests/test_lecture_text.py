"""Static checks of what the lectures' text says (fast: no notebook is executed).

(a) **Citations.** Every lecture number cited in a lecture's markdown or in a docstring or comment
    under ``arflow/`` ("lecture 03", "lectures 01–05", "notebook 07", "the next notebook (07)")
    must be a notebook of ``lectures/``, and where a topic word stands next to it ("the Gated
    PixelCNN of lecture 02", "autoregressive models (lectures 01–05)"), every cited number must be
    a lecture of that topic (``TOPICS``).
(b) **Measured numbers.** Markdown never hand-writes a measured quantity: a decimal number with a
    unit (bits, bits/dim, nats, s, ms, %, x), a number of seconds, minutes or hours in words, or an
    integer speed-up ("10x faster"); the code cell beside the text prints it instead. Integers with
    bits or ms are left alone: "8 bits/dim" for a uniform model and "lags of 2-20 ms" are facts of
    the set-up, not measurements. Allowed: values from the literature, marked by a citation in the
    same sentence: an author with a year, "(Kingma and Dhariwal, 2018)", or "Child et al. (2019)".
(c) **Jargon.** Each term of ``JARGON`` is defined in the first notebook that uses it, in or before
    the first markdown cell that uses it. A definition is the term's first use in **bold**.

``check_*`` functions take the text and return the problems found, so the tests can show that
each check catches the errors it is meant for (on snippets of the original, wrong text).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LECTURES = ROOT / "lectures"

# A topic word and the lectures that teach it. The nearest topic word to a citation (same sentence,
# before it first, then after it) decides which lectures the citation may name.
TOPICS: dict[str, set[int]] = {
    "introduction": {0}, "course map": {0}, "MADE": {0}, "NADE": {0},
    "WaveNet": {1}, "causal convolution": {1}, "audio": {1},
    "PixelCNN": {2}, "blind spot": {2}, "masked convolution": {2},
    "VQ-VAE": {3}, "posterior collapse": {3}, "codebook": {3}, "latent-variable": {3}, "prior over": {3},
    "GPT": {4}, "bytes": {4}, "self-attention": {4, 5}, "attention": {4, 5},
    "Sparse Transformer": {5}, "DALL": {5}, "dVAE": {5}, "image transformer": {5},
    "change of variables": {6}, "change-of-variables": {6}, "toy flow": {6}, "two moons": {6},
    "RealNVP": {7}, "Glow": {7}, "image flow": {7}, "coupling": {6, 7}, "flow": {6, 7},
    "autoregressive": {0, 1, 2, 3, 4, 5},
}
_TOPIC_RE = re.compile("|".join(re.escape(t) for t in sorted(TOPICS, key=len, reverse=True)), re.IGNORECASE)
_TOPIC_BY_LOWER = {t.lower(): lectures for t, lectures in TOPICS.items()}

_NUMBER_LIST = r"\d{1,2}(?:\s*(?:,|and|or|–|—|-|to)\s*\d{1,2})*"
CITATION = re.compile(rf"\b(?:lectures?|notebooks?)\s*\(?\s*({_NUMBER_LIST})\)?"
                      rf"|\b(?:lectures?|notebooks?)\b[^.()\n]{{0,40}}\((\d{{2}})\)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s|\n\s*\n")


def lecture_numbers() -> set[int]:
    """The numbers of the notebooks in ``lectures/`` (``07_realnvp_glow.ipynb`` -> 7)."""
    return {int(p.name[:2]) for p in LECTURES.glob("[0-9][0-9]_*.ipynb")}


def cited_numbers(numbers: str) -> list[int]:
    """"01–05" -> [1, 2, 3, 4, 5]; "04 and 05" -> [4, 5]; "(06, 07)" -> [6, 7]."""
    out, tokens = [], re.split(r"\s*(,|and|or|–|—|-|to)\s*", numbers.strip())
    for i in range(0, len(tokens), 2):
        value = int(tokens[i])
        if i >= 2 and tokens[i - 1] in ("–", "—", "-", "to") and out:
            out.extend(range(out[-1] + 1, value + 1))
        else:
            out.append(value)
    return out


def _sentence(text: str, start: int, end: int) -> tuple[str, int]:
    """The sentence around text[start:end], and the offset of ``start`` within it."""
    lo = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
    hi = next((m.start() for m in _SENTENCE_END.finditer(text, end)), len(text))
    return text[lo:hi], start - lo


def citation_topics(text: str, start: int, end: int, several: bool) -> list[str]:
    """The topic words that decide a citation: for one number, the nearest (the last one before it in
    its sentence, else the first after); for several numbers ("lectures 04 and 05: the GPT, ...,
    DALL-E"), every topic word of the sentence."""
    sentence, offset = _sentence(text, start, end)
    if several:
        return [m.group(0) for m in _TOPIC_RE.finditer(sentence)]
    before = [m for m in _TOPIC_RE.finditer(sentence, 0, offset)]
    if before:
        return [before[-1].group(0)]
    after = _TOPIC_RE.search(sentence, offset + (end - start))
    return [after.group(0)] if after else []


def check_citations(text: str, where: str, existing: set[int]) -> list[str]:
    """Problems with the lecture citations of one text: numbers that are no lecture, or wrong topics."""
    problems = []
    for match in CITATION.finditer(text):
        numbers = cited_numbers(match.group(1) or match.group(2))
        missing = [n for n in numbers if n not in existing]
        quote = text[max(0, match.start() - 50):match.end() + 10].replace("\n", " ")
        if missing:
            problems.append(f"{where}: cites lecture(s) {missing}, which do not exist (have {sorted(existing)}): "
                            f"...{quote}...")
            continue
        topics = citation_topics(text, match.start(), match.end(), several=len(numbers) > 1)
        if topics:
            allowed = set().union(*(_TOPIC_BY_LOWER[t.lower()] for t in topics))
            wrong = [n for n in numbers if n not in allowed]
            if wrong:
                problems.append(f"{where}: cites lecture(s) {wrong} for {', '.join(map(repr, topics))}, taught in "
                                f"{sorted(allowed)}: ...{quote}...")
    return problems


UNIT = (r"(?:bits?(?:/|\s+per\s+)(?:dim|dimension|sample|byte|code|pixel|digit|token|image|image\s+token)s?"
        r"|bits?|nats?|%|ms|s|seconds?|minutes?|hours?|x)")
MEASURED = re.compile(
    rf"(?<![\w.$^_{{])\d+\.\d+\s*{UNIT}(?![\w/])"                               # 5.6 bits, 0.6x, 1.2 s
    r"|(?<![\w.$^_{])\d[\d,]*\s*(?:seconds?|minutes?|hours?|min)\b"               # 40 minutes
    r"|(?<![\w.$^_{])\d+(?:\.\d+)?\s*x(?=\s+(?:faster|slower|fewer|more|less|the|cheaper))"  # 10x faster
    r"|(?<![\w.$^_{])\d+(?:\.\d+)?\s*%",                                           # 95 %
    re.IGNORECASE)
LITERATURE = re.compile(r"\bet al\.|\b[A-Z][a-z]+(?: and [A-Z][a-z]+)?,? \(?(?:19|20)\d\d[a-z]?\)")


def check_measured_numbers(markdown: str, where: str) -> list[str]:
    """Hand-written measured quantities in one markdown text (sentences citing the literature excepted)."""
    problems = []
    for match in MEASURED.finditer(markdown):
        sentence, _ = _sentence(markdown, match.start(), match.end())
        if LITERATURE.search(sentence):
            continue
        problems.append(f"{where}: hand-written measured number {match.group(0)!r} in: {sentence.strip()[:160]!r}")
    return problems


# Each term: the words that count as a use, matched as whole words (case-sensitive for acronyms).
JARGON: dict[str, tuple[str, ...]] = {
    "bits/dim": ("bits/dim", "bits per dimension"),
    "perplexity": ("perplexity", "Perplexity"),
    "BPE": ("BPE", "byte-pair encoding", "byte pair encoding"),
    "logit-Laplace": ("logit-Laplace",),
    "CLIP reranking": ("CLIP",),
    "NICE": ("NICE",),
    "pre-LN": ("pre-LN",),
    "free bits": ("free bits",),
}


def _uses(term: str, text: str) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) for word in JARGON[term])


def _defines(term: str, text: str) -> bool:
    return any(_uses(term, bold) for bold in re.findall(r"\*\*(.+?)\*\*", text, re.DOTALL))


def check_jargon(notebooks: list[tuple[str, list[str]]]) -> list[str]:
    """Terms used before they are defined. ``notebooks``: (name, markdown cells), in course order.
    A term must be defined (in bold) in or before the first markdown cell that uses it."""
    problems = []
    for term in JARGON:
        for name, i, cell in ((name, i, cell) for name, cells in notebooks for i, cell in enumerate(cells)):
            if _defines(term, cell):
                break
            if _uses(term, cell):
                problems.append(f"{name}, markdown cell {i}: {term!r} is used before it is defined "
                                f"(define it at its first use, in bold)")
                break
    return problems


def markdown_cells(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]


def code_comments(path: Path) -> list[str]:
    """The comments of each code cell of a notebook (one string per cell; IPython magics skipped)."""
    out = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            out.append("\n".join(tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                                 if tok.type == tokenize.COMMENT))
    return out


def lecture_paths() -> list[Path]:
    return sorted(LECTURES.glob("[0-9][0-9]_*.ipynb"))


def library_comments(path: Path) -> str:
    """The docstrings and comments of one Python file, joined by blank lines."""
    source = path.read_text()
    pieces = [tok.string.lstrip("# ") for tok in tokenize.generate_tokens(io.StringIO(source).readline)
              if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                pieces.append(doc)
    return "\n\n".join(pieces)


# ---------------------------------------------------------------------------------------- the tests

def test_the_course_has_an_introduction_and_lectures_01_to_07():
    assert lecture_numbers() >= set(range(8)), sorted(lecture_numbers())


def test_lecture_citations_in_lectures_exist_and_name_the_right_notebook():
    existing = lecture_numbers()
    problems = [p for path in lecture_paths() for i, cell in enumerate(markdown_cells(path))
                for p in check_citations(cell, f"{path.name}, markdown cell {i}", existing)]
    assert not problems, "\n".join(problems)


def test_lecture_citations_in_library_docstrings_and_comments():
    existing = lecture_numbers()
    problems = [p for path in sorted((ROOT / "arflow").rglob("*.py"))
                for p in check_citations(library_comments(path), str(path.relative_to(ROOT)), existing)]
    assert not problems, "\n".join(problems)


def test_markdown_never_hand_writes_a_measured_number():
    problems = [p for path in lecture_paths() for i, cell in enumerate(markdown_cells(path))
                for p in check_measured_numbers(cell, f"{path.name}, markdown cell {i}")]
    assert not problems, "\n".join(problems)


def test_code_comments_in_lectures_never_hand_write_a_measured_number():
    # for example the TRAIN flag's "(about 4-6 minutes each in full)": the manifests hold the times
    problems = [p for path in lecture_paths() for i, comments in enumerate(code_comments(path))
                for p in check_measured_numbers(comments, f"{path.name}, code cell {i} (comments)")]
    assert not problems, "\n".join(problems)


def test_jargon_is_defined_at_its_first_use():
    problems = check_jargon([(path.name, markdown_cells(path)) for path in lecture_paths()])
    assert not problems, "\n".join(problems)


# ------------------------------------------------- the checks catch the errors they are meant for
# Snippets of the lectures' original, wrong text (issue 15), and right text that must pass.

WRONG_CITATIONS = [
    "Autoregressive models (lectures 01–06) compute $\\log p(\\mathbf{x})$ exactly.",
    "The next notebook (08) builds the image flows RealNVP and Glow from the same pieces.",
    "a Gated PixelCNN on pixels (256 intensities, the checkpoint of lecture 03) needs 784 steps",
    "A small GPT: a decoder-only transformer over tokens (bytes for text, in lecture 05).",
    "Figures of lectures 05 and 06: attention maps, masks of one pixel and of all pixels",
    "Figures of the flow lectures (07, 08), computed from the model code.",
    "The byte-level GPT of lecture 05 needs text.",
]
RIGHT_CITATIONS = [
    "Autoregressive models (lectures 01–05) compute $\\log p(\\mathbf{x})$ exactly.",
    "The next notebook (07) builds the image flows RealNVP and Glow from the same pieces.",
    "a Gated PixelCNN on pixels (256 intensities, the checkpoint of lecture 02) needs 784 steps",
    "Figures of lectures 04 and 05: attention maps, masks of one pixel and of all pixels",
    "Figures of the flow lectures (06, 07), computed from the model code.",
    "Lecture 04 built a GPT over bytes of text.",
]


@pytest.mark.parametrize("text", WRONG_CITATIONS)
def test_citation_check_catches_wrong_lecture_numbers(text):
    assert check_citations(text, "snippet", set(range(8))), text


@pytest.mark.parametrize("text", RIGHT_CITATIONS)
def test_citation_check_accepts_right_lecture_numbers(text):
    assert not check_citations(text, "snippet", set(range(8)))


def test_cited_ranges_expand():
    assert cited_numbers("01–05") == [1, 2, 3, 4, 5]
    assert cited_numbers("04 and 05") == [4, 5]
    assert cited_numbers("06, 07") == [6, 7]


WRONG_NUMBERS = [
    "trained for five minutes on one CPU thread (about 5.6 bits per sample on the test melody)",
    "after 2,000 steps of 32 digits on one CPU thread (about 40 minutes; 1.15 bits/dim on the test digits)",
    "`make bench` measured about 0.6x the dense step on one thread",
    "at 28x28 ($n = 784$) a training step is about 10x faster than the dense one",
    "The shipped RealNVP reaches 2.84 bits/dim and Glow 2.00 bits/dim.",
    "a redraw takes 0.34 s",
    "the sampler ran for 12 seconds",
    "# True: retrain RealNVP and Glow (20 steps each in fast mode; about 4-6 minutes each in full)",
]
RIGHT_NUMBERS = [
    "A model that knows nothing scores 8 bits/dim (uniform over 256 values).",
    "Two 3x3 layers on 28x28 digits, a 7x7 grid of 64 codes: at most $49 \\log_2 64 = 294$ bits.",
    "Glow (Kingma and Dhariwal, 2018) reports 1.05 bits/dim on MNIST.",
    "PixelCNNs reach about 0.8 bits/dim on full MNIST (van den Oord et al., 2016).",
    "The time printed above the figure, in the cell beside this text.",
]


@pytest.mark.parametrize("text", WRONG_NUMBERS)
def test_number_check_catches_hand_written_measurements(text):
    assert check_measured_numbers(text, "snippet"), text


@pytest.mark.parametrize("text", RIGHT_NUMBERS)
def test_number_check_accepts_theory_and_literature(text):
    assert not check_measured_numbers(text, "snippet"), text


def test_jargon_check_catches_use_before_definition():
    used_first = [("04.ipynb", ["GPT-2 operates on bytes (its BPE merges start from bytes).",
                                "**BPE** (byte-pair encoding) merges frequent pairs."])]
    assert check_jargon(used_first)
    defined_first = [("00.ipynb", ["**BPE** (byte-pair encoding) merges frequent pairs of tokens."]),
                     ("04.ipynb", ["its BPE merges start from bytes"])]
    assert not [p for p in check_jargon(defined_first) if "'BPE'" in p]


MADE_IMPLEMENTATION = re.compile(r"class\s+\w*(?:MADE|MaskedLinear)\w*|def\s+\w*made\w*\s*\(|MaskedLinear"
                                 r"|made_masks?", re.IGNORECASE)


def test_no_made_masks_in_what_students_get():
    # MADE's masks are a home assignment: lecture 00 draws only the dependency structure they must give
    # arflow/checks/ may name the contract (made_masks, MADE: 11_maf's visible tests call them), and is
    # checked for the answer itself by tests/test_maf_assignment.py.
    sources = {str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "arflow").rglob("*.py")
               if p.parent.name != "checks"}
    sources.update({p.name: "\n".join(c.source for c in nbformat.read(p, as_version=4).cells if c.cell_type == "code")
                    for p in lecture_paths()})
    found = {name: m.group(0) for name, text in sources.items() if (m := MADE_IMPLEMENTATION.search(text))}
    assert not found, found
    assert MADE_IMPLEMENTATION.search("class MADE(nn.Module):") and MADE_IMPLEMENTATION.search("def made_masks(d, h):")
