"""The parent side of the black box: start the student's code in a separate process and talk to it.

:class:`Box` copies ``sandbox_child.py`` and the student's cells (and weights file) into a
fresh jail (:mod:`autograder.jail`: an allowlist root without the grader's files, no network,
a uid of its own, memory/file/process limits), starts ``python -I sandbox_child.py``
there with one torch thread, no CUDA and a scrubbed environment, and exchanges framed messages (JSON headers, ``.npz``
payloads loaded with ``allow_pickle=False``; never pickle) with a time limit on every
answer. Anything that goes wrong (a crash, a timeout, garbage on the channel) raises
:class:`BoxError`; the checks turn that into zero points with the reason.

Every reply is capped at what its probe needs (the probes' ``reply_cap``, computed from the request's
arrays), refused as soon as a larger length is announced, and read into one preallocated buffer,
so a submission cannot make the grader hold more than a probe's answer. The reasons this module
writes into :class:`BoxError` and :class:`StudentError` are the grader's own sentences; what the
student's code said (its exception message, its printed output) is kept apart, on the exception's
``student_text`` and ``log`` attributes, for the visible checks and the instructor's log.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import os
import re
import selectors
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from arflow.checks import protocol
from arflow.checks.box import BUILTIN_EXCEPTIONS, ProbeCaller, StudentError

from .jail import Jail, Limits
from .paths import REPO

__all__ = ["BUILTIN_EXCEPTIONS", "Box", "BoxError", "BoxStartError", "StudentError", "next_slot"]

CHILD = Path(__file__).with_name("sandbox_child.py")
MAX_HEADER_BYTES = 1 << 20
READ_CHUNK = 1 << 22
_SLOTS = itertools.count()  # a uid of its own for every jail that may run at the same time


def next_slot(offset: int = 0) -> int:
    """A jail slot (uid) for this process: concurrent grading workers get disjoint ranges of 100
    (``ARFLOW_JAIL_SLOT_BASE``), each cycling within its own range."""
    base = int(os.environ.get("ARFLOW_JAIL_SLOT_BASE", "0"))
    return (offset + base + next(_SLOTS) % 100) % 4000




@functools.cache
def compile_course_library() -> bool:
    """Write the bytecode of ``arflow/`` beside its sources, once per process (up-to-date files are
    left alone); False where that folder cannot be written.

    Every box imports the course library (the notebook's setup cell does) from a read-only folder
    and may not write bytecode (``PYTHONDONTWRITEBYTECODE``, as ``make`` sets it everywhere): without
    these files each box compiled ``arflow`` from source again, about 0.5 CPU-s per submission.
    Python checks each file against its source's size and time, so a stale one is never used.
    """
    import compileall

    try:
        return bool(compileall.compile_dir(str(REPO / "arflow"), quiet=2))
    except OSError:
        return False


class _BufferReader(io.RawIOBase):
    """A read-only, seekable file over a buffer, without copying it (``io.BytesIO`` would)."""

    def __init__(self, buffer: bytearray):
        super().__init__()
        self._view, self._pos = memoryview(buffer), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        n = min(len(target), len(self._view) - self._pos)
        target[:n] = self._view[self._pos:self._pos + n]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._view.release()
        super().close()


def load_arrays(buffer: bytearray) -> dict[str, np.ndarray]:
    """The numeric arrays of an ``.npz`` payload (``allow_pickle=False``); BoxError for anything else."""
    try:
        with _BufferReader(buffer) as reader, np.load(reader, allow_pickle=False) as archive:
            out = {key: archive[key] for key in archive.files}
    except Exception:
        raise BoxError("malformed arrays from the submission's process") from None
    if not all(isinstance(a, np.ndarray) and a.dtype.kind in "biuf" for a in out.values()):
        raise BoxError("the submission's process answered arrays that are not numbers")
    return out


class BoxError(RuntimeError):
    """The student's process died, hung, or answered something that is not a valid reply.

    The message is the grader's own; ``log`` holds the end of what the process printed, for the
    instructor's log only (never for reports: a submission could print probe data there).
    """

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


class Box(ProbeCaller):
    """A running student process. Use as a context manager; ``request`` sends one probe."""

    def __init__(self, cells: list[dict], probes: ModuleType, weights: str | os.PathLike | None = None,
                 timeout: float = 120.0, total_timeout: float = 900.0, python: str | None = None):
        """``probes``: the assignment's probes module (copied alone into the jail); ``weights``: the
        submission's weights file, given to the probes under its own name."""
        compile_course_library()
        self.timeout, self.deadline = timeout, time.monotonic() + total_timeout
        self.probes = probes
        spec = {"cells": cells, "weights": Path(weights).name if weights else None}
        files = {"sandbox_child.py": CHILD, "protocol.py": Path(protocol.__file__), "probes.py": Path(probes.__file__),
                 "cells.json": json.dumps(spec).encode(), **({Path(weights).name: weights} if weights else {})}
        env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
               "ARFLOW_DEVICE": "cpu", "MPLBACKEND": "Agg", "NBGRADER_EXECUTION": "autograde",
               "PYTHONDONTWRITEBYTECODE": "1"}
        # The jail (autograder/jail.py): an allowlist root, no network, a uid of its own,
        # memory, file-size and process limits; every process it starts dies with it.
        self.jail = Jail(files, limits=Limits(wall_seconds=total_timeout), slot=next_slot(), env=env)
        self.workdir = self.jail.work
        self.stderr_path = self.jail.staging / "stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.process = self.jail.start([python or sys.executable, "-I", "sandbox_child.py"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=self._stderr)
        try:
            self.hello = self.request({"op": "hello"}, timeout=max(timeout, 120.0))[0]
        except BoxError as err:
            cell = self._running_cell()
            self.close()
            raise BoxStartError(str(err), cell, log=err.log) from None
        except BaseException:
            self.close()
            raise

    def _running_cell(self) -> str | None:
        """The cell the child was running when it stopped answering (from its progress lines)."""
        try:
            self._stderr.flush()
            text = self.stderr_path.read_bytes()[-(1 << 20):].decode(errors="replace")
        except OSError:
            return None
        found = re.findall(r"^\[arflow-box\] running cell (\w+)$", text, flags=re.M)
        return found[-1] if found else None

    # ------------------------------------------------------------------ plumbing
    def _read_into(self, buffer: bytearray, deadline: float) -> bytearray:
        """Fill ``buffer`` from the child's stdout (in place: no chunks to join), or raise BoxError."""
        fd, view, filled = self.process.stdout.fileno(), memoryview(buffer), 0
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(fd, selectors.EVENT_READ)
                while filled < len(view):
                    left = deadline - time.monotonic()
                    if left <= 0 or not selector.select(left):
                        raise BoxError(f"no answer within the time limit ({self.timeout:.0f} s per probe)",
                                       self.stderr_tail())
                    n = os.readv(fd, [view[filled:filled + READ_CHUNK]])
                    if not n:
                        raise BoxError("the process running the submission died" + self._how_it_ended(),
                                       self.stderr_tail())
                    filled += n
        finally:
            view.release()
        return buffer

    def _read(self, n: int, deadline: float) -> bytes:
        return bytes(self._read_into(bytearray(n), deadline))

    def _how_it_ended(self) -> str:
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return ""
        if self.jail.jailed and code > 128:  # the jail reports death by signal N as 128 + N
            code = -(code - 128)
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f" (killed by {name})"
        return f" (exit status {code})"

    def stderr_tail(self, n: int = 600) -> str:
        """The end of what the child printed: for the instructor's log, never for a report."""
        try:
            self._stderr.flush()
            text = self.stderr_path.read_bytes()[-4 * n:].decode(errors="replace")
        except (OSError, ValueError):
            return ""
        # The box's own progress lines say nothing.
        return re.sub(r"^\[arflow-box\] running cell \w+$", "", text, flags=re.M).strip()[-n:]

    def _send(self, header: dict, arrays: dict[str, np.ndarray] | None = None) -> None:
        buffer = io.BytesIO()
        if arrays:
            np.savez(buffer, **arrays)
        head = json.dumps(header).encode()
        try:
            self.process.stdin.write(struct.pack(">I", len(head)) + head + struct.pack(">Q", buffer.tell()))
            self.process.stdin.write(buffer.getbuffer())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as err:
            raise BoxError(f"could not talk to the submission's process ({type(err).__name__})",
                           self.stderr_tail()) from None

    def _receive(self, deadline: float, cap: int, callback_cap: int | None) -> tuple[dict, dict[str, np.ndarray]]:
        """One message from the child: a reply (payload at most ``cap`` bytes) or, where
        ``callback_cap`` is given, a call back to the grader (at most ``callback_cap``)."""
        (hlen,) = struct.unpack(">I", self._read(4, deadline))
        if hlen > MAX_HEADER_BYTES:
            raise BoxError("malformed answer from the submission's process")
        try:
            reply = json.loads(self._read(hlen, deadline).decode())
        except ValueError:
            raise BoxError("malformed answer from the submission's process") from None
        if not isinstance(reply, dict) or ("callback" in reply and callback_cap is None):
            raise BoxError("malformed answer from the submission's process")
        limit = callback_cap if "callback" in reply else cap
        (plen,) = struct.unpack(">Q", self._read(8, deadline))
        if plen > limit:  # refused before anything is allocated for it
            raise BoxError(f"the submission's process announced an answer of {plen} bytes where this probe needs "
                           f"at most {limit} bytes")
        return reply, (load_arrays(self._read_into(bytearray(plen), deadline)) if plen else {})

    def request(self, header: dict, arrays: dict[str, np.ndarray] | None = None,
                timeout: float | None = None, on_callback=None,
                callback_cap: int | None = None) -> tuple[dict, dict[str, np.ndarray]]:
        """Send one probe; return (reply header, arrays). Raises BoxError, never returns garbage.

        While the probe runs, the child may call back (``{"callback": ...}`` with arrays of at most
        ``callback_cap`` bytes); ``on_callback(header, arrays)`` gives the answer sent back.
        """
        if self.process.poll() is not None:
            raise BoxError("the process running the submission has exited", self.stderr_tail())
        self._send(header, arrays)
        deadline = min(time.monotonic() + (timeout or self.timeout), self.deadline)
        cap = self.probes.reply_cap(header, arrays)
        while True:
            reply, out = self._receive(deadline, cap, callback_cap if on_callback else None)
            if "callback" not in reply:
                return reply, out
            self._send(*on_callback(reply, out))

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        try:
            if self.process.poll() is None:
                try:
                    self._send({"op": "bye"})
                except (BoxError, OSError):
                    pass
                try:
                    self.process.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            self.jail.kill()  # the process group, and in a jail its whole PID namespace
            self._stderr.close()
            self.jail.close()

    def __enter__(self) -> Box:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class BoxStartError(BoxError):
    """The child never became ready; ``cell`` is the cell it was running (or None)."""

    def __init__(self, message: str, cell: str | None, log: str = ""):
        super().__init__(message, log)
        self.cell = cell
