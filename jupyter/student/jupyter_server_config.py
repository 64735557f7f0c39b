"""JupyterLab for students (`make lab`): the course's settings, no nbgrader instructor tools.

Loaded because `make lab` puts this folder on JUPYTER_CONFIG_PATH (nothing in the venv or in
~/.jupyter is changed). labconfig/page_config.json beside this file disables nbgrader's lab
extension (Formgrader, Create Assignment, Validate, Course List, Assignment List: the course
has no nbgrader exchange, students submit two files); here its server extensions are off too.
"""

from pathlib import Path

c = get_config()  # noqa: F821 (traitlets provides get_config)

# overrides.json there: widget state is saved with the notebook, so a saved lecture reopens
# showing each explorer's last picture.
c.LabApp.app_settings_dir = str(Path(__file__).resolve().parent.parent / "settings")
