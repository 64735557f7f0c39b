"""Solutions to the exercise of lecture 05 (``lectures/05_sparse_transformers_dalle.ipynb``).

Each section starts with the marker line of the lecture cell it fills (``# exercise: NAME``);
``python -m arflow.exercises.fill`` copies it into that cell. Try the exercise before you read on.
The header above the marker (these imports; the lecture's first cell has them) is not copied.
"""
import torch

# exercise: strided_pattern


def strided_pattern(n: int, stride: int) -> torch.Tensor:
    """The (2, n, n) boolean masks of the strided pattern, True where query i may attend to key j."""
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    back = i - j  # how many steps back key j lies
    local = (back >= 0) & (back < stride)
    strided = (back >= 0) & (back % stride == 0)
    return torch.stack([local, strided])
