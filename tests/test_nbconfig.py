"""One nbgrader configuration (issue 16, item 2): plain nbgrader in a course directory, the grader's
workers and its release all start from the repository's ``nbgrader_config.py`` and differ only in
where the course lives (and, for the hardened workers, in what makes them hardened)."""

from __future__ import annotations

from traitlets.config.loader import PyFileConfigLoader

from autograder.course import CONFIG
from autograder.nbconfig import COURSE_IGNORE, REPO_CONFIG, course_config, course_id

SHARED = (("CourseDirectory", "course_id"), ("AssignLatePenalties", "plugin_class"),
          ("LatePenaltyPlugin", "grace_minutes"), ("LatePenaltyPlugin", "percent_per_day"),
          ("LatePenaltyPlugin", "zero_after_days"))
LAYOUT = ("root", "source_directory", "release_directory", "submitted_directory", "autograded_directory",
          "feedback_directory", "db_url", "ignore")


def _value(config, section: str, name: str):
    return config[section][name]


def test_the_course_directory_file_and_the_graders_configuration_are_the_same(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text(CONFIG.format(repo_config=str(REPO_CONFIG)))
    as_nbgrader_reads_it = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()
    mine = course_config(tmp_path)
    repo = PyFileConfigLoader(REPO_CONFIG.name, path=str(REPO_CONFIG.parent)).load_config()
    for section, name in SHARED:
        assert _value(as_nbgrader_reads_it, section, name) == _value(mine, section, name) == _value(repo, section, name)
    for name in LAYOUT:
        assert as_nbgrader_reads_it.CourseDirectory[name] == mine.CourseDirectory[name], name
    assert mine.CourseDirectory.root == str(tmp_path)
    assert mine.CourseDirectory.db_url == f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert "*.pth" not in COURSE_IGNORE  # a submission's weights reach autograded/
    assert course_id() == repo.CourseDirectory.course_id


def test_the_hardened_worker_changes_only_what_makes_it_hardened(tmp_path):
    from autograder.worker import GradingLimits, nbgrader_api

    db = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    api = nbgrader_api(tmp_path, db, GradingLimits())
    plain = course_config(tmp_path, db)
    for section, name in SHARED:
        assert _value(api.config, section, name) == _value(plain, section, name)
    for name in LAYOUT:
        assert api.config.CourseDirectory[name] == plain.CourseDirectory[name], name
    assert api.config.HTMLExporter.sanitize_html  # hardened: the feedback page is cleaned


def test_course_config_returns_a_copy(tmp_path):
    first = course_config(tmp_path / "a")
    first.CourseDirectory.course_id = "changed"
    assert course_config(tmp_path / "b").CourseDirectory.course_id == course_id() != "changed"
