"""A similarity report across a class: which submissions share code, beyond the starter code.

``python -m autograder similarity --submitted DIR --assignment NAME --out report.html
[--threshold 0.6] [--top 20] [--course ROOT] [--noise 25]``

Works for any nbgrader assignment: the assignment's source notebooks (``ROOT/solutions/NAME/*.ipynb``)
say which cells are solution cells (nbgrader metadata ``solution: true``, by ``grade_id``); the
released notebooks (``ROOT/assignments/NAME/``) give the starter code of those cells.

1. **What is compared.** For each student (nbgrader's layout ``DIR/<student>/<NAME>/<notebook>.ipynb``),
   only the solution cells, matched to the source's by ``grade_id`` (else by the source cell's id),
   joined in the source's order. Folders and notebooks are opened without following symbolic links
   (``O_NOFOLLOW``), with a size limit; a link, an unreadable or oversized notebook, or a notebook
   without solution cells is skipped with a note in the report, never silently.
2. **Normalised.** copydetect's tokeniser (Pygments) already drops comments and whitespace (so
   indentation, blank lines and line breaks), replaces every identifier by ``V`` (names and
   attributes; function and class names by ``F`` and ``O``) and every string by ``S`` (so renaming
   variables or changing comments and quotes changes nothing). What it lacks, added here before it:
   docstrings and other bare string statements are blanked (copydetect keeps them as a token),
   trailing commas before a closing bracket are blanked (formatters such as black or ruff add
   them when they split a call over lines), and IPython magics and shell lines (``%time``, ``!pip``),
   which are not Python, are blanked. Blanking replaces characters by spaces, so every position in
   the normalised text is the same position in the student's text: the report shows the students'
   original lines.
3. **Starter code subtracted.** The released notebook's solution cells (signatures, docstrings,
   ``raise NotImplementedError()``) are copydetect's boilerplate: every k-gram of them is removed
   from every submission's fingerprints, so two students who only kept the starter code score 0.
4. **Every pair compared** with copydetect (winnowing, as MOSS does). k-grams of ``noise``
   (default 25, copydetect's default) characters of normalised code; the window is 1 (the guarantee
   threshold equals the noise threshold), which keeps every k-gram: the scores then do not depend
   on Python's per-process string hashing, so a report is reproducible, and the cost is small for
   notebook cells. A pair's score is copydetect's: the larger of the two fractions "tokens of one
   submission found in the other" (copydetect's report flags a pair on the same number).
5. **The report** lists the ``top`` most similar pairs whose score is at least ``threshold``, each
   with both submissions side by side, the matching code highlighted in the students' original
   text (copydetect's highlighter, HTML-escaped). It is one self-contained HTML file: inline CSS, no
   script, no image, font or style sheet fetched from anywhere (copydetect's own report loads
   Bootstrap from a CDN, so it is not used). Every student text and name is escaped.

A high score is a reason to look, not a verdict: short solutions to the same specification share
idioms, and submissions derived from the same code (say the course's samples, which are the
reference with one mistake each) are rightly similar.
"""

from __future__ import annotations

import argparse
import ast
import errno
import html
import io
import json
import os
import stat
import sys
import tokenize
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_LIMIT = 16 * 2**20  # bytes of one submitted notebook read at most
SOURCE_LIMIT = 2 * 2**20  # characters of solution code kept per submission


class SimilarityError(Exception):
    """Bad input: no such assignment, no submissions folder, ..."""


@dataclass
class Submission:
    """One student's solution cells: the original text and its normalised twin (same length)."""

    student: str  # the folder name, as on disk
    text: str = ""
    normalised: str = ""
    cells: list[str] = field(default_factory=list)  # grade ids found
    notes: list[str] = field(default_factory=list)


@dataclass
class PairScore:
    """copydetect's comparison of two submissions."""

    a: str
    b: str
    score: float  # max(similarity_a, similarity_b)
    similarity_a: float  # fraction of a's tokens (after the starter code) found in b
    similarity_b: float
    overlap: int  # tokens in common
    slices_a: object = None  # copydetect's 2 x N arrays of matching character ranges
    slices_b: object = None


