"""Assignment 10_ar: every grade cell's check, as it runs on any box.

The visible checks are :mod:`arflow.checks.pixelcnn`'s (the notebook runs the same ones); the
hidden ones are :mod:`autograder.checks`'s, and the trained model's check loads the weights
file through the probes first.
"""

from arflow.checks.pixelcnn import CHECKS as VISIBLE_CHECKS
from autograder.checks import CHECKS as HIDDEN_CHECKS
from autograder.checks import check_loaded_model

CHECKS = {**VISIBLE_CHECKS, **HIDDEN_CHECKS, "hidden_trained_model": check_loaded_model}
