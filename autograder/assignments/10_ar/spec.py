"""Assignment 10_ar: what the engine needs to know (see :mod:`autograder.assignment`)."""

from arflow.checks.pixelcnn import VISIBLE
from autograder.checks import PLAN

ASSIGNMENT = "10_ar"
NOTEBOOK = "pixelcnn"
WEIGHTS = "pixelcnn.pth"
PROBES = "arflow/checks/pixelcnn_probes.py"
SOLUTION_IDS = ("masked_conv", "pixelcnn", "loss_fn", "generate")
SOLUTION_NAMES = {"masked_conv": "MaskedConv2d", "pixelcnn": "PixelCNN", "loss_fn": "loss_fn", "generate": "generate"}

__all__ = ["ASSIGNMENT", "NOTEBOOK", "PLAN", "PROBES", "SOLUTION_IDS", "SOLUTION_NAMES", "VISIBLE", "WEIGHTS"]