@dataclass
class Report:
    assignment: str
    submissions: dict[str, Submission]
    pairs: list[PairScore]  # every pair compared, most similar first
    notes: list[str]  # skipped entries, unreadable notebooks, ...
    threshold: float
    top: int
    noise: int

    def flagged(self) -> list[PairScore]:
        return [p for p in self.pairs if p.score >= self.threshold][: self.top]

    def score(self, a: str, b: str) -> float:
        """The score of the pair (a, b), in either order."""
        for p in self.pairs:
            if {p.a, p.b} == {a, b}:
                return p.score
        raise KeyError(f"no pair {a!r}, {b!r}")


# ---------------------------------------------------------------- solution cells


def _meta(cell) -> dict:
    metadata = cell.get("metadata") if isinstance(cell, dict) else None
    meta = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return meta if isinstance(meta, dict) else {}


def _source(cell) -> str:
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    if isinstance(source, list):  # nbformat's on-disk form may be a list of lines
        source = "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def solution_cells(notebook: dict) -> list[tuple[str, str | None, str]]:
    """(grade_id, cell id, source) of each code cell marked ``solution: true`` in a (trusted) notebook."""
    cells = []
    for cell in notebook.get("cells", []):
        meta = _meta(cell)
        if cell.get("cell_type") == "code" and meta.get("solution") and isinstance(meta.get("grade_id"), str):
            cells.append((meta["grade_id"], cell.get("id"), _source(cell)))
    return cells


