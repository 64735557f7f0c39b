"""The probes of assignment 11_maf (MADE and MAF): questions a check asks a submission.

SELF-CONTAINED (stdlib, numpy and torch only): the hardened grader copies this file alone into
the jail beside the student's cells; :class:`arflow.checks.box.LocalBox` imports it at home. A
probe builds the student's objects (kept by an ``id``), runs them on the arrays it is given and
returns plain arrays. It never judges anything: the checks do, from what it returns.

Ops (header ``{"op": ...}``, arrays in, arrays out):

==================  =====================================================================
``masks``           ``made_masks(n_inputs, hidden_sizes, ordering)`` -> ``m0 .. mL`` (float64)
``made_build``      ``MADE(n_inputs, hidden_sizes, ordering)`` under ``torch.manual_seed(seed)``
``made_forward``    x (B, D) -> ``mu``, ``log_scale`` (B, D)
``made_train``      Adam steps on sum(mu * g_mu + log_scale * g_ls) for the given x, g_mu, g_ls
``layer_build``     ``MAFLayer(n_inputs, hidden_sizes, ordering)``
``layer_forward``   x -> ``z`` (B, D), ``log_det`` (B,)
``layer_inverse``   z -> ``x``
``maf_build``       ``MAF(n_inputs=, n_layers=, hidden_sizes=)``
``maf_forward``     x -> ``z``, ``log_det``;  ``maf_inverse``: z -> ``x``
``maf_log_prob``    x -> ``log_prob`` (B,)
``maf_sample``      ``sample(n)`` under ``torch.manual_seed(seed)`` -> ``x`` (n, D)
``maf_load``        ``MAF()`` loaded from the weights file (``weights_only=True``, size-checked)
``*_jacobian``      (made / layer / maf) x (B, D) -> ``jac`` (B, D_out, D) by autograd, where
                    ``of`` names the output: ``mu``, ``log_scale`` (made) or ``z`` (layer, maf)
==================  =====================================================================
"""

import os

import numpy as np
import torch

from arflow.checks.steps import adam_steps  # not torch.optim: its first use costs 2.4 CPU-s

CONTRACT_NAMES = ("made_masks", "MADE", "MAFLayer", "MAF")
OP_FUNCTION = {"masks": "made_masks",
               **{f"made_{op}": "MADE" for op in ("build", "forward", "train", "jacobian")},
               **{f"layer_{op}": "MAFLayer" for op in ("build", "forward", "inverse", "jacobian")},
               **{f"maf_{op}": "MAF" for op in ("build", "forward", "inverse", "log_prob", "sample", "load",
                                                "jacobian")}}
MAX_WEIGHTS_BYTES = 20 * 1024 * 1024
#: Probes answer for small models; a bigger request is the checker's own mistake.
MAX_OBJECTS = 64
#: Room for the ``.npz`` framing of a reply's arrays, and the whole payload of a reply without arrays.
SMALL_REPLY_BYTES = 64 * 1024
#: The largest input dimension a sample probe may answer for (the digits have 196).
MAX_DIMENSIONS = 1024


def reply_cap(header, arrays):
    """The largest payload (bytes) a reply to this probe may announce: what the probe needs, four
    times over (so that a wrong shape is still reported as such, not as an oversized answer)."""
    op, arrays = header.get("op"), arrays or {}
    x = next((a for a in arrays.values()), None)
    if op == "masks":
        sizes = [int(header.get("n_inputs", 0)), *(int(h) for h in header.get("hidden_sizes", []) or []),
                 int(header.get("n_inputs", 0))]
        return 4 * 8 * sum(a * b for a, b in zip(sizes, sizes[1:])) + SMALL_REPLY_BYTES
    if op.endswith("_jacobian") and x is not None:
        return 4 * 4 * x.size * (x.shape[-1] if x.ndim else 1) + SMALL_REPLY_BYTES
    if op == "maf_sample":
        return 4 * 4 * max(int(header.get("n", 1)), 1) * MAX_DIMENSIONS + SMALL_REPLY_BYTES
    if x is not None:  # forward, inverse, log_prob: at most two arrays the size of the input
        return 4 * 4 * 2 * x.size + SMALL_REPLY_BYTES
    return SMALL_REPLY_BYTES


def _tensor(value, what):
    """A float32 numpy copy of what the student's code returned (a tensor or an array)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float32).numpy().copy()
    try:
        return np.array(value, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what} is a {type(value).__name__}, not a tensor or an array") from err


def _pair(value, what):
    """The two outputs of a forward: a tuple or list of two."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{what} should return a pair (2 values), got a {type(value).__name__}")
    return value


def _first(value):
    """An inverse's x: the tensor itself or, where it returns a pair (x, log_det), its first item."""
    return value[0] if isinstance(value, (tuple, list)) else value


def _ordering(header):
    ordering = header.get("ordering")
    return None if ordering is None else [int(o) for o in ordering]


def _hidden(header):
    return tuple(int(h) for h in header["hidden_sizes"])


