"""RealNVP's coupling masks, read from a flow's own layers: what each coupling keeps, in its tensor and in the image.

:func:`coupling_masks` walks the layers of a :class:`~arflow.models.multiscale.MultiScaleFlow` in the
x -> z direction, follows where every input pixel goes through the layers that move entries
(:class:`~arflow.models.squeeze.Squeeze` by running it on a tensor of pixel numbers,
:class:`~arflow.models.split.Split` keeping the first half of the channels, as its ``forward`` does) and
reads each :class:`~arflow.models.coupling.Coupling`'s ``mask`` buffer. So the pictures are the masks the
model multiplies by, and a change to the model's code changes them.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Patch

from arflow.models.coupling import Coupling
from arflow.models.dequantize import LogitTransform
from arflow.models.split import Split
from arflow.models.squeeze import Squeeze
from arflow.viz.palette import BLUE, ORANGE, SILVER, cmap

# pixel codes: 0 transformed by the coupling, 1 kept (conditions s and t), 2 already factored out
PIXEL_CMAP = cmap(ORANGE, BLUE, SILVER)
TILE_CMAP = cmap(ORANGE, BLUE, SILVER, "white")


def _walk(layers, positions: torch.Tensor, found: list) -> None:
    """positions (C, H, W): the input-pixel number of every entry of the tensor the next layer sees."""
    for layer in layers:
        if isinstance(layer, Coupling):
            mask = layer.mask.expand(positions.shape).bool()
            found.append({"layer": layer, "mask": mask.clone(), "positions": positions.clone()})
        elif isinstance(layer, Squeeze):
            positions = layer(positions[None].double())[0][0].long()
        elif isinstance(layer, Split):
            positions = positions[:positions.shape[0] // 2]  # Split.forward sends x[:, :C/2] on
            _walk(layer.rest.layers, positions, found)
            return
        elif not isinstance(layer, LogitTransform):  # elementwise layers move no entry
            raise ValueError(f"coupling_masks follows RealNVP's layers (logit, coupling, squeeze, split); "
                             f"{type(layer).__name__} mixes entries, so a mask cannot be drawn in image pixels")


def coupling_masks(flow) -> list[dict]:
    """Every coupling of ``flow`` in order, as a dict:

    - ``layer``: the :class:`Coupling` module; ``mask``: its mask buffer broadcast to the tensor it
      sees, (C, h, w) bool, True = kept;
    - ``positions``: (C, h, w) long, the input pixel (row * W + col) of each entry of that tensor;
    - ``pixels``: (H, W) int codes in the input image: 1 kept, 0 transformed, 2 factored out before.
    """
    C, H, W = flow.input_shape
    if C != 1:
        raise ValueError(f"coupling_masks draws one-channel images, got input_shape {flow.input_shape}")
    found: list[dict] = []
    _walk(flow.layers, torch.arange(H * W).view(1, H, W), found)
    for record in found:
        pixels = np.full(H * W, 2)
        positions, mask = record["positions"].flatten().numpy(), record["mask"].flatten().numpy()
        pixels[positions] = mask.astype(int)
        record["pixels"] = pixels.reshape(H, W)
    return found


def draw_coupling_mask(records: list[dict], coupling: int = 0):
    """Coupling number ``coupling`` of :func:`coupling_masks`: left, its mask on every channel of the tensor
    it sees (blue kept, orange transformed); right, the same entries at their pixels of the input image."""
    if not 0 <= coupling < len(records):
        raise ValueError(f"coupling must lie in 0..{len(records) - 1}, got {coupling}")
    record = records[coupling]
    mask, pixels = record["mask"].numpy().astype(int), record["pixels"]
    C, h, w = mask.shape
    gap = max(1, h // 7)
    tiles = np.full((h, C * (w + gap) - gap), 3)  # one picture, channels side by side (3: the gaps, white)
    for c in range(C):
        tiles[:, c * (w + gap):c * (w + gap) + w] = mask[c]
    fig, (ax_tensor, ax_image) = plt.subplots(1, 2, figsize=(max(6.6, 2.6 + 1.45 * C), 3.6),
                                              gridspec_kw={"width_ratios": [C * (w + gap) / w, 1.6]})
    ax_tensor.imshow(tiles, cmap=TILE_CMAP, vmin=0, vmax=3, interpolation="nearest")
    ax_tensor.set_xticks([c * (w + gap) + (w - 1) / 2 for c in range(C)], [f"channel {c}" for c in range(C)],
                         fontsize=8)
    ax_tensor.set_yticks([])
    ax_tensor.tick_params(length=0)
    ax_tensor.set_ylabel(f"{h}x{w} entries", fontsize=8)
    ax_tensor.set_title("the tensor the coupling sees", fontsize=9)
    for side in ax_tensor.spines.values():
        side.set_visible(False)
    ax = ax_image
    ax.imshow(pixels, cmap=PIXEL_CMAP, vmin=0, vmax=2, interpolation="nearest")
    ax.set_xlabel("column (pixels)", fontsize=8)
    ax.set_ylabel("row (pixels)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title("the same entries in the image", fontsize=9)
    same_stage = coupling + 1 < len(records) and records[coupling + 1]["mask"].shape == record["mask"].shape
    if same_stage:
        flips = torch.equal(records[coupling + 1]["mask"], ~record["mask"])
        after = f"the next keeps the complement: {flips}"
    else:
        after = "the last before a squeeze, a split or the end"
    kept = int(mask.sum())
    fig.suptitle(f"coupling {coupling} of {len(records)}: {record['layer'].label}\n"
                 f"on a {C}x{h}x{w} tensor, keeps {kept} of {mask.size} entries; {after}", fontsize=9)
    fig.legend(handles=[Patch(color=BLUE, label="kept (input of s and t)"),
                        Patch(color=ORANGE, label="transformed"), Patch(color=SILVER, label="factored out before")],
               loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.subplots_adjust(left=0.05, right=0.97, top=0.8, bottom=0.2, wspace=0.25)
    return fig


def coupling_mask_explorer(flow):
    """A slider over the couplings of ``flow`` (RealNVP): :func:`draw_coupling_mask`. ``.records`` holds
    :func:`coupling_masks`."""
    import ipywidgets as widgets

    from arflow.viz.explorer import explorer

    records = coupling_masks(flow)
    box = explorer(lambda coupling: draw_coupling_mask(records, coupling),
                   coupling=widgets.IntSlider(0, 0, len(records) - 1, description="coupling layer"))
    box.records = records
    return box
