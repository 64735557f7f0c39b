"""JupyterLab for instructors (`make lab-instructor`): the course's settings and nbgrader's tools.

Loaded because `make lab-instructor` puts this folder on JUPYTER_CONFIG_PATH. nbgrader's lab
extension (labconfig/page_config.json) and its server extensions (Formgrader, Create Assignment,
Validate, Course List) are enabled explicitly, whatever the environment's defaults.
"""

from pathlib import Path

c = get_config()  # noqa: F821 (traitlets provides get_config)

# overrides.json there: widget state is saved with the notebook (as for students).
c.LabApp.app_settings_dir = str(Path(__file__).resolve().parent.parent / "settings")