def _load_trusted(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SimilarityError(f"cannot read the notebook {str(path)!r}: {err}") from None


def assignment_notebooks(course: Path, assignment: str) -> dict[str, list[tuple[str, str | None, str]]]:
    """{notebook name: its solution cells} from ``course/solutions/<assignment>/``."""
    folder = course / "solutions" / assignment
    if not folder.is_dir():
        known = sorted(p.name for p in (course / "solutions").iterdir() if p.is_dir()) \
            if (course / "solutions").is_dir() else []
        raise SimilarityError(f"no assignment {assignment!r}: {str(folder)!r} is not a folder (the nbgrader source "
                              f"of an assignment); assignments there: {', '.join(known) or 'none'}")
    notebooks = {p.stem: solution_cells(_load_trusted(p)) for p in sorted(folder.glob("*.ipynb"))}
    notebooks = {name: cells for name, cells in notebooks.items() if cells}
    if not notebooks:
        raise SimilarityError(f"no solution cells (nbgrader metadata solution: true) in {str(folder)!r}/*.ipynb")
    return notebooks


def starter_code(course: Path, assignment: str, notebooks: dict) -> str:
    """The released notebooks' solution cells (what every student starts from), or "" with no release."""
    parts = []
    for name, cells in notebooks.items():
        path = course / "assignments" / assignment / f"{name}.ipynb"
        if not path.is_file():
            continue
        released = {gid: src for gid, _, src in solution_cells(_load_trusted(path))}
        parts += [released[gid] for gid, _, _ in cells if gid in released]
    return "\n\n".join(parts)


# ---------------------------------------------------------------- reading submissions, safely


def _open_dir(name: str, parent_fd: int | None) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    return os.open(name, flags, dir_fd=parent_fd) if parent_fd is not None else os.open(name, flags)


def _read_notebook(name: str, dir_fd: int) -> bytes:
    """A regular file's bytes, never through a link, at most NOTEBOOK_LIMIT."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    with open(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        data = handle.read(NOTEBOOK_LIMIT + 1)
    if len(data) > NOTEBOOK_LIMIT:
        raise ValueError(f"larger than the {NOTEBOOK_LIMIT // 2**20} MB limit")
    return data


def _why(err: OSError) -> str:
    """An OSError as a short reason; O_NOFOLLOW refuses a link with ELOOP."""
    if err.errno == errno.ELOOP:
        return "a symbolic link, not followed"
    if err.errno == errno.ENOENT:
        return "not submitted"
    return os.strerror(err.errno or 0)


def _shown(name: str) -> str:
    """A file name as text for a person (control characters visible); escaped later for HTML."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def read_submission(top_fd: int, student: str, assignment: str, notebooks: dict) -> Submission:
    """The student's solution cells, in the source's order, each headed by a comment naming it."""
    sub = Submission(student)
    try:
        student_fd = _open_dir(student, top_fd)
    except OSError as err:
        sub.notes.append(f"the folder could not be opened ({_why(err)})")
        return sub
    parts = []
    try:
        try:
            folder_fd = _open_dir(assignment, student_fd)
        except OSError as err:
            sub.notes.append(f"no {assignment}/ folder ({_why(err)})")
            return sub
        try:
            for name, cells in notebooks.items():
                try:
                    nb = json.loads(_read_notebook(f"{name}.ipynb", folder_fd))
                    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
                        raise ValueError("not a notebook")
                except (OSError, ValueError, RecursionError) as err:
                    why = _why(err) if isinstance(err, OSError) else str(err)[:120]
                    sub.notes.append(f"{name}.ipynb could not be read ({why}): skipped")
                    continue
                code = [c for c in nb["cells"] if isinstance(c, dict) and c.get("cell_type") == "code"]
                for gid, cell_id, _ in cells:
                    match = next((c for c in code if _meta(c).get("grade_id") == gid), None)
                    if match is None and cell_id:  # metadata removed: the cell id survives in nbformat >= 4.5
                        match = next((c for c in code if c.get("id") == cell_id), None)
                    if match is None:
                        sub.notes.append(f"{name}.ipynb: no solution cell {gid!r}")
                        continue
                    sub.cells.append(gid)
                    parts.append(f"# ---- {name}.ipynb, cell {gid} ----\n{_source(match)}\n")
        finally:
            os.close(folder_fd)
    finally:
        os.close(student_fd)
    sub.text = "\n".join(parts)[:SOURCE_LIMIT]
    sub.normalised = normalise(sub.text)
    return sub


def read_class(submitted: Path, assignment: str, notebooks: dict) -> tuple[dict[str, Submission], list[str]]:
    """Every student folder of ``submitted`` (links, files and hidden entries skipped with a note)."""
    if not submitted.is_dir():
        raise SimilarityError(f"no submissions folder {str(submitted)!r} (expected nbgrader's "
                              f"<submitted>/<student>/{assignment}/<notebook>.ipynb)")
    notes, subs = [], {}
    top = os.open(submitted, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with os.scandir(top) as scan:
            entries = sorted(scan, key=lambda e: e.name)
        for entry in entries:
            if entry.is_symlink():
                notes.append(f"{_shown(entry.name)}: a symbolic link, not followed")
            elif entry.name.startswith("."):
                notes.append(f"{_shown(entry.name)}: a hidden entry, skipped")
            elif not entry.is_dir(follow_symlinks=False):
                notes.append(f"{_shown(entry.name)}: not a folder, skipped")
            else:
                sub = read_submission(top, entry.name, assignment, notebooks)
                notes += [f"{_shown(entry.name)}: {n}" for n in sub.notes]
                if sub.cells:
                    subs[entry.name] = sub
                else:
                    notes.append(f"{_shown(entry.name)}: no solution cell found, not compared")
    finally:
        os.close(top)
    return subs, notes


# ---------------------------------------------------------------- normalisation


def _offsets(text: str) -> list[int]:
    """Character offset of the start of each line (1-based line numbers index it)."""
    starts, pos = [0, 0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        starts.append(pos)
    return starts


def _blank(chars: list[str], start: int, end: int) -> None:
    for i in range(start, min(end, len(chars))):
        if chars[i] != "\n":
            chars[i] = " "


def normalise(code: str) -> str:
    """``code`` with what copydetect's tokeniser does not remove blanked (same length, same lines).

    Blanks IPython magics and shell lines, docstrings and other bare string statements, and
    trailing commas before a closing bracket (see the module's docstring).
    """
    lines = code.splitlines(keepends=True)
    chars = list(code)
    starts = _offsets(code)
    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith(("%", "!")):
            _blank(chars, starts[number], starts[number] + len(line.rstrip("\r\n")))
    python = "".join(chars)
    try:
        tree = ast.parse(python)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        tree = None  # still compared, with copydetect's own normalisation only
    if tree is not None:
        encoded = [line.encode("utf-8") for line in python.splitlines(keepends=True)]

        def position(line: int, col_bytes: int) -> int:  # ast columns count UTF-8 bytes
            return starts[line] + len(encoded[line - 1][:col_bytes].decode("utf-8", "replace"))

        for node in ast.walk(tree):
            if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str) and node.end_lineno is not None):
                _blank(chars, position(node.lineno, node.col_offset),
                       position(node.end_lineno, node.end_col_offset))
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO("".join(chars)).readline)
                  if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT,
                                    tokenize.DEDENT)]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        tokens = []
    for token, following in zip(tokens, tokens[1:]):
        if token.string == "," and following.string in (")", "]", "}"):
            start = starts[token.start[0]] + token.start[1]
            _blank(chars, start, start + 1)
    return "".join(chars)


