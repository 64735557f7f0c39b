"""The instructor's summary of a grading run: scores per part, failures grouped by reason, who needs a look.

Written by ``autograder.grade`` as ``OUT/summary.md`` and ``OUT/summary.png`` (one histogram of
the points per part of the assignment, and of the totals), and printed at the end of the run.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

#: (category, pattern) in order: the first pattern found in a failure's reason names its category
CATEGORIES = [
    ("not graded (refused at intake)", r"^not graded: "),
    ("not graded (grader failure)", r"NOT GRADED|the grader failed|grading worker failed|limit per submission"),
    ("notebook missing or unreadable", r"not a valid notebook|no readable \w+\.ipynb|could not be read"),
    ("time limit", r"time limit|timed out|no answer within"),
    ("memory limit", r"MemoryError|out of memory|memory"),
    ("output or file size limit", r"more than \d+ MB|SIGXFSZ|size limit|larger than|File too large|Errno 27"),
    ("process died (exit, signal)", r"died|has exited|SystemExit|exit status|signal|stopped the process"),
    ("weights missing", r"\w+\.pth was not submitted"),
    ("weights rejected", r"\w+\.pth could not be loaded|Weights only load failed|UnpicklingError"),
    ("trained model not good enough", r"bits/dim .* is not below|not causal on real digits"),
    ("answer missing", r"is not defined|no cell defines|NotImplementedError"),
    ("exception in the code", r"\w+Error: |\w+Exception: "),
    ("wrong answer", r""),
]
#: notes that make a submission worth an instructor's look even when it graded cleanly
LOOK = r"renamed|grade cells were changed|not a valid notebook|NOT GRADED|grader failed|worker failed|not taken|" \
       r"not graded|symbolic link|time limit|printed more than|memory limit|removed from this page|" \
       r"changed outside this grader"


def md_text(text: str, limit: int = 200) -> str:
    """Text from a submission (an id, a file name, an exception) as inert markdown on one line:
    no heading, link, image, HTML or table can be forged with it."""
    flat = " ".join(str(text).split())[:limit]
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~-])", r"\\\1", flat)


def categorize(reason: str) -> str:
    for name, pattern in CATEGORIES:
        if re.search(pattern, reason, flags=re.I):
            return name
    return "wrong answer"


def write_summary(out: Path, summary: dict) -> dict:
    """Write OUT/summary.md and OUT/summary.png; returns their paths and the text printed at the end."""
    from .assignment import load
    from .intake import shown

    assignment = load(summary.get("assignment", "10_ar"))

    rows = {row["key"]: row for row in summary["rows"]}
    names = {key: shown(name) for key, name in summary.get("names", {}).items()}
    results = summary["results"]
    # Failures grouped by reason: each failing grade cell of each student, by the category of its reason.
    # One line per student and category: the grade cells it cost, and the first reason.
    by: dict[str, dict[str, tuple[list[str], str]]] = defaultdict(dict)
    for student in summary["students"]:
        result = results.get(student, {})
        flag = summary.get("flags", {}).get(student, "")
        if flag.startswith("not graded: "):
            by[categorize(flag)][student] = ([], flag)
            continue
        if "failed" in result:
            by[categorize("NOT GRADED " + result["failed"])][student] = ([], result["failed"])
            continue
        for gid, error in result.get("errors", {}).items():
            cells, first = by[categorize(error)].setdefault(student, ([], error))
            cells.append(gid)
    groups: dict[str, list[str]] = {
        name: [md_text(names.get(student, student), 80) + (f" ({', '.join(cells)})" if cells else "") + ": "
               + md_text(first) for student, (cells, first) in entries.items()]
        for name, entries in by.items()}
    look = {}
    for student in summary["students"]:
        flagged = [p for p in summary["problems"].get(student, []) if re.search(LOOK, p, flags=re.I)]
        if flagged:
            look[student] = flagged
    figure = out / "summary.png"
    _histograms(figure, rows, assignment)
    lines = [f"# Grading summary: {len(rows)} submissions", "",
             f"Mean total {np.mean([r['total'] for r in rows.values()]) if rows else 0:.1f} of "
             f"{next(iter(rows.values()))['max_total'] if rows else 0:g}; figure: summary.png", "",
             "## Failures grouped by reason", ""]
    order = [name for name, _ in CATEGORIES]
    for name in sorted(groups, key=order.index):
        lines.append(f"### {name}: {len(groups[name])} student(s)")
        lines += [f"- {item}" for item in groups[name][:50]]
        lines.append("")
    lines += ["## Submissions that need a look", ""]
    lines += [f"- **{md_text(names.get(s, s), 80)}**: " + "; ".join(md_text(p) for p in items)
              for s, items in look.items()] or ["(none)"]
    memory = [m["worker_peak_bytes"] for m in summary.get("memory", {}).values() if m.get("worker_peak_bytes")]
    jailed = [m["submission_peak_bytes"] for m in summary.get("memory", {}).values() if m.get("submission_peak_bytes")]
    if memory:
        lines += ["", "## Memory", "",
                  f"Grader's worker, peak per submission: median {np.median(memory) / 2**20:.0f} MiB, "
                  f"largest {max(memory) / 2**20:.0f} MiB."]
        if jailed:
            lines.append(f"A submission's own processes together (cgroup), peak: median "
                         f"{np.median(jailed) / 2**20:.0f} MiB, largest {max(jailed) / 2**20:.0f} MiB.")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    students_by_reason = {name: sorted(by[name]) for name in sorted(by, key=order.index)}
    text = [f"summary: {len(rows)} submissions; failures by reason:"]
    for name, students in students_by_reason.items():
        shown_ = [names.get(s, s) for s in students[:12]]
        text.append(f"  {name}: {', '.join(shown_)}{' ...' if len(students) > 12 else ''}")
    text.append("needs a look: " + (", ".join(names.get(s, s) for s in look) if look else "none"))
    return {"markdown": str(out / "summary.md"), "figure": str(figure), "groups": students_by_reason,
            "details": groups, "look": look, "text": "\n".join(text)}


def _histograms(path: Path, rows: dict, assignment) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    parts, max_points = assignment.parts(), assignment.max_points
    names = [*parts, "total"]
    ncols = 3
    fig, axes = plt.subplots((len(names) + ncols - 1) // ncols, ncols, figsize=(12, 3.25 * ((len(names) + 2) // 3)),
                             squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        ids = parts.get(name)
        values = [sum(r.get(g, 0.0) for g in ids) if ids else r["total"] for r in rows.values()]
        top = sum(max_points(g) for g in ids) if ids else sum(max_points(g) for g in assignment.grade_ids())
        bins = np.arange(-0.5, top + 1.5, 1.0)
        ax.hist(values, bins=bins, color="tab:blue", edgecolor="white")
        ax.set_title(f"{name} (of {top:g} points)")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("points")
        ax.set_ylabel("students")
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"Scores per part of assignment {assignment.name} ({len(rows)} submissions)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
