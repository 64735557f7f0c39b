"""The in-process box: a check's probes answered by the notebook's own objects.

:class:`LocalBox` speaks the protocol of the grader's jailed box (``request``/``call``, replies
built by :mod:`arflow.checks.protocol`) but calls the student's objects directly, in this
process: the visible tests at home and the hidden tests under plain nbgrader use it. It trusts
the kernel it runs in; the hardened grader asks the same questions of a jailed process instead.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import warnings
from types import ModuleType

import numpy as np

from . import protocol

#: Python's own exception classes: the only type names a hidden check's reason may repeat.
BUILTIN_EXCEPTIONS = frozenset(name for name, obj in vars(builtins).items()
                               if isinstance(obj, type) and issubclass(obj, BaseException))


@contextlib.contextmanager
def quiet():
    """Capture stderr and warnings inside the block, then print them on stdout: nbgrader gives no points
    to a grade cell that writes to stderr, and a student's warning or progress bar must not cost them."""
    buffer = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(buffer):
        warnings.simplefilter("always")
        try:
            yield
        finally:
            text = buffer.getvalue().strip()
            messages = [f"{w.category.__name__}: {w.message}" for w in caught]
            if text or messages:
                print("(stderr / warnings from your code, shown here:)", *messages, text[-2000:], sep="\n")


class StudentError(RuntimeError):
    """The student's code raised while answering a probe, or answered wrongly.

    ``str()`` is the checker's own sentence (safe for the hidden checks' reports);
    ``student_text`` is what the student's code said (its exception and message), which only
    the visible checks, whose probes are public, may show.
    """

    def __init__(self, reason: str, student_text: str | None = None):
        super().__init__(reason)
        self.student_text = student_text

    def visible_text(self) -> str:
        """What the visible checks show: the student's own message where there is one."""
        return self.student_text or str(self)


def student_error(probes: ModuleType, op: str | None, reply: dict) -> StudentError:
    """A :class:`StudentError` for a failed reply: a reason written here, the student's text apart.

    The reason names the function the probe exercised and, only when it is one of Python's own
    exception classes, the type reported; a name of the contract may be reported missing.
    Nothing else the student's code said reaches the reason.
    """
    function = probes.OP_FUNCTION.get(op or "", "the submission's code")
    kind, missing = reply.get("error_type"), reply.get("missing")
    if missing in probes.CONTRACT_NAMES:
        reason = f"{missing} is not defined (the cell that defines it is missing or raised an exception)"
    else:
        shown = f"{kind}: " if isinstance(kind, str) and kind in BUILTIN_EXCEPTIONS else ""
        reason = (f"{function} raised an exception while answering a hidden probe ({shown}its message is not "
                  "shown for hidden tests)")
    return StudentError(reason, str(reply.get("error", "unknown error"))[:500])


class ProbeCaller:
    """``call``, for a box with ``probes`` (the assignment's probes module) and ``request``: the
    in-process :class:`LocalBox` and the grader's jailed box (``autograder.sandbox.Box``)."""

    probes: ModuleType

    def call(self, header: dict, arrays: dict | None = None, timeout: float | None = None):
        """Like ``request`` but raises :class:`StudentError` when the student's code raised."""
        reply, out = self.request(header, arrays, timeout)
        if not reply.get("ok"):
            raise student_error(self.probes, header.get("op"), reply)
        return reply, out


class LocalBox(ProbeCaller):
    """Answers probes with the objects in ``namespace`` (a notebook's ``globals()``).

    ``probes`` is the assignment's probes module; ``weights`` the path of the weights file the
    probes may load. Arrays go through the same ``.npz`` packing as in the jailed box, so a
    check sees exactly the dtypes and shapes it would see there.
    """

    def __init__(self, namespace: dict, probes: ModuleType, weights: str | None = None,
                 cell_errors: dict | None = None):
        self.probes, self.cell_errors = probes, dict(cell_errors or {})
        self._on_callback = None
        need = protocol.make_need(namespace, self.cell_errors)
        self._handle = probes.make_handler(namespace, need, self._callback, weights)
        self.hello = {"cell_errors": self.cell_errors}

    def _callback(self, name: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._on_callback is None:
            raise RuntimeError("no callback is expected during this probe")
        reply, out = self._on_callback({"callback": name}, _copy(arrays))
        if not reply.get("ok"):
            raise RuntimeError(str(reply.get("error", "the checker refused this call")))
        return _copy(out or {})

    def request(self, header: dict, arrays: dict[str, np.ndarray] | None = None, timeout: float | None = None,
                on_callback=None, callback_cap: int | None = None) -> tuple[dict, dict[str, np.ndarray]]:
        """Answer one probe: (reply header with ``ok``, arrays). Never raises for the student's errors."""
        self._on_callback = on_callback
        try:
            reply, out = self._handle(dict(header), _copy(arrays or {}))
            reply = {**reply, "ok": True}
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:  # noqa: BLE001 - the student's error is the probe's answer
            reply, out = protocol.error_reply(err), None
        finally:
            self._on_callback = None
        return reply, _copy(out or {})

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalBox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _copy(arrays: dict) -> dict[str, np.ndarray]:
    """The arrays as the jailed box would deliver them: through ``.npz``, no pickled objects."""
    return protocol.unpack(protocol.pack(arrays)) if arrays else {}
