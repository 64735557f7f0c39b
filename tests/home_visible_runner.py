"""The visible tests as they run at home, for the corpus's parity test (copied into a jail, run there).

``python home_visible_runner.py`` in a folder holding ``cells.json`` (``{"cells": [...], "weights":
name or None, "checks": [[grade id, seed], ...]}``) and the weights file: runs the cells in one
namespace, then each visible check of 10_ar on :class:`arflow.checks.box.LocalBox` in this same
process (trusting it, as the notebook's own test cells do), and writes ``verdicts.json``: grade id ->
the sub-checks' pass/fail list, or null when the check itself raised. Only ``arflow`` is needed.
"""

import json
import os

from arflow.checks import pixelcnn_probes, protocol
from arflow.checks.box import LocalBox
from arflow.checks.pixelcnn import CHECKS


def main():
    with open("cells.json") as handle:
        spec = json.load(handle)
    namespace = {"__name__": "__main__"}
    errors = protocol.run_cells(spec["cells"], namespace)
    box = LocalBox(namespace, pixelcnn_probes, spec["weights"], errors)
    verdicts = {}
    for gid, seed in spec["checks"]:
        try:
            verdicts[gid] = [s.passed for s in CHECKS[gid](box, seed=seed).subchecks]
        except BaseException:  # noqa: BLE001 (a check that could not run has no verdict at home)
            verdicts[gid] = None
    with open(os.open("verdicts.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), "w") as handle:
        json.dump(verdicts, handle)


if __name__ == "__main__":
    main()
