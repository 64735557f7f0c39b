"""Solutions to the exercise of lecture 00 (``lectures/00_introduction.ipynb``).

Each section starts with the marker line of the lecture cell it fills (``# exercise: NAME``);
``python -m arflow.exercises.fill`` copies it into that cell. Try the exercise before you read on.
The header above the marker (these imports; the lecture's first cell has them) is not copied.
"""
import torch

# exercise: chain_rule


def conditionals(joint: torch.Tensor) -> list[torch.Tensor]:
    """The chain rule on a table: joint (2,)*D -> [p(x_1), p(x_2 | x_1), ..., p(x_D | x_<D)].

    Table d (0-based) has shape (2,)*(d+1), indexed by x_1..x_{d+1}.
    """
    D = joint.ndim
    tables = []
    for d in range(D):
        upto = joint.sum(dim=tuple(range(d + 1, D))) if d + 1 < D else joint  # p(x_1..x_{d+1}): the future summed out
        tables.append(upto / upto.sum(dim=-1, keepdim=True))  # divided by p(x_1..x_d)
    return tables
