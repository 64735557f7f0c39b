"""Solutions to the exercise of lecture 07 (``lectures/07_realnvp_glow.ipynb``).

Each section starts with the marker line of the lecture cell it fills (``# exercise: NAME``);
``python -m arflow.exercises.fill`` copies it into that cell. Try the exercise before you read on.
The header above the marker (these imports; the lecture's first cell has them) is not copied.
"""
import torch

# exercise: coupling


def coupling_forward(x: torch.Tensor, mask: torch.Tensor, net) -> tuple[torch.Tensor, torch.Tensor]:
    """Affine coupling: x (B, D), mask (D,) 0/1 (1 = kept), net(kept) -> (s, t) each (B, D).

    Returns y (B, D) and log|det dy/dx| (B,).
    """
    s, t = net(mask * x)
    y = mask * x + (1 - mask) * (x * torch.exp(s) + t)
    return y, ((1 - mask) * s).sum(dim=1)  # only the transformed entries are scaled


def coupling_inverse(y: torch.Tensor, mask: torch.Tensor, net) -> torch.Tensor:
    """The inverse: y (B, D) -> x (B, D); s and t come from the kept part, which y shares with x."""
    s, t = net(mask * y)
    return mask * y + (1 - mask) * (y - t) * torch.exp(-s)
