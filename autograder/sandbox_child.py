"""The black box that runs a student's code for the checks (started by ``autograder.sandbox``).

This file is copied into a fresh jail with three others and run as ``python -I sandbox_child.py``:
``protocol.py`` (the framing and the replies, :mod:`arflow.checks.protocol`), ``probes.py`` (the
assignment's probes, for example :mod:`arflow.checks.pixelcnn_probes`) and ``cells.json`` (the
student's cells, and the name of the weights file if one came). No ``autograder`` on the path,
the student's cells executed in a namespace of their own, nothing but plain arrays going back.
It never judges anything: the grader chose every probe and decides every verdict from the
arrays it receives, so whatever the student's code patches in this process can only change what
the box answers, never how the answers are scored.

The answers go out on a private duplicate of the original stdout; ``print`` in student code goes
to stderr. During a probe the probes may call back to the grader (``{"callback": name}`` with
arrays), answered before the probe's final reply.
"""

import importlib
import importlib.util
import json
import os
import sys
import types


def _load(name):
    """A module from a file beside this one (``python -I`` puts no folder on ``sys.path``)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                      f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class _Deferred(types.ModuleType):
    """A module not imported yet: its first attribute lookup imports the real one and answers from it.

    The notebook's setup cell imports ``matplotlib.pyplot`` for the figures it draws at home; the
    box draws none, and pyplot's import costs about 0.4 CPU-s per submission. Code that does use
    it gets the real module. (``importlib.util.LazyLoader`` would not help: the import statement
    itself looks at ``__spec__``, which loads the module.)
    """

    def __getattr__(self, attr):
        real = sys.modules.get(self.__name__)
        if real is self or real is None:
            sys.modules.pop(self.__name__, None)
            real = importlib.import_module(self.__name__)
        return getattr(real, attr)


class _BlockAutograder:
    """Refuse to import the grader's own package from student code."""

    def find_spec(self, name, path=None, target=None):
        if name == "autograder" or name.startswith("autograder."):
            raise ImportError("the autograder package is not available to submissions")
        return None


def main():
    out = os.fdopen(os.dup(1), "wb")  # private channel to the parent
    os.dup2(2, 1)  # anything printed (by Python or C code) goes to stderr
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    sys.meta_path.insert(0, _BlockAutograder())
    protocol, probes = _load("protocol"), _load("probes")

    import torch

    torch.set_num_threads(1)
    sys.modules.setdefault("matplotlib.pyplot", _Deferred("matplotlib.pyplot"))
    with open("cells.json") as handle:
        spec = json.load(handle)

    def progress(name):
        # Tells the parent which cell was running if the process dies here (that cell is then left out).
        sys.stderr.write(f"\n[arflow-box] running cell {name}\n")
        sys.stderr.flush()

    namespace = {"__name__": "__main__"}
    cell_errors = protocol.run_cells(spec["cells"], namespace, log=progress)

    def callback(name, arrays):
        protocol.write_message(out, {"callback": name}, arrays)
        header, payload = protocol.read_message(inp)
        if not header.get("ok"):
            raise RuntimeError(str(header.get("error", "the grader refused this call")))
        return protocol.unpack(payload)

    handle = probes.make_handler(namespace, protocol.make_need(namespace, cell_errors), callback,
                                 spec.get("weights"))
    while True:
        try:
            header, payload = protocol.read_message(inp)
        except EOFError:
            return
        op = header.get("op")
        if op == "bye":
            return
        if op == "hello":
            protocol.write_message(out, {"ok": True, "cell_errors": cell_errors})
            continue
        try:
            reply, arrays = handle(header, protocol.unpack(payload))
            reply["ok"] = True
        except BaseException as err:  # the student's error is the probe's answer
            reply, arrays = protocol.error_reply(err), None
        protocol.write_message(out, reply, arrays)


if __name__ == "__main__":
    main()