def make_handler(namespace, need, callback, weights):
    """``handle(header, arrays) -> (reply, arrays)`` answering the 11_maf probes with the student's objects."""
    objects = {}

    def keep(key, obj):
        if key not in objects and len(objects) >= MAX_OBJECTS:
            objects.pop(next(iter(objects)))
        objects[key] = obj

    def get(key):
        if key not in objects:
            raise KeyError(f"no object {key!r} was built")
        return objects[key]

    def x_of(arrays, name="x"):
        return torch.from_numpy(np.ascontiguousarray(arrays[name], dtype=np.float32))

    def jacobian(fn, x):
        """(B, D_out, D): d fn(x)[b, i] / d x[b, j], one backward pass per output (examples are independent)."""
        x = x.clone().requires_grad_(True)
        out = fn(x)
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != x.shape[0]:
            raise ValueError(f"the output has shape {tuple(getattr(out, 'shape', ()))}, expected (B, D)")
        rows = []
        for i in range(out.shape[1]):
            (grad,) = torch.autograd.grad(out[:, i].sum(), x, retain_graph=True, allow_unused=True)
            rows.append(torch.zeros_like(x) if grad is None else grad)
        return torch.stack(rows, dim=1).detach().numpy().astype(np.float32)

    def handle(header, arrays):
        op = header.get("op")
        if op == "masks":
            masks = need("made_masks")(int(header["n_inputs"]), list(_hidden(header)), _ordering(header))
            if not isinstance(masks, (list, tuple)):
                raise TypeError(f"made_masks should return a list of masks, got a {type(masks).__name__}")
            out = {f"m{k}": _tensor(m, f"mask {k}").astype(np.float64) for k, m in enumerate(masks)}
            return {"count": len(masks)}, out

        if op in ("made_build", "layer_build"):
            cls = need("MADE" if op == "made_build" else "MAFLayer")
            torch.manual_seed(int(header.get("seed", 0)))
            obj = cls(int(header["n_inputs"]), _hidden(header), _ordering(header))
            keep(header["id"], obj)
            return {"n_params": int(sum(p.numel() for p in obj.parameters()))}, None
        if op == "maf_build":
            cls = need("MAF")
            torch.manual_seed(int(header.get("seed", 0)))
            obj = cls(n_inputs=int(header["n_inputs"]), n_layers=int(header["n_layers"]),
                      hidden_sizes=_hidden(header))
            keep(header["id"], obj)
            return {"n_params": int(sum(p.numel() for p in obj.parameters()))}, None
        if op == "maf_load":
            cls = need("MAF")
            if not weights or not os.path.isfile(weights):
                raise FileNotFoundError("the weights file was not found")
            if os.path.getsize(weights) > MAX_WEIGHTS_BYTES:
                raise ValueError(f"the weights file is larger than {MAX_WEIGHTS_BYTES // 2**20} MB")
            obj = cls()
            obj.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            obj.eval()
            keep(header["id"], obj)
            return {"n_params": int(sum(p.numel() for p in obj.parameters()))}, None

        obj = get(header["id"])
        if op == "made_forward":
            with torch.no_grad():
                mu, log_scale = _pair(obj(x_of(arrays)), "MADE.forward")
            return {}, {"mu": _tensor(mu, "mu"), "log_scale": _tensor(log_scale, "log_scale")}
        if op == "made_train":
            x, g_mu, g_ls = x_of(arrays), x_of(arrays, "g_mu"), x_of(arrays, "g_ls")

            def loss():
                mu, log_scale = _pair(obj(x), "MADE.forward")
                return (mu * g_mu).sum() + (log_scale * g_ls).sum()

            adam_steps(obj.parameters(), loss, int(header.get("steps", 3)), float(header.get("lr", 0.1)))
            return {}, None
        if op in ("layer_forward", "maf_forward"):
            with torch.no_grad():
                z, log_det = _pair(obj(x_of(arrays)), f"{OP_FUNCTION[op]}.forward")
            return {}, {"z": _tensor(z, "z"), "log_det": _tensor(log_det, "log_det")}
        if op in ("layer_inverse", "maf_inverse"):
            with torch.no_grad():
                x = _first(obj.inverse(x_of(arrays, "z")))
            return {}, {"x": _tensor(x, "x")}
        if op == "maf_log_prob":
            with torch.no_grad():
                out = obj.log_prob(x_of(arrays))
            return {}, {"log_prob": _tensor(out, "log_prob")}
        if op == "maf_sample":
            torch.manual_seed(int(header.get("seed", 0)))
            with torch.no_grad():
                out = obj.sample(int(header["n"]))
            return {}, {"x": _tensor(_first(out), "the samples")}
        if op in ("made_jacobian", "layer_jacobian", "maf_jacobian"):
            of = header.get("of", "z")
            if op == "made_jacobian":
                index = {"mu": 0, "log_scale": 1}[of]

                def fn(x):
                    return _pair(obj(x), "MADE.forward")[index]
            else:
                def fn(x):
                    return _pair(obj(x), f"{OP_FUNCTION[op]}.forward")[0]
            return {}, {"jac": jacobian(fn, x_of(arrays))}
        raise ValueError(f"unknown probe op {op!r}")

    return handle
