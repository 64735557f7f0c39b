"""The probe protocol both boxes speak (self-contained: stdlib and numpy only).

The grader's jailed box copies this file beside the student's cells and imports it there, and
:class:`arflow.checks.box.LocalBox` imports it here, so a probe's reply (and the reply to a
failure) is built by the same code either way.

Framing, both directions: 4-byte big-endian header length, a JSON header, 8-byte payload
length, payload (an ``.npz`` archive written with ``allow_pickle=False``, or nothing).

An assignment's probes are a module (``<assignment>_probes.py``, self-contained too) with
``CONTRACT_NAMES``, ``OP_FUNCTION`` (probe op -> the contract name it exercises),
``reply_cap(header, arrays) -> int`` (the most bytes the reply to a probe may announce: the jailed
box refuses a larger one before reading it) and ``make_handler(namespace, need, callback, weights) ->
handle``, where
``handle(header, arrays) -> (reply, arrays or None)`` answers one probe by calling the
student's objects, ``need(name)`` returns a contract name the cells defined (else raises
:class:`Missing`), and ``callback(name, arrays) -> arrays`` asks the grader during a probe
(for example for the logits of a net that never leaves the grader).
"""

import io
import json
import struct
import traceback


def _read_exact(stream, n):
    chunks, remaining = [], n
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(stream):
    """(header dict, payload bytes) of the next message on ``stream``."""
    (hlen,) = struct.unpack(">I", _read_exact(stream, 4))
    header = json.loads(_read_exact(stream, hlen).decode())
    (plen,) = struct.unpack(">Q", _read_exact(stream, 8))
    payload = _read_exact(stream, plen) if plen else b""
    return header, payload


def pack(arrays):
    """An ``.npz`` payload of ``arrays`` (name -> array), or ``b""`` for none."""
    import numpy as np

    if not arrays:
        return b""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def write_message(stream, header, arrays=None):
    payload, head = pack(arrays), json.dumps(header).encode()
    stream.write(struct.pack(">I", len(head)) + head + struct.pack(">Q", len(payload)) + payload)
    stream.flush()


def unpack(payload):
    """The arrays of an ``.npz`` payload (never pickled objects)."""
    import numpy as np

    if not payload:
        return {}
    with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


class Missing(NameError):
    """A name of the contract that no cell defined (reported by name to the grader)."""

    def __init__(self, name, cell_errors):
        reason = "; ".join(f"{k}: {v}" for k, v in cell_errors.items())
        super().__init__(f"{name} is not defined" + (f" (errors in cells: {reason})" if reason else ""))
        self.missing = name


def make_need(namespace, cell_errors):
    """``need(name)``: the object the student's cells bound to ``name``, else :class:`Missing`."""

    def need(name):
        if name not in namespace:
            raise Missing(name, cell_errors)
        return namespace[name]

    return need


def error_reply(err):
    """The reply to a probe whose answer raised ``err``: its type and message, and where in the
    student's cells it was raised (the grader decides what of it a report may show)."""
    tb = traceback.extract_tb(err.__traceback__)
    where = next((f"{frame.filename}, line {frame.lineno}" for frame in reversed(tb)
                  if frame.filename.startswith("<cell")), "")
    kind = "NameError" if isinstance(err, Missing) else type(err).__name__
    reply = {"ok": False, "error": f"{kind}: {err}" + (f" ({where})" if where else ""), "error_type": kind}
    if isinstance(err, Missing):
        reply["missing"] = err.missing
    return reply


def run_cells(cells, namespace, log=None):
    """Execute the student's cells (``[{"name", "source"}]``) in ``namespace``; a cell that raises
    costs only what depends on it. Returns {cell name: error}."""
    errors = {}
    for cell in cells:
        if log:
            log(cell["name"])
        try:
            exec(compile(cell["source"], f"<cell {cell['name']}>", "exec"), namespace)
        except BaseException as err:  # noqa: BLE001 - a broken cell must not stop the others
            errors[cell["name"]] = f"{type(err).__name__}: {err}"
    return errors
