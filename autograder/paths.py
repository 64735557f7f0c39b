"""Where the course is: the one place the grader computes the repository's root."""

from pathlib import Path

#: the course checkout (solutions/, assignments/, arflow/, autograder/)
REPO = Path(__file__).resolve().parent.parent
