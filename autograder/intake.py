"""Intake: take what grading uses from a submissions folder, and nothing else, safely.

The grader runs as root before any jail, over folders that students made. So nothing under the
submissions folder is followed or opened beyond what is taken:

- every entry of the submissions folder is listed without following links; a link (the student
  folder, its assignment folder, a file) is refused with a note, a plain file or a hidden entry
  is reported, and every entry gets a row in ``grades.csv`` (:class:`Entry`);
- folders and files are opened relative to their parent's descriptor with ``O_NOFOLLOW``, so a
  link swapped in between a check and a use is refused too;
- only two files are taken, by name: the notebook (or the only notebook, if renamed) and the
  weights. The notebook's limit counts what grading uses (its cells' sources), not its stored
  outputs, which autograding discards anyway; both are read with bounded memory;
- a student id may be anything a file name can be (tabs, newlines, 250 bytes, a leading ``=``,
  ``_template``): :func:`student_key` derives the name used for files and the gradebook, and the
  raw id appears only escaped (``grades.csv``, ``summary.md``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

#: a student id used as it is for file names and the gradebook; anything else is encoded
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")


@dataclass(frozen=True)
class IntakeLimits:
    """What intake reads at most (autograder/README.md says why)."""

    notebook_file_bytes: int = 64 * 2**20  # the notebook file as submitted, stored outputs included
    source_bytes: int = 2 * 2**20  # the notebook's cells' sources: what grading uses
    weights_bytes: int = 20 * 2**20  # the weights file (the default model's are 0.45 MB)
    listed_entries: int = 10_000  # entries of one assignment folder looked at


@dataclass
class Entry:
    """One entry of the submissions folder: a student's folder, or something that cannot be graded."""

    name: str  # as on disk: may hold anything a file name can
    key: str  # safe for paths and the gradebook (see student_key)
    problem: str = ""  # why it cannot be graded ("" when it is a student folder)


@dataclass
class Taken:
    """What intake took of one student: the files written to the staging folder, and notes."""

    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timestamp: str | None = None  # nbgrader's timestamp.txt (when it was submitted), for late penalties


def student_key(name: str) -> str:
    """The name used for a student's files and gradebook entries: the id itself when it is plain
    (letters, digits and ``_.@+-``, not leading ``_`` or ``.``, at most 64 characters); otherwise
    ``_`` + a readable part + a hash, which can never equal a plain id or another derived one."""
    if SAFE_ID.fullmatch(name):
        return name
    readable = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:24]
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"_{readable}-{digest}" if readable else f"_{digest}"


def shown(name: str, limit: int = 80) -> str:
    """A student id as text for a person: control characters visible, long ids cut."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def list_entries(submitted: Path) -> list[Entry]:
    """Every entry of ``submitted``, links never followed, each with the reason it can't be graded, if any."""
    entries = []
    with os.scandir(submitted) as scan:
        for item in scan:
            name = item.name
            if item.is_symlink():
                problem = "is a symbolic link: not followed, not graded"
            elif name.startswith("."):
                problem = "is a hidden entry (its name starts with '.'): not graded"
            elif not item.is_dir(follow_symlinks=False):
                problem = "is not a folder (a student's submission is a folder): not graded"
            else:
                problem = ""
            entries.append(Entry(name, student_key(name), problem))
    keys: dict[str, Entry] = {}
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.key in keys:  # only a hash collision could do this; never let two students share files
            entry.problem = entry.problem or "its derived name collides with another student's: not graded"
        keys.setdefault(entry.key, entry)
    return sorted(entries, key=lambda e: e.name)


def _open_dir(name: str, parent_fd: int) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)


