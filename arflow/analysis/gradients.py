"""Receptive fields found by gradients: which inputs can change a chosen output.

An output depends on an input exactly when some path of non-zero weights joins them; with
random inputs and weights the gradient of that output with respect to the input is then
non-zero almost surely, so ``grad != 0`` draws the receptive field. Tests compare it with
the field computed analytically from the masks (:mod:`arflow.analysis.fields`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from arflow.analysis.masks import colour_mask, mask_of_type
from arflow.models.gated_pixelcnn import GatedPixelCNN


def gradient_field(fn: Callable[[torch.Tensor], torch.Tensor], input_shape: Sequence[int],
                   output_index: Sequence[int | slice], seed: int = 0, double: bool = True) -> torch.Tensor:
    """Boolean tensor of ``input_shape``: True where ``fn(x)[output_index]`` has a non-zero gradient.

    ``output_index`` indexes the output (for example ``(0, slice(None), i, j)`` for all
    channels of pixel (i, j) of the first image). Computed in float64 so that tiny but real
    dependencies are not lost to rounding.
    """
    generator = torch.Generator().manual_seed(seed)
    dtype = torch.float64 if double else torch.float32
    x = torch.rand(tuple(input_shape), generator=generator, dtype=dtype).requires_grad_(True)
    out = fn(x)
    selected = out[tuple(output_index)]
    if selected.numel() == 0:
        raise IndexError(f"output_index {output_index} selects nothing from an output of shape {tuple(out.shape)}")
    (grad,) = torch.autograd.grad(selected.sum(), x, allow_unused=True)
    if grad is None:
        return torch.zeros(tuple(input_shape), dtype=torch.bool)
    return grad != 0


def pixel_field(model: torch.nn.Module, image_size: tuple[int, int], pixel: tuple[int, int],
                in_channels: int = 1) -> torch.Tensor:
    """The (H, W) boolean receptive field of output pixel (i, j) of an image model (B, C, H, W) -> (B, K, H, W)."""
    H, W = image_size
    i, j = pixel
    if not (0 <= i < H and 0 <= j < W):
        raise IndexError(f"pixel {pixel} is outside an image of size {image_size}")
    model = copy.deepcopy(model).double()  # the caller's model keeps its dtype
    field = gradient_field(model, (1, in_channels, H, W), (0, slice(None), i, j))
    return field[0].any(dim=0)


def sequence_support(fn: Callable[[torch.Tensor], torch.Tensor], h: torch.Tensor) -> torch.Tensor:
    """(T, T) boolean: entry [t, s] is True where output position t of ``fn(h)`` depends on input position s.

    ``h`` is (1, T, C) (for example token embeddings); ``fn(h)`` is (1, T, ...). Found by gradients,
    one output position at a time: a causal model gives a lower-triangular support.
    """
    if h.ndim != 3 or h.shape[0] != 1:
        raise ValueError(f"h must have shape (1, T, C), got {tuple(h.shape)}")
    h = h.detach().requires_grad_(True)
    out = fn(h)
    T = h.shape[1]
    support = torch.zeros(T, T, dtype=torch.bool)
    for t in range(T):
        (grad,) = torch.autograd.grad(out[0, t].sum(), h, retain_graph=True)
        support[t] = grad[0].abs().sum(-1) > 0
    return support


# ----------------------------------------------------------------------------- random stacks, for comparison
def masked_stack_function(n_layers: int, kernel_size: int, channels: int = 4, seed: int = 0,
                          first_type: str = "A", later_type: str = "B", colour: bool = False):
    """A function x (B, C, H, W) -> (B, C', H, W): random ``nn.Conv2d`` weights times their masks.

    Only for finding receptive fields by gradients (``arflow.analysis.gradients.gradient_field``): the mask
    multiplies the weights inside the function, and there is no output layer, loss or training.
    ``colour``: 3 input channels (R, G, B) and channel-group masks (:func:`arflow.analysis.masks.colour_mask`).
    """
    generator = torch.Generator().manual_seed(seed)
    c_in = 3 if colour else 1
    widths = [c_in] + [3 * channels if colour else channels] * n_layers
    weights, masks = [], []
    for layer in range(n_layers):
        kind = first_type if layer == 0 else later_type
        shape = (widths[layer + 1], widths[layer], kernel_size, kernel_size)
        weights.append(torch.randn(shape, generator=generator, dtype=torch.float64))
        masks.append(colour_mask(kernel_size, widths[layer], widths[layer + 1], kind) if colour
                     else mask_of_type(kernel_size, kind).expand(shape))

    def forward(x: torch.Tensor) -> torch.Tensor:
        for layer, (w, m) in enumerate(zip(weights, masks)):
            x = F.conv2d(x, (w * m).to(x.dtype), padding=kernel_size // 2)
            if layer < n_layers - 1:
                x = torch.tanh(x)
        return x

    return forward


def masked_stack_gradient_field(image_size: tuple[int, int], pixel: tuple[int, int], n_layers: int,
                                kernel_size: int, first_type: str = "A", later_type: str = "B",
                                seed: int = 0) -> torch.Tensor:
    """The receptive field of ``pixel`` by gradients through a random masked stack (compare with the analytic one)."""
    from arflow.analysis.gradients import gradient_field

    fn = masked_stack_function(n_layers, kernel_size, seed=seed, first_type=first_type, later_type=later_type)
    i, j = pixel
    return gradient_field(fn, (1, 1, *image_size), (0, slice(None), i, j), seed=seed)[0, 0]


def gated_gradient_field(image_size: tuple[int, int], pixel: tuple[int, int], n_layers: int, kernel_size: int,
                         channels: int = 4, seed: int = 0) -> torch.Tensor:
    """The same field by gradients through a randomly initialised Gated PixelCNN.

    The output head (pointwise, with ReLUs that may be inactive at random weights) is replaced by
    the identity, so the gradient is taken of the horizontal stack's features at ``pixel``.
    """
    from arflow.analysis.gradients import pixel_field

    torch.manual_seed(seed)
    model = GatedPixelCNN(n_values=2, channels=channels, n_layers=n_layers, kernel_size=kernel_size)
    model.head = torch.nn.Identity()
    return pixel_field(model, image_size, pixel)
