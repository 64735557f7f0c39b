"""The machinery every exercise check shares: call the student's code, turn a failure into a sentence,
print one verdict.

A check (``verify_*`` in the other modules) calls the student's function through :func:`call` and raises
:class:`Wrong` with an explanation in the student's terms when something is off; it returns a sentence
saying what it verified. :func:`evaluate` turns that into a :class:`Verdict`, :func:`report` prints it.
A stub whose body raises ``NotImplementedError`` gives the verdict "not written yet", never an exception,
so that "Run All" on a lecture runs to the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

STATUSES = ("correct", "not right yet", "not written yet")


class NotWritten(Exception):
    """The student's function still raises ``NotImplementedError``."""


class Wrong(Exception):
    """The student's code ran but gave a wrong answer; the message says what and, where it can, why."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of one exercise check: ``status`` is one of :data:`STATUSES`."""

    name: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "correct"

    @property
    def line(self) -> str:
        """The printed verdict, starting with ``[name] status:`` (tests look for ``[name] correct:``)."""
        return f"[{self.name}] {self.status}: {self.message}"


def call(fn: Callable, *args, what: str | None = None):
    """``fn(*args)``; NotImplementedError becomes :class:`NotWritten`, any other error :class:`Wrong`."""
    what = what or f"{getattr(fn, '__name__', 'your function')}(...)"
    try:
        return fn(*args)
    except NotImplementedError as error:
        raise NotWritten(f"{what} still raises NotImplementedError") from error
    except (NotWritten, Wrong):
        raise
    except Exception as error:  # the student's code failed: say how, do not stop the notebook
        raise Wrong(f"{what} raised {type(error).__name__}: {error}") from error


def expect_tensor(value, shape: Sequence[int], what: str, dtype_kind: str = "float") -> torch.Tensor:
    """Check that ``value`` is a tensor of ``shape`` ("float", "integer" or "bool" entries), finite if float."""
    if not isinstance(value, torch.Tensor):
        raise Wrong(f"{what} should be a torch.Tensor of shape {tuple(shape)}, received a {type(value).__name__}")
    if tuple(value.shape) != tuple(shape):
        raise Wrong(f"{what} should have shape {tuple(shape)}, received shape {tuple(value.shape)}")
    kinds = {"float": value.is_floating_point(), "bool": value.dtype == torch.bool,
             "integer": not value.is_floating_point() and not value.is_complex() and value.dtype != torch.bool}
    if not kinds[dtype_kind]:
        raise Wrong(f"{what} should hold {dtype_kind} entries, received dtype {value.dtype}")
    if dtype_kind == "float" and not torch.isfinite(value).all():
        bad = (~torch.isfinite(value)).nonzero()[0].tolist()
        raise Wrong(f"{what} holds NaN or inf, first at index {tuple(bad)}")
    return value


def worst(error: torch.Tensor) -> tuple[float, tuple[int, ...]]:
    """The largest entry of a tensor of absolute errors and its index."""
    flat = int(error.argmax())
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), error.shape))
    return float(error.max()), index


def evaluate(name: str, verify: Callable[..., str], *args) -> Verdict:
    """Run ``verify(*args)`` and return its verdict (never raises for the student's mistakes).

    The check runs on a fork of torch's random state: the notebook's later cells draw the same random numbers
    whether the exercise was done or not.
    """
    try:
        with torch.random.fork_rng(devices=[]):
            verified = verify(*args)
    except NotWritten as error:
        return Verdict(name, "not written yet", f"{error}. Replace `raise NotImplementedError` with your code, "
                                                "then run this cell again.")
    except Wrong as error:
        return Verdict(name, "not right yet", str(error))
    except Exception as error:  # e.g. an output without gradient: still a verdict, never a crash
        return Verdict(name, "not right yet", f"checking your code failed with {type(error).__name__}: {error}")
    return Verdict(name, "correct", verified)


STRICT_ENV = "ARFLOW_EXERCISES_STRICT"


def report(verdict: Verdict) -> None:
    """Print the verdict: one line, then nothing else (the check cell's output).

    With ``ARFLOW_EXERCISES_STRICT=1`` (CI executing the lectures with the solutions filled in) a verdict
    other than correct also raises ``AssertionError``, so a solution that stops passing fails the run.
    """
    print(verdict.line)
    if os.environ.get(STRICT_ENV) == "1" and not verdict.passed:
        raise AssertionError(f"{STRICT_ENV}=1 and an exercise check did not pass: {verdict.line}")