# ---------------------------------------------------------------- comparison


def _fingerprint(name: str, code: str, noise: int, boilerplate=None):
    from copydetect import CodeFingerprint

    # window 1: every k-gram is a fingerprint (deterministic scores; see the module's docstring)
    return CodeFingerprint(f"{name}.py", noise, 1, boilerplate=boilerplate, language="python",
                           fp=io.StringIO(code))


def compare(subs: dict[str, Submission], starter: str, noise: int = 25) -> list[PairScore]:
    """Every pair of submissions, most similar first (copydetect's compare_files on the normalised code)."""
    import numpy as np
    from copydetect import compare_files

    boilerplate = np.unique(np.array(list(_fingerprint("starter", normalise(starter), noise).hashes))) \
        if starter.strip() else None
    prints = {s: _fingerprint(s, sub.normalised, noise, boilerplate) for s, sub in subs.items()}
    pairs = []
    for a, b in combinations(sorted(subs), 2):
        overlap, (sim_a, sim_b), (slices_a, slices_b) = compare_files(prints[a], prints[b])
        pairs.append(PairScore(a, b, float(max(sim_a, sim_b)), float(sim_a), float(sim_b), int(overlap),
                               slices_a, slices_b))
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return pairs


def similarity_report(submitted: str | Path, assignment: str, course: str | Path = ROOT, threshold: float = 0.6,
                      top: int = 20, noise: int = 25) -> Report:
    """Read the class, compare every pair; the :class:`Report` (write it with :func:`write_html`)."""
    if not 0 <= threshold <= 1:
        raise SimilarityError(f"--threshold must be between 0 and 1, got {threshold}")
    if top < 1 or noise < 5:
        raise SimilarityError("--top must be >= 1 and --noise >= 5")
    course = Path(course)
    notebooks = assignment_notebooks(course, assignment)
    subs, notes = read_class(Path(submitted), assignment, notebooks)
    starter = starter_code(course, assignment, notebooks)
    if not starter:
        notes.append(f"no released notebook in {course / 'assignments' / assignment}: no starter code subtracted")
    return Report(assignment, subs, compare(subs, starter, noise), notes, threshold, top, noise)


