"""The course's one palette: every figure takes its colours from here, by meaning.

Masks and fields use :data:`BACKGROUND` for "not seen", :data:`BLUE` for "seen", :data:`RED`
for the position being predicted (or a warning), :data:`GREEN` for the pixel itself.
"""

from __future__ import annotations

from matplotlib.colors import ListedColormap

BACKGROUND = "#f4f4f4"  # outside a mask or a field
BLUE = "#4c72b0"  # inside: attended, in the field, kept
RED = "#d62728"  # the query / predicted position, evaluations, the blind spot
GREEN = "#2ca02c"  # the pixel itself
ORANGE = "#dd8452"  # a second part (the horizontal stack)
LINE = "#1f77b4"  # training curves
PALE_BLUE = "#c9d6ea"  # the past out of reach
LIGHT_BLUE, LIGHT_ORANGE, LIGHT_GREEN = "#c6dbef", "#fdd0a2", "#c7e9c0"  # boxes of diagrams
LIGHT_GREY = "#eeeeee"
SILVER = "#c0c0c0"  # raw values behind a smoothed curve, inactive parts
GREY = "#999999"

#: colour map of a 0/1 mask: 0 outside, 1 inside
MASK = ListedColormap([BACKGROUND, BLUE])


def cmap(*colours: str) -> ListedColormap:
    """A discrete colour map: value k drawn in ``colours[k]``."""
    return ListedColormap(list(colours))
