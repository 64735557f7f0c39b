"""Helpers shared by the flow tests."""

import torch


def randomize(module, scale=0.3, seed=0):
    """Perturb every parameter, so that no layer is the identity (the nets start at zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module