# ---------------------------------------------------------------- HTML

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
table.pairs { border-collapse: collapse; margin: 1em 0; }
table.pairs td, table.pairs th { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }
.side { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1em; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 0.6em; overflow-x: auto; font-size: 12px; }
.highlight-red { background: #f6c6c6; } .highlight-green { background: #c6f0c6; }
details { margin: 0.8em 0; } summary { cursor: pointer; font-weight: 600; }
.note { color: #7a4a00; }
"""


def _highlight(text: str, slices, css_class: str) -> str:
    from copydetect.utils import highlight_overlap

    if slices is None or len(slices) == 0 or slices.shape[-1] == 0:
        return html.escape(text)
    marked, _ = highlight_overlap(text, slices, f"<span class='{css_class}'>", "</span>", escape_html=True)
    return marked


def render_html(report: Report) -> str:
    """The report as one self-contained page (nothing fetched when it is opened; all student text escaped)."""
    e = html.escape
    flagged = report.flagged()
    scores = [p.score for p in report.pairs]
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">",
           f"<title>Similarity report: {e(report.assignment)}</title><style>{CSS}</style></head><body>",
           f"<h1>Similarity report: {e(report.assignment)}</h1>",
           f"<p>{len(report.submissions)} submissions compared ({len(report.pairs)} pairs), solution cells only, "
           f"starter code subtracted, k-grams of {report.noise} normalised characters (copydetect). "
           f"{len(flagged)} pair(s) at or above the threshold {report.threshold:.2f} shown"
           f"{f' (the top {report.top})' if len(flagged) == report.top else ''}."
           + (f" Highest score {max(scores):.2f}, median {sorted(scores)[len(scores) // 2]:.2f}." if scores else "")
           + "</p><p>A score is the larger of the two fractions &ldquo;code of one found in the other&rdquo;; "
           "a reason to look, not a verdict.</p>"]
    if flagged:
        out.append("<table class='pairs'><tr><th>#</th><th>score</th><th>student A</th><th>A in B</th>"
                   "<th>student B</th><th>B in A</th><th>tokens in common</th></tr>")
        for i, p in enumerate(flagged, 1):
            out.append(f"<tr><td><a href='#pair{i}'>{i}</a></td><td>{p.score:.2f}</td><td>{e(_shown(p.a))}</td>"
                       f"<td>{p.similarity_a:.2f}</td><td>{e(_shown(p.b))}</td><td>{p.similarity_b:.2f}</td>"
                       f"<td>{p.overlap}</td></tr>")
        out.append("</table>")
        for i, p in enumerate(flagged, 1):
            left = _highlight(report.submissions[p.a].text, p.slices_a, "highlight-red")
            right = _highlight(report.submissions[p.b].text, p.slices_b, "highlight-green")
            out.append(f"<details id='pair{i}'{' open' if i <= 3 else ''}><summary>#{i} {e(_shown(p.a))} &harr; "
                       f"{e(_shown(p.b))}: {p.score:.2f}</summary><div class='side'>"
                       f"<div><h3>{e(_shown(p.a))}</h3><pre><code>{left}</code></pre></div>"
                       f"<div><h3>{e(_shown(p.b))}</h3><pre><code>{right}</code></pre></div></div></details>")
    else:
        out.append("<p>No pair reaches the threshold.</p>")
    if report.notes:
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li class='note'>{e(n)}</li>" for n in report.notes) + "</ul>")
    out.append("</body></html>\n")
    return "\n".join(out)


def write_html(report: Report, out: str | Path) -> Path:
    out = Path(out)
    if not out.parent.is_dir():
        raise SimilarityError(f"cannot write {str(out)!r}: the folder {str(out.parent)!r} does not exist")
    out.write_text(render_html(report), encoding="utf-8")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder similarity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--submitted", required=True, help="nbgrader's submitted/ folder: <student>/<assignment>/")
    parser.add_argument("--assignment", required=True, help="the assignment's name, as in solutions/<name>/")
    parser.add_argument("--out", required=True, help="the HTML report to write")
    parser.add_argument("--threshold", type=float, default=0.6, help="show pairs with a score at least this")
    parser.add_argument("--top", type=int, default=20, help="show at most this many pairs")
    parser.add_argument("--course", default=str(ROOT), help="the course folder holding solutions/ and assignments/")
    parser.add_argument("--noise", type=int, default=25, help="k-gram length in normalised characters")
    args = parser.parse_args(argv)
    try:
        report = similarity_report(args.submitted, args.assignment, args.course, args.threshold, args.top,
                                   args.noise)
        write_html(report, args.out)
    except SimilarityError as err:
        print(f"similarity: {err}", file=sys.stderr)
        return 2
    for note in report.notes:
        print(f"note: {note}")
    flagged = report.flagged()
    print(f"{len(report.submissions)} submissions, {len(report.pairs)} pairs; {len(flagged)} at or above "
          f"{args.threshold:.2f}:")
    for p in flagged:
        print(f"  {p.score:.3f}  {_shown(p.a)}  {_shown(p.b)}  ({p.similarity_a:.2f} / {p.similarity_b:.2f}, "
              f"{p.overlap} tokens)")
    print(f"report written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
