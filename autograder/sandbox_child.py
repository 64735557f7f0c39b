"""The black box that runs a student's code for the hidden checks (started by ``autograder.sandbox``).

This file is copied into a fresh temporary directory and run as ``python -I sandbox_child.py``:
no ``autograder`` on the path, the student's cells executed in a namespace of their own, and
nothing but plain arrays going back. It never judges anything: the parent chose every probe
and decides every verdict from the arrays it receives, so whatever the student's code patches
in this process can only change what the box answers, never how the answers are scored.

Protocol (both directions): 4-byte big-endian header length, a JSON header, 8-byte payload
length, payload (an ``.npz`` archive written with ``allow_pickle=False``, or nothing). The
answers go out on a private duplicate of the original stdout; ``print`` in student code goes
to stderr. While ``generate`` runs, each forward call of its net is a message to the parent
(``{"callback": "forward"}`` with ``x``), answered with the logits (or a refusal) before the
final reply.
"""

import io
import json
import os
import struct
import sys
import traceback


def _read_exact(stream, n):
    chunks, remaining = [], n
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise EOFError("parent closed the pipe")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(stream):
    (hlen,) = struct.unpack(">I", _read_exact(stream, 4))
    header = json.loads(_read_exact(stream, hlen).decode())
    (plen,) = struct.unpack(">Q", _read_exact(stream, 8))
    payload = _read_exact(stream, plen) if plen else b""
    return header, payload


def write_message(stream, header, arrays=None):
    import numpy as np

    payload = b""
    if arrays:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        payload = buffer.getvalue()
    head = json.dumps(header).encode()
    stream.write(struct.pack(">I", len(head)) + head + struct.pack(">Q", len(payload)) + payload)
    stream.flush()


def unpack(payload):
    import numpy as np

    if not payload:
        return {}
    with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


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

    import numpy as np
    import torch
    import torch.nn as nn

    torch.set_num_threads(1)
    with open("cells.json") as handle:
        spec = json.load(handle)

    namespace = {"__name__": "__main__"}
    cell_errors = {}
    for cell in spec["cells"]:
        # Tells the parent which cell was running if the process dies here (that cell is then left out).
        sys.stderr.write(f"\n[arflow-box] running cell {cell['name']}\n")
        sys.stderr.flush()
        try:
            exec(compile(cell["source"], f"<cell {cell['name']}>", "exec"), namespace)
        except BaseException as err:  # a broken cell costs only what depends on it
            cell_errors[cell["name"]] = f"{type(err).__name__}: {err}"
    objects = {}

    class ProbeNet(nn.Module):
        """The net handed to `generate`: it holds nothing but an anchor parameter.

        Its forward sends x to the grader (a call back on the channel while the probe runs) and
        returns the logits the grader computed: which net it is, and its parameters, never
        reach this process.
        """

        def __init__(self):
            super().__init__()
            self.anchor = nn.Parameter(torch.zeros(()))  # so that net.parameters() is not empty

        def forward(self, x):
            x = torch.as_tensor(x)
            write_message(out, {"callback": "forward"}, {"x": x.detach().float().cpu().numpy()})
            header, payload = read_message(inp)
            if not header.get("ok"):
                raise RuntimeError(str(header.get("error", "the grader refused this call")))
            logits = torch.from_numpy(unpack(payload)["logits"]).to(x.device)
            return logits + 0 * self.anchor

    class Missing(NameError):
        """A name of the contract that no cell defined (reported by name to the grader)."""

    def need(name):
        if name not in namespace:
            reason = "; ".join(f"{k}: {v}" for k, v in cell_errors.items())
            err = Missing(f"{name} is not defined" + (f" (errors in cells: {reason})" if reason else ""))
            err.missing = name
            raise err
        return namespace[name]

    def handle(header, arrays):
        op = header["op"]
        if op == "hello":
            return {"cell_errors": cell_errors}, None
        if op == "seed":
            torch.manual_seed(header["seed"])
            np.random.seed(header["seed"] % (2**32))
            return {}, None
        if op == "conv_build":
            conv = need("MaskedConv2d")(header["in_channels"], header["out_channels"], header["kernel_size"],
                                        blind_center=header["blind_center"])
            objects[header["id"]] = conv
            return {}, None
        if op in ("conv_forward", "net_forward"):
            module = objects[header["id"]]
            module.eval()
            with torch.no_grad():
                y = module(torch.from_numpy(arrays["x"]))
            if "pixel" in header:  # only the logits of one pixel: (B, C) instead of (B, C, H, W)
                y = y[:, :, header["pixel"][0], header["pixel"][1]]
            return {"dtype": str(y.dtype)}, {"y": y.detach().float().cpu().numpy()}
        if op == "conv_train":
            conv = objects[header["id"]]
            conv.train()
            params = list(conv.parameters())
            optimizer = torch.optim.Adam(params, lr=header["lr"])
            x, g = torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["g"])
            for _ in range(header["steps"]):
                optimizer.zero_grad()
                (conv(x) * g).sum().backward()
                optimizer.step()
            return {"n_parameters": len(params)}, None
        if op == "net_build":
            cls = need("PixelCNN")
            try:
                net = cls(**header["kwargs"])
                used = header["kwargs"]
            except TypeError:
                net, used = cls(), {}
            objects[header["id"]] = net
            return {"kwargs": used}, None
        if op == "net_load":
            net = need("PixelCNN")()
            state = torch.load(header["path"], map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
                state = state["state_dict"]
            net.load_state_dict(state)
            net.float().eval()
            objects[header["id"]] = net
            return {}, None
        if op == "net_grad":
            net = objects[header["id"]]
            net.eval()
            x = torch.from_numpy(arrays["x"]).requires_grad_(True)
            i, j = header["pixel"]
            (grad,) = torch.autograd.grad(net(x)[:, :, i, j].sum(), x, allow_unused=True)
            grad = torch.zeros_like(x) if grad is None else grad
            return {}, {"grad": grad.detach().float().numpy()}
        if op == "loss":
            value = need("loss_fn")(torch.from_numpy(arrays["logits"]), torch.from_numpy(arrays["x"]))
            return {"loss": float(value)}, None
        if op == "generate":
            samples = need("generate")(ProbeNet(), header["n_samples"], image_size=tuple(header["image_size"]),
                                       device="cpu")
            samples = torch.as_tensor(samples)
            return {"dtype": str(samples.dtype)}, {"samples": samples.detach().cpu().double().numpy()}
        raise ValueError(f"unknown op {op!r}")

    while True:
        try:
            header, payload = read_message(inp)
        except EOFError:
            return
        if header.get("op") == "bye":
            return
        try:
            reply, arrays = handle(header, unpack(payload))
            reply["ok"] = True
        except BaseException as err:
            tb = traceback.extract_tb(err.__traceback__)
            where = next((f"{frame.filename}, line {frame.lineno}" for frame in reversed(tb)
                          if frame.filename.startswith("<cell")), "")
            kind = "NameError" if isinstance(err, Missing) else type(err).__name__
            message = f"{kind}: {err}" + (f" ({where})" if where else "")
            reply, arrays = {"ok": False, "error": message, "error_type": kind}, None
            if isinstance(err, Missing):
                reply["missing"] = err.missing
        write_message(out, reply, arrays)


if __name__ == "__main__":
    main()
