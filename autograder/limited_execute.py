"""nbgrader's Execute preprocessor with a cap on what a notebook may print.

nbclient keeps every output a kernel sends in memory; a submission that prints gigabytes would
exhaust the grader. Past ``max_output_bytes`` (counted over the whole notebook) further outputs
are dropped, one line says so, and the event is recorded for the feedback.
"""

from __future__ import annotations

import nbformat
from nbgrader.preprocessors import Execute
from traitlets import Integer


class LimitedExecute(Execute):
    max_output_bytes = Integer(8 * 2**20, help="outputs kept per notebook, in bytes").tag(config=True)
    events: list[str] = []  # what was dropped, for the feedback (a grading worker grades one submission)

    def preprocess(self, nb, resources=None, km=None):
        self._kept, self._capped = 0, False
        return super().preprocess(nb, resources, km)

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content") or {}
        size = sum(len(v) if isinstance(v, str) else len(str(v)) for v in content.values())
        self._kept = getattr(self, "_kept", 0) + size
        if self._kept > self.max_output_bytes:
            if not getattr(self, "_capped", False):
                self._capped = True
                limit = self.max_output_bytes / 2**20
                text = f"\n[grader] more than {limit:g} MB of output: the rest was dropped\n"
                outs.append(nbformat.v4.new_output("stream", name="stdout", text=text))
                LimitedExecute.events.append(f"the notebook printed more than {limit:g} MB; the rest of its output "
                                             "was dropped")
            return None
        return super().output(outs, msg, display_id, cell_index)
