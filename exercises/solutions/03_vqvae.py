"""Solutions to the exercise of lecture 03 (``lectures/03_vqvae.ipynb``).

Each section starts with the marker line of the lecture cell it fills (``# exercise: NAME``);
``python -m arflow.exercises.fill`` copies it into that cell. Try the exercise before you read on.
The header above the marker (these imports; the lecture's first cell has them) is not copied.
"""
import torch

# exercise: quantizer


def quantize(z_e: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-code quantization with the straight-through estimator.

    z_e: (N, D) encoder outputs; codebook: (K, D) -> z_q (N, D) (the nearest codes, with the gradient with
    respect to z_e copied from z_q) and indices (N,) long.
    """
    distances = torch.cdist(z_e.detach(), codebook)  # (N, K) Euclidean distances
    indices = distances.argmin(dim=1)
    z_q = codebook[indices]
    return z_e + (z_q - z_e).detach(), indices
