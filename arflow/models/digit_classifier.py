"""A small CNN that names the digit in a 28x28 image: the course's judge of generated samples.

It is not a generative model. It answers one question for the lectures: does a sample look like
a digit, and which one? :mod:`arflow.evaluate.samples` turns its answers into a score.
"""

from __future__ import annotations

import torch
from torch import nn

from arflow.utils import model_device


class DigitClassifier(nn.Module):
    """Two conv + max-pool blocks and a two-layer head: (B, 1, 28, 28) floats in [0, 1] -> (B, 10) logits.

    ``channels``: widths of the two conv blocks; ``hidden``: width of the head; ``dropout`` before
    the last layer (training only).
    """

    def __init__(self, channels: tuple[int, int] = (32, 64), hidden: int = 128, dropout: float = 0.3):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (B, c1, 14, 14)
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c2, 7, 7)
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c2 * 7 * 7, hidden), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(hidden, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 1, 28, 28) in [0, 1] -> logits (B, 10)."""
        if x.dim() != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"DigitClassifier expects images of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        return self.head(self.features(x))

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Class probabilities (B, 10) of images (B, 1, 28, 28), in eval mode, in batches."""
        was_training = self.training
        self.eval()
        device = model_device(self)
        probs = torch.cat([self(chunk.to(device).float()).softmax(-1).cpu() for chunk in x.split(batch_size)])
        self.train(was_training)
        return probs
