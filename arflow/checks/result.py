"""The verdict of one grade cell: points per sub-check and a sentence saying what failed."""

from __future__ import annotations

from dataclasses import dataclass, field

#: The ``kind`` of a visible grade cell's verdict (shown in its report; the default kind is a hidden cell's).
VISIBLE_KIND = "visible tests, judged again by the grader outside your notebook"


@dataclass
class SubCheck:
    name: str
    points: float
    passed: bool
    message: str = ""


@dataclass
class CheckResult:
    """One grade cell's verdict. ``error``: why the whole check could not run (every sub-check
    then scores 0); ``info``: a measurement worth showing even when everything passed."""

    grade_id: str
    title: str
    subchecks: list[SubCheck] = field(default_factory=list)
    error: str = ""
    info: str = ""
    kind: str = "hidden tests, run by the grader"

    @property
    def max_points(self) -> float:
        return float(sum(s.points for s in self.subchecks))

    @property
    def score(self) -> float:
        return float(sum(s.points for s in self.subchecks if s.passed))

    @property
    def passed(self) -> bool:
        return bool(self.subchecks) and all(s.passed for s in self.subchecks)

    def add(self, name: str, points: float, passed: bool, message: str = "") -> bool:
        self.subchecks.append(SubCheck(name, points, bool(passed), message))
        return bool(passed)

    def failures(self) -> list[str]:
        """The messages of the failed sub-checks (their names where they have none)."""
        return [s.message or s.name for s in self.subchecks if not s.passed]

    def report(self) -> str:
        lines = [f"{self.title}: {self.score:g} / {self.max_points:g} points ({self.kind})"]
        for s in self.subchecks:
            mark = "PASS" if s.passed else "FAIL"
            lines.append(f"  [{mark}] {s.name} ({s.points:g} pt)" + (f": {s.message}" if s.message and not s.passed
                                                                      else ""))
        if self.info:
            lines.append(f"  {self.info}")
        if self.error:
            lines.append(f"  note: {self.error}")
        return "\n".join(lines)
