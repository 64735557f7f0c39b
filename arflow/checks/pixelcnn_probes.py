"""The probes of assignment 10_ar (PixelCNN): how a check's questions reach the student's objects.

Self-contained (stdlib, numpy, torch): the grader copies this file alone into the jail beside
the student's cells; :class:`arflow.checks.box.LocalBox` imports it here. It never judges
anything: each probe builds or calls what the contract names and returns plain arrays.

Ops: ``seed``; ``conv_build``/``conv_forward``/``conv_train`` (a ``MaskedConv2d`` kept by
``id``); ``net_build``/``net_forward``/``net_grad``/``net_layers``/``net_load`` (a ``PixelCNN``); ``loss``
(``loss_fn``); ``generate`` on a net whose every forward call is a call back to the checker
(``callback("forward", {"x"}) -> {"logits"}``), so its kind and parameters never reach the
student's code.
"""

CONTRACT_NAMES = ("MaskedConv2d", "PixelCNN", "loss_fn", "generate")
OP_FUNCTION = {"conv_build": "MaskedConv2d", "conv_forward": "MaskedConv2d", "conv_train": "MaskedConv2d",
               "net_build": "PixelCNN", "net_forward": "PixelCNN", "net_grad": "PixelCNN", "net_load": "PixelCNN",
               "net_layers": "PixelCNN",
               "loss": "loss_fn", "generate": "generate"}
#: Room for the ``.npz`` framing of a reply's arrays, and the whole payload of a reply without arrays.
SMALL_REPLY_BYTES = 64 * 1024


def reply_cap(header, arrays):
    """The largest payload (bytes) a reply to this probe may announce: what the probe needs.

    A forward pass answers at most 256 float32 channels per input value (the logits of a
    ``(B, 1, H, W)`` input are ``(B, 256, H, W)``), a gradient the input's size, ``generate`` its
    samples (float64; four times over, so that a wrong shape is still reported as such); every
    other probe answers no arrays.
    """
    op, arrays = header.get("op"), arrays or {}
    x = arrays.get("x")
    if op in ("conv_forward", "net_forward") and x is not None:
        return 4 * 256 * x.size + SMALL_REPLY_BYTES
    if op == "net_grad" and x is not None:
        return 4 * x.size + SMALL_REPLY_BYTES
    if op == "generate":
        H, W = header["image_size"]
        return 4 * 8 * max(int(header["n_samples"]), 1) * H * W + SMALL_REPLY_BYTES
    return SMALL_REPLY_BYTES


def make_handler(namespace, need, callback, weights=None):
    """``handle(header, arrays) -> (reply, arrays or None)`` over the student's ``namespace``."""
    import numpy as np
    import torch
    import torch.nn as nn

    from arflow.checks.steps import adam_steps  # not torch.optim: its first use costs 2.4 CPU-s

    objects = {}

    class ProbeNet(nn.Module):
        """The net handed to ``generate``: an anchor parameter, and a forward answered by the checker."""

        def __init__(self):
            super().__init__()
            self.anchor = nn.Parameter(torch.zeros(()))  # so that net.parameters() is not empty

        def forward(self, x):
            x = torch.as_tensor(x)
            logits = callback("forward", {"x": x.detach().float().cpu().numpy()})["logits"]
            return torch.from_numpy(logits).to(x.device) + 0 * self.anchor

    def handle(header, arrays):
        op = header["op"]
        if op == "seed":
            torch.manual_seed(header["seed"])
            np.random.seed(header["seed"] % (2**32))
            return {}, None
        if op == "conv_build":
            objects[header["id"]] = need("MaskedConv2d")(header["in_channels"], header["out_channels"],
                                                          header["kernel_size"], blind_center=header["blind_center"])
            return {}, None
        if op in ("conv_forward", "net_forward"):
            module = objects[header["id"]]
            module.eval()
            with torch.no_grad():
                y = module(torch.from_numpy(arrays["x"]))
            if "pixel" in header:  # only the logits of one pixel: (B, C) instead of (B, C, H, W)
                y = y[:, :, header["pixel"][0], header["pixel"][1]]
            dtype, y = str(y.dtype), y.detach().float().cpu()
            # "half": float16 on the way back (half the bytes of a large answer), unless the values do
            # not fit it; the checker reads either.
            if header.get("half") and y.numel() and bool(torch.isfinite(y).all()) and float(y.abs().max()) < 6e4:
                y = y.half()
            return {"dtype": dtype}, {"y": y.numpy()}
        if op == "conv_train":
            conv = objects[header["id"]]
            conv.train()
            params = list(conv.parameters())
            x, g = torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["g"])
            adam_steps(params, lambda: (conv(x) * g).sum(), header["steps"], header["lr"])
            return {"n_parameters": len(params)}, None
        if op == "net_build":
            cls = need("PixelCNN")
            try:
                net, used = cls(**header["kwargs"]), header["kwargs"]
            except TypeError:
                net, used = cls(), {}
            objects[header["id"]] = net
            return {"kwargs": used}, None
        if op == "net_layers":  # how many MaskedConv2d the net holds (its receptive field must match)
            conv_cls = need("MaskedConv2d")
            return {"masked_layers": sum(isinstance(m, conv_cls) for m in objects[header["id"]].modules())}, None
        if op == "net_load":
            if not weights:
                raise FileNotFoundError("no weights file was given")
            net = need("PixelCNN")()
            state = torch.load(weights, map_location="cpu", weights_only=True)
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

    return handle
