"""Solutions to the exercise of lecture 01 (``lectures/01_causal_convolutions_wavenet.ipynb``).

Each section starts with the marker line of the lecture cell it fills (``# exercise: NAME``);
``python -m arflow.exercises.fill`` copies it into that cell. Try the exercise before you read on.
The header above the marker (these imports; the lecture's first cell has them) is not copied.
"""
import torch

# exercise: causal_conv
import torch.nn.functional as F


def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, dilation: int) -> torch.Tensor:
    """A causal, dilated 1-D convolution without bias.

    x: (B, C_in, T); weight: (C_out, C_in, k) -> (B, C_out, T); output t reads only the inputs
    t - (k-1)·dilation, ..., t - dilation, t.
    """
    k = weight.shape[-1]
    x = F.pad(x, ((k - 1) * dilation, 0))  # zeros on the left (the past) only
    return F.conv1d(x, weight, dilation=dilation)
