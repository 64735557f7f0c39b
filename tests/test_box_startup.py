"""The black box defers ``matplotlib.pyplot`` (autograder/sandbox_child.py): code that uses it still
gets the real module, by every form of import, and the same one each time."""

from __future__ import annotations

from pathlib import Path

from arflow.checks import pixelcnn_probes
from autograder.sandbox import Box

USES_PYPLOT = """
import matplotlib.pyplot as plt
from matplotlib.pyplot import subplots
fig, ax = subplots()
assert plt.gcf() is fig, "two pyplots"
import matplotlib.pyplot as again
assert again.gcf() is fig and again.figure is plt.figure, "two pyplots"
import matplotlib
assert matplotlib.pyplot.gcf() is fig
assert type(plt.figure).__name__ == "function"
"""


def test_pyplot_works_in_the_box_by_every_form_of_import():
    cells = [{"name": "setup", "source": "import torch\nimport matplotlib.pyplot as plt\n"},
             {"name": "figure", "source": USES_PYPLOT}]
    with Box(cells, pixelcnn_probes, timeout=60) as box:
        assert box.hello["cell_errors"] == {}


def test_a_cell_that_breaks_pyplot_fails_as_it_would_at_home():
    cells = [{"name": "setup", "source": "import matplotlib.pyplot as plt\n"},
             {"name": "broken", "source": "plt.no_such_function()\n"}]
    with Box(cells, pixelcnn_probes, timeout=60) as box:
        assert "AttributeError" in str(box.hello["cell_errors"].get("broken"))


def test_the_course_library_is_compiled_for_the_boxes():
    """Boxes may not write bytecode: the grader writes arflow's once, valid for its current sources."""
    import importlib.util
    import struct

    from autograder.paths import REPO
    from autograder.sandbox import compile_course_library

    compile_course_library()
    sources = sorted((REPO / "arflow").rglob("*.py"))
    assert len(sources) > 30
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        assert cached.is_file(), f"no bytecode for {source}"
        mtime, size = struct.unpack("<II", cached.read_bytes()[8:16])  # PEP 552 header: flags, then these
        assert (mtime, size) == (int(source.stat().st_mtime) & 0xFFFFFFFF, source.stat().st_size & 0xFFFFFFFF)
