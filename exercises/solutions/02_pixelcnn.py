"""Solutions to the exercise of lecture 02 (``lectures/02_pixelcnn.ipynb``).

Each section starts with the marker line of the lecture cell it fills (``# exercise: NAME``);
``python -m arflow.exercises.fill`` copies it into that cell. Try the exercise before you read on.
The header above the marker (these imports; the lecture's first cell has them) is not copied.
"""
import torch

# exercise: gated_masks


def gated_masks(kernel_size: int, first_layer: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The (k, k) 0/1 masks (vertical, horizontal) of one gated layer written with centred k x k kernels."""
    p = kernel_size // 2
    vertical = torch.zeros(kernel_size, kernel_size)
    horizontal = torch.zeros(kernel_size, kernel_size)
    vertical[:p] = 1  # every column of the rows above
    horizontal[p, :p] = 1  # the pixels to the left, in the centre row
    if not first_layer:  # later layers: the features at row i / at (i, j) already exclude the future
        vertical[p] = 1
        horizontal[p, p] = 1
    return vertical, horizontal
