"""``python -m autograder {release,course,grade,validate,worker,demo,calibrate,export,similarity}``.

The instructor's commands (see README.md). ``calibrate [--assignment NAME] ...`` runs the
assignment's own calibration, ``autograder/assignments/<NAME>/calibrate.py`` (default 10_ar).
"""

import importlib
import sys


def calibrate(argv: list[str]) -> int:
    """``calibrate [--assignment NAME] ...``: ``main(...)`` of ``autograder.assignments.<NAME>.calibrate``."""
    import argparse

    from .assignment import FOLDER, names

    parser = argparse.ArgumentParser(prog="python -m autograder calibrate", add_help=False)
    parser.add_argument("--assignment", default="10_ar")
    args, rest = parser.parse_known_args(argv)
    name = args.assignment
    if name not in names():
        print(f"calibrate: no assignment {name!r} (known: {', '.join(names()) or 'none'})", file=sys.stderr)
        return 2
    module = f"autograder.assignments.{name}.calibrate"
    if not (FOLDER / name / "calibrate.py").is_file():
        print(f"calibrate: assignment {name} has no calibration (no autograder/assignments/{name}/calibrate.py)",
              file=sys.stderr)
        return 2
    return importlib.import_module(module).main(rest)


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
    else:  # the assignment's own calibration
        run = calibrate
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
