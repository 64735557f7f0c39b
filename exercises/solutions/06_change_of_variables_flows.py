"""Solutions to the exercise of lecture 06 (``lectures/06_change_of_variables_flows.ipynb``).

Each section starts with the marker line of the lecture cell it fills (``# exercise: NAME``);
``python -m arflow.exercises.fill`` copies it into that cell. Try the exercise before you read on.
The header above the marker (these imports; the lecture's first cell has them) is not copied.
"""
import torch

# exercise: sinh_flow


def sinh_forward(z: torch.Tensor, a: float) -> tuple[torch.Tensor, torch.Tensor]:
    """x = sinh(a z) / a elementwise: z (B, D) -> x (B, D) and log|det dx/dz| (B,)."""
    x = torch.sinh(a * z) / a
    log_det = torch.log(torch.cosh(a * z)).sum(dim=1)  # dx/dz = cosh(a z) > 0, one factor per dimension
    return x, log_det


def sinh_inverse(x: torch.Tensor, a: float) -> torch.Tensor:
    """z = asinh(a x) / a: x (B, D) -> z (B, D)."""
    return torch.asinh(a * x) / a