def _read_regular(name: str, dir_fd: int, limit: int) -> tuple[bytes | None, int]:
    """(content, size) of a regular file, never through a link; content None when larger than ``limit``."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    with open(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise IsADirectoryError(f"{name} is not a regular file")
        if info.st_size > limit:
            return None, info.st_size
        data = handle.read(limit + 1)
        return (None if len(data) > limit else data), len(data)


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


def _strip_notebook(data: bytes, limits: IntakeLimits) -> tuple[bytes, str]:
    """The notebook without stored outputs and attachments, and a problem ("" if none).

    A notebook that is not JSON is passed on as it is (the worker reports it); one whose cells'
    sources exceed the limit is not graded."""
    try:
        nb = json.loads(data)
        cells = nb.get("cells") if isinstance(nb, dict) else None
        if not isinstance(cells, list):
            return data, ""
        size = 0
        for cell in cells:
            if not isinstance(cell, dict):
                continue
            if cell.get("cell_type") == "code":
                cell["outputs"], cell["execution_count"] = [], None
            cell.pop("attachments", None)
            source = cell.get("source", "")
            size += sum(len(s) for s in source) if isinstance(source, list) else len(str(source))
    except (ValueError, RecursionError, TypeError, AttributeError):
        return data, ""
    if size > limits.source_bytes:
        return b"", (f"the notebook's cells hold {_mb(size)} of code and text, more than the "
                     f"{_mb(limits.source_bytes)} limit: not graded")
    return json.dumps(nb).encode(), ""


def take(submitted: Path, entry: Entry, assignment: str, notebook: str, dest: Path,
         limits: IntakeLimits = IntakeLimits()) -> Taken:
    """Copy the notebook and the weights of ``entry`` into ``dest`` (a fresh folder of the grader's).

    Raises :class:`IntakeError` with a sentence for the feedback when nothing can be graded."""
    taken = Taken()
    dest.mkdir(parents=True, exist_ok=True)
    top = os.open(submitted, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            student_fd = _open_dir(entry.name, top)
        except OSError as err:
            raise IntakeError(f"the submission folder could not be opened ({os.strerror(err.errno)})") from None
        try:
            try:
                folder_fd = _open_dir(assignment, student_fd)
            except FileNotFoundError:
                raise IntakeError(f"no {assignment}/ folder was submitted") from None
            except OSError as err:
                try:
                    link = stat.S_ISLNK(os.stat(assignment, dir_fd=student_fd, follow_symlinks=False).st_mode)
                except OSError:
                    link = False
                why = "is a symbolic link" if link else f"could not be opened ({os.strerror(err.errno)})"
                raise IntakeError(f"{assignment}/ {why}: not followed, not graded") from None
            try:
                _take_files(folder_fd, assignment, notebook, dest, limits, taken)
            finally:
                os.close(folder_fd)
        finally:
            os.close(student_fd)
    finally:
        os.close(top)
    return taken


def _take_files(folder_fd: int, assignment: str, notebook: str, dest: Path, limits: IntakeLimits,
                taken: Taken) -> None:
    wanted_nb, wanted_weights = f"{notebook}.ipynb", f"{notebook}.pth"
    notebooks, links, odd, others, listed = [], [], [], 0, 0
    with os.scandir(folder_fd) as scan:
        for item in scan:
            listed += 1
            if listed > limits.listed_entries:
                taken.notes.append(f"more than {limits.listed_entries} entries in {assignment}/: "
                                   "the rest not looked at")
                break
            if item.name == TIMESTAMP:
                continue  # nbgrader's own file, read below
            if item.name in (wanted_nb, wanted_weights) or item.name.endswith(".ipynb"):
                if item.is_symlink():
                    links.append(item.name)
                elif not item.is_file(follow_symlinks=False):  # a folder, a FIFO, a device: never opened
                    odd.append(item.name)
                elif item.name.endswith(".ipynb"):
                    notebooks.append(item.name)
            else:
                others += 1
    for name in sorted(links):
        taken.notes.append(f"{shown(name)} is a symbolic link: not taken")
    for name in sorted(odd):
        taken.notes.append(f"{shown(name)} is not a regular file: not taken")
    if others:
        taken.notes.append(f"{others} other file(s) or folder(s) in {assignment}/ were ignored (only {wanted_nb} "
                           f"and {wanted_weights} are graded)")
    taken.timestamp = _read_timestamp(folder_fd, taken)
    chosen = wanted_nb if wanted_nb in notebooks else None
    if chosen is None and len(notebooks) == 1:
        chosen = notebooks[0]
        taken.notes.append(f"the notebook was renamed: graded '{shown(chosen)}' as {wanted_nb}")
    elif chosen is None and notebooks:
        taken.notes.append(f"no {wanted_nb}, and {len(notebooks)} other notebooks: none graded")
    elif chosen is None and wanted_nb not in links + odd:
        taken.notes.append(f"no {wanted_nb} was submitted")
    if chosen is not None:
        try:
            data, size = _read_regular(chosen, folder_fd, limits.notebook_file_bytes)
        except OSError as err:
            data, size = None, 0
            taken.notes.append(f"{shown(chosen)} could not be read ({os.strerror(err.errno or 0)}): not graded")
        else:
            if data is None:
                taken.notes.append(f"{shown(chosen)} is {_mb(size)}, larger than the "
                                   f"{_mb(limits.notebook_file_bytes)} limit on notebook files: not graded")
        if data is not None:
            stripped, problem = _strip_notebook(data, limits)
            if problem:
                taken.notes.append(problem)
            else:
                (dest / wanted_nb).write_bytes(stripped)
                taken.files[wanted_nb] = dest / wanted_nb
    if wanted_weights in links + odd:
        return
    try:
        data, size = _read_regular(wanted_weights, folder_fd, limits.weights_bytes)
    except FileNotFoundError:
        return  # the checks say "pixelcnn.pth was not submitted"
    except OSError as err:
        taken.notes.append(f"{wanted_weights} could not be read ({os.strerror(err.errno or 0)}): not taken")
        return
    if data is None:
        taken.notes.append(f"{wanted_weights} is {_mb(size)}, larger than the {_mb(limits.weights_bytes)} limit "
                           "on submitted files: not graded")
        return
    (dest / wanted_weights).write_bytes(data)
    taken.files[wanted_weights] = dest / wanted_weights


TIMESTAMP = "timestamp.txt"  # written by nbgrader collect/submit: when the student submitted


def _read_timestamp(folder_fd: int, taken: Taken) -> str | None:
    """The submission time in nbgrader's ``timestamp.txt`` (a regular file of at most 256 bytes that
    nbgrader can parse), as ISO text; None when absent, with a note when it is unusable."""
    from nbgrader.utils import parse_utc

    try:
        data, _ = _read_regular(TIMESTAMP, folder_fd, 256)
    except FileNotFoundError:
        return None
    except OSError:
        taken.notes.append(f"{TIMESTAMP} could not be read (a link or not a file): the submission counts as on time")
        return None
    try:
        return parse_utc(data.decode("utf-8").strip()).isoformat() if data is not None else None
    except (UnicodeDecodeError, ValueError, TypeError, OverflowError):
        taken.notes.append(f"{TIMESTAMP} does not hold a time nbgrader can read: the submission counts as on time")
        return None


class IntakeError(RuntimeError):
    """Nothing of this submission can be graded; the message says why, for the feedback."""


def fingerprint(staged: Taken, grader_files: list[Path]) -> str:
    """sha256 of what was taken (names and contents) and of the grader itself."""
    digest = hashlib.sha256()
    for path in grader_files:
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    for name in sorted(staged.files):
        digest.update(b"taken\0" + name.encode() + b"\0" + hashlib.sha256(staged.files[name].read_bytes()).digest())
    for note in staged.notes:
        digest.update(b"note\0" + note.encode())
    if staged.timestamp:
        digest.update(b"timestamp\0" + staged.timestamp.encode())
    return digest.hexdigest()
