"""Sample submissions: an assignment's reference solution cells with one typical mistake written in.

Each assignment's ``make_samples.py`` (and the hostile corpus of the tests) describe a mistake as
edits of the reference cells, grade id -> ``[(old, new), ...]``, so that the samples follow the
solution when it changes, and say so when an edit no longer applies.
"""

from __future__ import annotations


def with_edits(cells: dict[str, str], edits: dict[str, list[tuple[str, str]]], label: str) -> dict[str, str]:
    """``cells`` (grade id -> source) with every ``old`` of ``edits`` replaced by its ``new``.

    ValueError naming ``label`` when an ``old`` is not in its cell (the solution changed under it).
    """
    out = dict(cells)
    for gid, pairs in edits.items():
        for old, new in pairs:
            if old not in out[gid]:
                raise ValueError(f"{label}: {old!r} not found in the solution of {gid}")
            out[gid] = out[gid].replace(old, new)
    return out
