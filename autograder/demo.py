"""``python -m autograder demo`` (``make demo``): release, grade the sample submissions, show the scores."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .assignment import REPO
from .grade import grade, print_table
from .release import generate

SAMPLES = Path(__file__).resolve().parent / "assignments" / "10_ar" / "samples"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder demo", description=__doc__)
    parser.add_argument("--out", default=None, help="where to grade (default: graded/ in the repo)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    target = generate("10_ar", REPO / "assignments" / "10_ar")
    print(f"1. release regenerated: {target.relative_to(REPO)}")
    out = Path(args.out) if args.out else REPO / "graded"
    print(f"2. grading the sample submissions in {SAMPLES.relative_to(REPO)} into {out} ...")
    summary = grade(SAMPLES, out, jobs=args.jobs, log=lambda *a: None)
    expected = json.loads((SAMPLES.parent / "samples_expected.json").read_text())
    print("3. scores per grade cell (v: visible tests, h: hidden tests):")
    print_table(summary)
    mismatched = [r["student_id"] for r in summary["rows"]
                  if r["student_id"] in expected and abs(r["total"] - expected[r["student_id"]]["total"]) > 1e-9]
    print("   all totals as expected (autograder/assignments/10_ar/samples_expected.json)" if not mismatched
          else f"   UNEXPECTED totals for: {', '.join(mismatched)}")
    print(f"4. gradebook: {out / 'gradebook.db'}; grades: {out / 'grades.csv'}")
    print(f"   feedback: {out / 'feedback'}/<student>/10_ar/pixelcnn.html ({summary['seconds']:.0f} s in all)")
    return 1 if mismatched else 0
