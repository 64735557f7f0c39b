"""nbgrader's configuration for this course: maps nbgrader's course directory onto the repo layout.

Plain nbgrader commands work from the repo root, e.g.::

    nbgrader generate_assignment 10_ar --force     # solutions/10_ar -> assignments/10_ar
    nbgrader autograde 10_ar                       # submitted/<student>/10_ar -> graded/autograded/...
    nbgrader generate_feedback 10_ar               # -> graded/feedback/<student>/10_ar/

They run the visible tests only: the hidden tests (in autograder/, never released) run with
``python -m autograder grade`` (``make grade``), which uses the same layout and also writes the
gradebook, grades.csv and the feedback. Directories can be changed with environment variables.
"""

import os

c = get_config()  # noqa: F821 (provided by nbgrader when it reads this file)

ROOT = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.root = ROOT
c.CourseDirectory.course_id = "arflow"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.submitted_directory = os.environ.get("ARFLOW_SUBMITTED_DIR", "submitted")
c.CourseDirectory.autograded_directory = os.environ.get("ARFLOW_AUTOGRADED_DIR", "graded/autograded")
c.CourseDirectory.feedback_directory = os.environ.get("ARFLOW_FEEDBACK_DIR", "graded/feedback")
# The gradebook lives in graded/ (ignored by git), created here because SQLite will not create folders.
os.makedirs(os.path.join(ROOT, "graded"), exist_ok=True)
c.CourseDirectory.db_url = os.environ.get("ARFLOW_GRADEBOOK_URL",
                                          "sqlite:///" + os.path.join(ROOT, "graded", "gradebook.db"))
# Loading the weights and running the visible tests may take a while on a busy CPU; training
# never runs under autograding (the notebook skips it when NBGRADER_EXECUTION is set).
c.ExecutePreprocessor.timeout = 180
c.Execute.timeout = 180
# Only the notebook is released: nothing else of solutions/10_ar is copied (see design.md).
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.pth", "*.db"]
# Late submissions (autograder/late.py): nbgrader compares timestamp.txt with the due date in the
# gradebook (`nbgrader db assignment add 10_ar --duedate="2030-05-01 23:59 UTC"`) and asks this policy
# for each late notebook's penalty. To change it, edit the three numbers: minutes late that still
# count as on time; percent of the max score lost per started day late; days after which the score
# is 0 (None: never). percent_per_day = 0 and zero_after_days = None turn penalties off.
c.AssignLatePenalties.plugin_class = "autograder.late.LatePenaltyPlugin"
c.LatePenaltyPlugin.grace_minutes = 15
c.LatePenaltyPlugin.percent_per_day = 10
c.LatePenaltyPlugin.zero_after_days = 7
