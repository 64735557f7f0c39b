"""Late submissions: a configurable penalty policy, for plain nbgrader and for the course's grader.

nbgrader already knows how late a submission is: the submission's time is in ``timestamp.txt``
in the submission folder, the assignment's due date in the gradebook, and ``nbgrader autograde``'s
``AssignLatePenalties`` preprocessor asks a ``LateSubmissionPlugin`` for the penalty of each late
notebook (``late_submission_penalty(student_id, score, total_seconds_late)``, returning the points
to deduct, or None for none; nbgrader stores it as the notebook's ``late_submission_penalty`` and
clamps it to ``[0, score]``). This module gives:

- :class:`LatePolicy` and :func:`late_penalty`, a pure function of (score, max score, seconds late,
  policy) that both paths call: the plugin below and the course's hardened grader;
- :class:`LatePenaltyPlugin`, the nbgrader plugin, configured with traitlets in
  ``nbgrader_config.py``::

      c.AssignLatePenalties.plugin_class = "autograder.late.LatePenaltyPlugin"
      c.LatePenaltyPlugin.grace_minutes = 15     # up to 15 min late counts as on time
      c.LatePenaltyPlugin.percent_per_day = 10   # 10 % of the max score per started day late
      c.LatePenaltyPlugin.zero_after_days = 7    # more than 7 days late: the score is 0 (None: never)

The policy: on time, or late by at most the grace period, costs nothing. Beyond it, every started
day (24 h) counted from the due date costs ``percent_per_day`` % of the maximum score (1 h late = 1
day, 1.5 days late = 2 days); late by more than ``zero_after_days`` days, the whole score is lost.
The penalty is never negative and never more than the score. nbgrader computes penalties per
notebook with each notebook's own max score; since the deduction is linear in the max score,
their sum is the same percentage of the assignment's max score (only the clamp to the score is per
notebook).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float, TraitError, validate

DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class LatePolicy:
    """How much a late submission costs (see the module's docstring)."""

    grace_minutes: float = 0.0
    percent_per_day: float = 10.0
    zero_after_days: float | None = None  # None: never zero, only the per-day deduction

    def __post_init__(self):
        for name in ("grace_minutes", "percent_per_day", "zero_after_days"):
            value = getattr(self, name)
            if value is None and name == "zero_after_days":
                continue
            if not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
                raise ValueError(f"late policy: {name} must be a number >= 0, got {value!r}")


def late_penalty(score: float, max_score: float, seconds_late: float, policy: LatePolicy) -> float:
    """The points deducted from ``score`` (out of ``max_score``) for a submission ``seconds_late`` late.

    Returns a float in ``[0, max(score, 0)]``: 0 when on time or within the grace period,
    ``started_days * percent_per_day / 100 * max_score`` (at most the score) after it, the whole
    score when late by more than ``zero_after_days`` days.
    """
    for name, value in (("score", score), ("max_score", max_score), ("seconds_late", seconds_late)):
        if not isinstance(value, (int, float)) or math.isnan(value):
            raise ValueError(f"late_penalty: {name} must be a number, got {value!r}")
    if max_score < 0:
        raise ValueError(f"late_penalty: max_score must be >= 0, got {max_score!r}")
    score = max(float(score), 0.0)  # nothing to take from a negative score
    if seconds_late <= policy.grace_minutes * 60:
        return 0.0
    if policy.zero_after_days is not None and seconds_late > policy.zero_after_days * DAY_SECONDS:
        return score
    started_days = math.ceil(seconds_late / DAY_SECONDS)
    return min(started_days * policy.percent_per_day / 100.0 * float(max_score), score)


class LatePenaltyPlugin(LateSubmissionPlugin):
    """nbgrader's late-submission plugin applying :func:`late_penalty` (configure in nbgrader_config.py).

    nbgrader gives the plugin a notebook's score but not its maximum: the plugin reads it from
    the gradebook that nbgrader's ``AssignLatePenalties`` (its parent) has open.
    """

    grace_minutes = Float(0.0, help="Minutes after the due date that still count as on time.").tag(config=True)
    percent_per_day = Float(
        10.0, help="Percent of the maximum score deducted per started day (24 h) late, counted from the due date."
    ).tag(config=True)
    zero_after_days = Float(
        None, allow_none=True, help="Late by more than this many days: the score is 0 (None: never)."
    ).tag(config=True)

    @validate("grace_minutes", "percent_per_day", "zero_after_days")
    def _non_negative(self, proposal):
        value = proposal["value"]
        if value is not None and (math.isnan(value) or value < 0):
            raise TraitError(f"LatePenaltyPlugin.{proposal['trait'].name} must be >= 0, got {value!r}")
        return value

    def policy(self) -> LatePolicy:
        return LatePolicy(self.grace_minutes, self.percent_per_day, self.zero_after_days)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        max_score = self._notebook_max_score(student_id)
        penalty = late_penalty(score or 0.0, max_score, total_seconds_late, self.policy())
        self.log.info("Late policy %s: %s is %.0f s late, penalty %s of %s", self.policy(), student_id,
                      total_seconds_late, penalty, max_score)
        return penalty

    def _notebook_max_score(self, student_id: str) -> float:
        parent = self.parent
        try:
            gradebook, notebook, assignment = parent.gradebook, parent.notebook_id, parent.assignment_id
        except AttributeError:
            raise RuntimeError("LatePenaltyPlugin needs nbgrader's AssignLatePenalties as its parent "
                               "(to read the notebook's max score from the gradebook)") from None
        return float(gradebook.find_submission_notebook(notebook, assignment, student_id).max_score)
