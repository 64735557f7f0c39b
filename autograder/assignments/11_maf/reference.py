"""The reference MADE and MAF of assignment 11_maf. SECRET: never released.

The same code as the solution cells of ``solutions/11_maf/maf.ipynb`` (a test checks that
every line of :data:`SOLUTION_SOURCES` appears in them). Conventions (the notebook's contract):

- an ``ordering`` is a permutation of 0..D-1: ``ordering[j]`` is the position (degree) of input j;
  output d may depend on input j if and only if ``ordering[j] < ordering[d]``;
- ``made_masks`` returns one (out_features, in_features) float 0/1 mask per linear layer, the
  last one (D, h_L): one row per input d (MADE repeats it for the means and the log-scales);
- ``MAFLayer.forward(x) -> (z, log_det)`` with z = (x - mu(x)) exp(-log_scale(x)) and
  log_det = log|det dz/dx| = -sum_d log_scale_d (B,); ``inverse(z) -> x`` in D sequential passes;
- ``MAF`` stacks MAFLayers (orderings alternate natural / reversed) over a standard normal base.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

#: The notebook's training settings for the digits (the calibration trains with exactly these).
DEFAULTS = dict(batch_size=100, lr=1e-3, steps=3000, seed=0, clip_grad=10.0)


def made_masks(n_inputs, hidden_sizes, ordering):
    """MADE's masks (Germain et al., 2015) for inputs of degrees ``ordering``.

    Args:
        n_inputs: D >= 2.
        hidden_sizes: sizes (h_1, ..., h_L) of the hidden layers (L >= 0).
        ordering: a permutation of 0..D-1; ordering[j] is the degree of input j.
    Returns: a list of L + 1 float tensors of 0/1, shapes (h_1, D), (h_2, h_1), ..., (D, h_L).
    """
    # Hidden unit k of every layer has degree k mod (D - 1) (the paper's deterministic variant), so
    # every degree 0..D-2 is used when h >= D - 1 and every hidden unit has inputs and outputs.
    D = int(n_inputs)
    if D < 2:
        raise ValueError(f"n_inputs must be at least 2, got {n_inputs}")
    hidden_sizes = [int(h) for h in hidden_sizes]
    if any(h < 1 for h in hidden_sizes):
        raise ValueError(f"hidden sizes must be positive, got {hidden_sizes}")
    degrees = np.asarray(ordering, dtype=np.int64).reshape(-1)
    if sorted(degrees.tolist()) != list(range(D)):
        raise ValueError(f"ordering must be a permutation of 0..{D - 1}, got {list(ordering)}")
    masks, previous = [], degrees
    for h in hidden_sizes:
        hidden = np.arange(h) % (D - 1)
        masks.append(hidden[:, None] >= previous[None, :])  # a hidden unit sees degrees up to its own
        previous = hidden
    masks.append(degrees[:, None] > previous[None, :])  # output d sees only degrees below its own
    return [torch.from_numpy(m.astype(np.float32)) for m in masks]


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask in every forward pass.

    Shapes: x (B, in_features) -> (B, out_features); mask (out_features, in_features).
    """

    def __init__(self, in_features, out_features, mask):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.float32).clone())

    def forward(self, x):
        # Masked at every call: no optimizer step can open a connection the mask forbids.
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """A masked autoencoder: output d depends only on inputs j with ordering[j] < ordering[d].

    Shapes: x (B, D) -> (mu (B, D), log_scale (B, D)).
    """

    def __init__(self, n_inputs, hidden_sizes=(64, 64), ordering=None):
        super().__init__()
        D = int(n_inputs)
        ordering = list(range(D)) if ordering is None else [int(o) for o in ordering]
        masks = made_masks(D, hidden_sizes, ordering)
        sizes = [D, *[int(h) for h in hidden_sizes]]
        layers = []
        for n_in, n_out, mask in zip(sizes[:-1], sizes[1:], masks[:-1]):
            layers += [MaskedLinear(n_in, n_out, mask), nn.ReLU()]
        # Two outputs per input (its mean and its log-scale): the output mask, twice.
        layers.append(MaskedLinear(sizes[-1], 2 * D, torch.cat([masks[-1], masks[-1]])))
        self.net = nn.Sequential(*layers)
        self.register_buffer("ordering", torch.tensor(ordering))

    def forward(self, x):
        mu, log_scale = self.net(x).chunk(2, dim=1)
        return mu, log_scale


class MAFLayer(nn.Module):
    """One autoregressive affine flow layer: z_d = (x_d - mu_d(x_<d)) exp(-log_scale_d(x_<d)).

    forward: x (B, D) -> (z (B, D), log_det (B,)), log_det = log|det dz/dx|.
    inverse: z (B, D) -> x (B, D), D sequential passes in the layer's ordering.
    """

    def __init__(self, n_inputs, hidden_sizes=(64, 64), ordering=None):
        super().__init__()
        self.made = MADE(n_inputs, hidden_sizes, ordering)

    def forward(self, x):
        mu, log_scale = self.made(x)
        z = (x - mu) * torch.exp(-log_scale)
        return z, -log_scale.sum(dim=1)

    def inverse(self, z):
        x = torch.zeros_like(z)
        # In the layer's ordering, x_d needs only the x_j already computed: one pass per dimension.
        for d in torch.argsort(self.made.ordering).tolist():
            mu, log_scale = self.made(x)
            x = x.clone()
            x[:, d] = z[:, d] * torch.exp(log_scale[:, d]) + mu[:, d]
        return x


class MAF(nn.Module):
    """A masked autoregressive flow: MAFLayers with alternating orderings over a N(0, I) base.

    forward: x (B, D) -> (z (B, D), log_det (B,)) summed over layers; inverse: z -> x;
    log_prob: x (B, D) -> (B,) in nats; sample(n) -> (n, D).
    """

    def __init__(self, n_inputs=196, n_layers=5, hidden_sizes=(128,)):
        super().__init__()
        self.n_inputs = int(n_inputs)
        natural = list(range(self.n_inputs))
        self.layers = nn.ModuleList(
            MAFLayer(self.n_inputs, hidden_sizes, natural if k % 2 == 0 else natural[::-1]) for k in range(n_layers))

    def forward(self, x):
        log_det = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, z):
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def log_prob(self, x):
        z, log_det = self(x)
        return -0.5 * (z ** 2).sum(dim=1) - 0.5 * self.n_inputs * math.log(2 * math.pi) + log_det

    def sample(self, n):
        device = next(self.parameters()).device
        with torch.no_grad():
            return self.inverse(torch.randn(n, self.n_inputs, device=device))
