"""Exercise of lecture 00: the chain rule of probability on a table.

The student writes ``conditionals(joint)``: for a joint distribution of D binary variables, a (2,)*D table,
the list of the D conditional tables p(x_d | x_<d), the d-th of shape (2,)*(d+1) (index: x_1..x_d). Checked
by brute force over every point: each conditional sums to 1 over x_d, and their product is the joint.
(Together these pin every conditional down wherever the past has positive probability.)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch

from arflow.exercises.core import Wrong, call, evaluate, expect_tensor, report

NAME = "chain_rule"


def random_joint(D: int, seed: int) -> torch.Tensor:
    """A random (2,)*D table of positive probabilities summing to 1, far from independent."""
    g = torch.Generator().manual_seed(seed)
    table = torch.rand((2,) * D, generator=g, dtype=torch.float64) ** 3 + 0.01
    return table / table.sum()


def verify(fn: Callable) -> str:
    """Raise :class:`Wrong` with an explanation, or return what was verified."""
    for D, seed in ((3, 0), (4, 1)):
        joint = random_joint(D, seed)
        what = f"conditionals(joint) for D={D} variables"
        out = call(fn, joint.clone(), what=what)
        if not isinstance(out, list | tuple) or len(out) != D:
            raise Wrong(f"{what} should return a list of {D} tables (one per variable), received "
                        f"{type(out).__name__}{f' of length {len(out)}' if isinstance(out, list | tuple) else ''}")
        tables = [expect_tensor(t, (2,) * (d + 1), f"table {d} (p(x_{d + 1} | x_<{d + 1})) of {what}")
                  for d, t in enumerate(out)]
        for d, table in enumerate(tables):
            sums = table.detach().sum(-1)
            bad = ((sums - 1).abs() > 1e-6).nonzero()
            if len(bad):
                past = tuple(bad[0].tolist())
                raise Wrong(f"p(x_{d + 1} | x_<{d + 1}) does not sum to 1 over x_{d + 1} at x_<{d + 1} = {past}: it "
                            f"sums to {sums[past].item():.4f} (D={D}). A conditional is the marginal of x_1..x_{d + 1} "
                            f"divided by the marginal of the past {'x_1' if d == 1 else f'x_1..x_{d}'}.")
        for x in itertools.product((0, 1), repeat=D):
            product = torch.stack([tables[d][x[:d + 1]] for d in range(D)]).prod()
            if abs(product.item() - joint[x].item()) > 1e-6:
                raise Wrong(f"at x = {x} the product of your conditionals is {product.item():.4f}, the joint is "
                            f"{joint[x].item():.4f} (D={D}): the chain rule p(x) = prod_d p(x_d | x_<d) fails. Each "
                            "conditional must depend on the past (marginalise the future variables, not the past).")
    return ("for tables of 3 and 4 binary variables, every conditional sums to 1 over its variable and their product "
            "equals the joint at every point (brute force over all 8 and 16 points).")


def check_chain_rule(fn: Callable) -> None:
    """Check the student's ``conditionals(joint)`` and print the verdict."""
    report(evaluate(NAME, verify, fn))
