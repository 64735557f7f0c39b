"""A hostile notebook cannot touch the grader, the gradebook or other submissions, and gains nothing.

Its extra code cell runs in nbgrader's kernel (the jail, as root on Linux): it tries to read the
autograder, to plant files in the autograder and in the grader's output folder, to open the
gradebook, and to reach the network. None of it may work, and its grade stays the honest one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest

from autograder import grade, jail

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "autograder" / "samples"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())


@pytest.mark.slow
@pytest.mark.skipif(not jail.jail_available(), reason="the jail needs root and unshare")
def test_a_hostile_notebook_gains_nothing_and_touches_nothing():
    base = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="arflow-hostile-"))  # outside the jail's private /tmp
    base.chmod(0o755)  # enterable: what keeps the output folder out of reach must be the jail itself
    try:
        submitted, out = base / "submitted", base / "out"
        shutil.copytree(SAMPLES / "reference", submitted / "mallory")
        shutil.copytree(SAMPLES / "blank", submitted / "bob")
        out.mkdir()
        (out / "gradebook.db").touch()
        attack = f"""
import os, pathlib, socket
seen = {{}}
for name, target in [("autograder", {str(ROOT / "autograder")!r}), ("out", {str(out)!r})]:
    try:
        seen[name] = os.listdir(target)
    except OSError as err:
        seen[name] = repr(err)
    try:
        pathlib.Path(target, "PWNED").write_text("owned")
    except OSError:
        pass
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    seen["network"] = "reached"
except OSError:
    seen["network"] = "none"
print("ATTACK", seen)
"""
        path = submitted / "mallory" / "10_ar" / "pixelcnn.ipynb"
        nb = nbformat.read(path, as_version=4)
        nb.cells.insert(2, nbformat.v4.new_code_cell(attack))
        nbformat.write(nb, path)

        summary = grade.grade(submitted, out, limit=50, log=lambda *a: None)
        totals = {row["student_id"]: float(row["total"]) for row in summary["rows"]}
        assert totals == {"mallory": EXPECTED["reference"]["total"], "bob": EXPECTED["blank"]["total"]}
        assert not (ROOT / "autograder" / "PWNED").exists() and not (out / "PWNED").exists()
        graded = nbformat.read(out / "autograded" / "mallory" / "10_ar" / "pixelcnn.ipynb", as_version=4)
        printed = "".join(o.get("text", "") for c in graded.cells if c.cell_type == "code" for o in c.outputs)
        assert "ATTACK" in printed and "'autograder': []" in printed and "'out': []" in printed
        assert "'network': 'none'" in printed
    finally:
        shutil.rmtree(base, ignore_errors=True)
        (ROOT / "autograder" / "PWNED").unlink(missing_ok=True)
