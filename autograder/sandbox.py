"""The parent side of the black box: start the student's code in a separate process and talk to it.

:class:`Box` copies ``sandbox_child.py`` and the student's cells (and weights file) into a
fresh jail (:mod:`autograder.jail`: an allowlist root without the grader's files, no network,
a uid of its own, memory/file/process limits), starts ``python -I sandbox_child.py``
there with one torch thread, no CUDA and a scrubbed environment, and exchanges framed messages (JSON headers, ``.npz``
payloads loaded with ``allow_pickle=False``; never pickle) with a time limit on every
answer. Anything that goes wrong (a crash, a timeout, garbage on the channel) raises
:class:`BoxError`; the checks turn that into zero points with the reason.
"""

from __future__ import annotations

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

import numpy as np

from .jail import Jail, Limits

CHILD = Path(__file__).with_name("sandbox_child.py")
MAX_REPLY_BYTES = 2 * 1024**3
_SLOTS = itertools.count()  # a uid of its own for every jail that may run at the same time


def next_slot(offset: int = 0) -> int:
    """A jail slot (uid) for this process: concurrent grading workers get disjoint ranges of 100
    (``ARFLOW_JAIL_SLOT_BASE``), each cycling within its own range."""
    base = int(os.environ.get("ARFLOW_JAIL_SLOT_BASE", "0"))
    return (offset + base + next(_SLOTS) % 100) % 4000


class BoxError(RuntimeError):
    """The student's process died, hung, or answered something that is not a valid reply."""


class Box:
    """A running student process. Use as a context manager; ``request`` sends one probe."""

    def __init__(self, cells: list[dict], files: dict[str, str | os.PathLike] | None = None,
                 timeout: float = 120.0, total_timeout: float = 900.0, python: str | None = None):
        self.timeout, self.deadline = timeout, time.monotonic() + total_timeout
        files = {"sandbox_child.py": CHILD, "cells.json": json.dumps({"cells": cells}).encode(), **(files or {})}
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
            raise BoxStartError(str(err), cell) from None
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
    def _read(self, n: int, deadline: float) -> bytes:
        fd = self.process.stdout.fileno()
        chunks, remaining = [], n
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while remaining:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise BoxError(f"no answer within the time limit ({self.timeout:.0f} s per probe)")
                chunk = os.read(fd, min(remaining, 1 << 22))
                if not chunk:
                    raise BoxError("the process running the submission died" + self._how_it_ended()
                                   + self._stderr_tail())
                chunks.append(chunk)
                remaining -= len(chunk)
        return b"".join(chunks)

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

    def _stderr_tail(self, n: int = 600) -> str:
        try:
            self._stderr.flush()
            text = self.stderr_path.read_bytes()[-4 * n:].decode(errors="replace")
        except OSError:
            return ""
        # The box's own progress lines say nothing to a student.
        text = re.sub(r"^\[arflow-box\] running cell \w+$", "", text, flags=re.M).strip()[-n:]
        return f"; last output: ...{text}" if text else ""

    def _send(self, header: dict, arrays: dict[str, np.ndarray] | None = None) -> None:
        payload = b""
        if arrays:
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            payload = buffer.getvalue()
        head = json.dumps(header).encode()
        try:
            self.process.stdin.write(struct.pack(">I", len(head)) + head + struct.pack(">Q", len(payload)) + payload)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as err:
            raise BoxError(f"could not talk to the submission's process ({err})" + self._stderr_tail()) from None

    def request(self, header: dict, arrays: dict[str, np.ndarray] | None = None,
                timeout: float | None = None) -> tuple[dict, dict[str, np.ndarray]]:
        """Send one probe; return (reply header, arrays). Raises BoxError, never returns garbage."""
        if self.process.poll() is not None:
            raise BoxError("the process running the submission has exited" + self._stderr_tail())
        self._send(header, arrays)
        deadline = min(time.monotonic() + (timeout or self.timeout), self.deadline)
        (hlen,) = struct.unpack(">I", self._read(4, deadline))
        if hlen > 1 << 20:
            raise BoxError("malformed answer from the submission's process")
        try:
            reply = json.loads(self._read(hlen, deadline).decode())
        except ValueError:
            raise BoxError("malformed answer from the submission's process") from None
        (plen,) = struct.unpack(">Q", self._read(8, deadline))
        if plen > MAX_REPLY_BYTES:
            raise BoxError("answer too large")
        out = {}
        if plen:
            try:
                with np.load(io.BytesIO(self._read(plen, deadline)), allow_pickle=False) as archive:
                    out = {key: archive[key] for key in archive.files}
            except BoxError:
                raise
            except Exception:
                raise BoxError("malformed arrays from the submission's process") from None
        if not isinstance(reply, dict):
            raise BoxError("malformed answer from the submission's process")
        return reply, out

    def call(self, header: dict, arrays: dict | None = None, timeout: float | None = None):
        """Like ``request`` but raises :class:`StudentError` when the student's code raised."""
        reply, out = self.request(header, arrays, timeout)
        if not reply.get("ok"):
            raise StudentError(str(reply.get("error", "unknown error"))[:500])
        return reply, out

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

    def __init__(self, message: str, cell: str | None):
        super().__init__(message)
        self.cell = cell


class StudentError(RuntimeError):
    """The student's code raised an exception while answering a probe (message included)."""
