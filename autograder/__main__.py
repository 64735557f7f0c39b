"""``python -m autograder {release,course,grade,validate,worker,demo,calibrate,export,similarity}``.

The instructor's commands (see README.md).
"""

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = ("release", "course", "grade", "validate", "worker", "demo", "calibrate", "export", "similarity")
    if not argv or argv[0] not in commands:
        print(f"usage: python -m autograder {{{','.join(commands)}}} [options]  (--help after a command)")
        return 2
    command, rest = argv[0], argv[1:]
    if command == "release":
        from .release import main as run
    elif command == "course":  # a standard nbgrader course directory for both grading paths
        from .course import main as run
    elif command == "validate":  # nbgrader's validation with an exit status
        from .validate import main as run
    elif command == "grade":
        from .grade import main as run
    elif command == "worker":
        from .celery_worker import main as run
    elif command == "demo":
        from .demo import main as run
    elif command == "export":  # LMS grade exports (Canvas, Moodle)
        from .lms import main as run
    elif command == "similarity":  # the class's similarity report
        from .similarity import main as run
    else:
        from .calibrate import main as run
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
