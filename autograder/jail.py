"""Run untrusted student code in a jail: limits, isolation, and nothing left behind.

As root on Linux (the grading machines and CI) a jailed command runs:

- in fresh **network** (only a loopback interface, so no network at all), **mount** and **PID**
  namespaces (``unshare``): when the jail's first process ends, the kernel kills every process
  it started, double-forked daemons included;
- as an **unprivileged user** (a uid of its own per job slot, no groups), so it can write
  nothing of the instructor's;
- with **hidden paths** (the autograder, the gradebook, other submissions, the grader's
  output folder): empty read-only filesystems are mounted over them;
- in a private, size-limited **tmpfs** working folder and a private ``/tmp``, so it cannot
  fill the disk, with **every other mount read-only** (world-writable host folders such as
  ``/var/tmp`` and ``/dev/shm`` included), so it writes nowhere else;
- under **rlimits**: address space (memory), largest file written (captured output
  included), number of processes, open files, no core dumps;
- under a **wall-clock limit** enforced by the parent, which kills the whole jail.

Without root (an instructor's laptop) :func:`jail_available` is False and commands run with
the rlimits, in a new session whose process group is killed at the end, in a private working
folder: no network isolation and no hidden paths. ``autograder/README.md`` says which
guarantees hold where.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

INIT = Path(__file__).with_name("jail_init.py")
FIRST_UID = 61000  # jailed uids are FIRST_UID + slot; none of them owns anything on the machine
JAIL_WORKDIR = "/mnt/arflow-work"  # the working folder as the jailed command sees it (see jail_init.py)


@dataclass(frozen=True)
class Limits:
    """Per-submission limits (autograder/README.md says why these values)."""

    wall_seconds: float = 600.0
    memory_bytes: int = 3 * 2**30  # address space per process; torch with a small PixelCNN needs < 1.5 GiB
    file_bytes: int = 64 * 2**20  # the largest file a process may write, captured output included
    disk_bytes: int = 256 * 2**20  # the private working folder, and /tmp, each
    processes: int = 64  # per jailed uid
    open_files: int = 1024


@dataclass
class JailResult:
    returncode: int | None  # None when the time limit stopped it; negative: killed by that signal
    timed_out: bool
    seconds: float
    stdout: bytes
    stderr: bytes
    jailed: bool
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        """How the run ended, in words, for feedback."""
        if self.timed_out:
            return "stopped: the time limit was reached"
        if self.returncode == 0:
            return "finished"
        if self.returncode is not None and self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = str(-self.returncode)
            hint = {"SIGKILL": " (killed: out of memory or processes)",
                    "SIGXFSZ": " (a file or the output grew past its size limit)",
                    "SIGSEGV": " (crashed)", "SIGABRT": " (aborted)"}.get(name, "")
            return f"ended by signal {name}{hint}"
        return f"exited with status {self.returncode}"


@lru_cache(maxsize=1)
def jail_available() -> bool:
    """True where full isolation works: root on Linux with ``unshare`` (namespaces) usable."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "true"], capture_output=True,
                               timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def reachable_paths() -> list[str]:
    """What the jailed command must be able to reach: the interpreter, the venv, the course's code."""
    course = Path(__file__).resolve().parents[1]
    paths = {str(Path(sys.executable).resolve().parent), sys.prefix, sys.base_prefix, str(course)}
    return sorted(p for p in paths if os.path.exists(p))


def _set_limits(limits: Limits) -> None:
    import resource

    for name, value in (("RLIMIT_AS", limits.memory_bytes), ("RLIMIT_FSIZE", limits.file_bytes),
                        ("RLIMIT_CORE", 0), ("RLIMIT_NOFILE", limits.open_files)):
        resource.setrlimit(getattr(resource, name), (value, value))


class Jail:
    """One jail: a staging folder with the files, a running command, and cleanup.

    ``with Jail(files, limits, hide=...) as jail: process = jail.start(argv, stdin=PIPE, stdout=PIPE)``
    gives an interactive process (the hidden checks talk to one); :func:`run` runs one to the end.
    Closing the jail kills everything it started and removes its files.
    """

    def __init__(self, files: dict[str, bytes | os.PathLike] | None = None, limits: Limits = Limits(),
                 hide: list[str | os.PathLike] = (), slot: int = 0, env: dict[str, str] | None = None,
                 isolate: bool | None = None, writable: list[str | os.PathLike] = ()):
        self.limits, self.slot = limits, slot
        self.writable = [str(Path(p).resolve()) for p in writable]
        self.jailed = jail_available() if isolate is None else isolate
        self.hide = [str(Path(p).resolve()) for p in hide]
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **(env or {})}
        self.staging = Path(tempfile.mkdtemp(prefix="arflow-jail-"))
        os.chmod(self.staging, 0o700)
        self.work = self.staging / "work"
        self.work.mkdir()
        for name, content in (files or {}).items():
            if Path(name).name != name or name in ("", ".", ".."):
                raise ValueError(f"jail file names must be plain names, got {name!r}")
            if isinstance(content, bytes):
                (self.work / name).write_bytes(content)
            else:
                shutil.copyfile(content, self.work / name)
        self.process: subprocess.Popen | None = None

    @property
    def workdir(self) -> str:
        """The working folder as the jailed command sees it."""
        return JAIL_WORKDIR if self.jailed else str(self.work)

    def command(self, argv: list[str], collect: list[str] = ()) -> tuple[list[str], str, dict, object]:
        """``(command, cwd, env, preexec_fn)`` that run ``argv`` in this jail (for Popen or a kernel launcher)."""
        if self.jailed:
            spec = self.staging / "spec.json"
            spec.write_text(json.dumps({
                "argv": argv, "staging": str(self.work), "uid": FIRST_UID + self.slot, "limits": asdict(self.limits),
                "hide": [p for p in self.hide if os.path.exists(p)], "env": self.env, "collect": list(collect),
                "writable": self.writable,
                "reach": reachable_paths()}))
            command = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
                       sys.executable, "-I", str(INIT), str(spec)]
            return command, str(self.staging), {"PATH": self.env["PATH"]}, None
        limits = self.limits
        return argv, str(self.work), dict(self.env, HOME=str(self.work), TMPDIR=str(self.work)), \
            (lambda: _set_limits(limits))

    def start(self, argv: list[str], collect: list[str] = (), **popen) -> subprocess.Popen:
        if self.process is not None:
            raise RuntimeError("a jail runs one command; make a new Jail for another")
        command, cwd, env, preexec = self.command(argv, collect)
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True, preexec_fn=preexec, **popen)
        return self.process

    def returncode(self) -> int | None:
        code = self.process.returncode
        if self.jailed and code is not None and code > 128:  # jail_init exits 128 + signal
            code = -(code - 128)
        return code

    def collected(self, name: str) -> bytes | None:
        """A file the command left in its working folder (asked for in ``start(collect=...)``)."""
        path = (self.staging / "collected" if self.jailed else self.work) / name
        if not path.is_file() or path.is_symlink():
            return None
        with open(path, "rb") as handle:
            return handle.read(self.limits.file_bytes)

    def kill(self) -> None:
        """Kill the command and everything it started (the process group; in a jail, its PID namespace)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> Jail:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run(argv: list[str], files: dict[str, bytes | os.PathLike] | None = None, limits: Limits = Limits(),
        hide: list[str | os.PathLike] = (), slot: int = 0, env: dict[str, str] | None = None,
        collect: list[str] = (), isolate: bool | None = None, writable: list[str | os.PathLike] = ()) -> JailResult:
    """Run ``argv`` to its end (or its time limit) in a fresh jail whose working folder holds ``files``.

    Returns its status, its output (at most ``limits.file_bytes`` of each stream) and the
    files named in ``collect`` that it left in its working folder.
    """
    with Jail(files, limits, hide, slot, env, isolate, writable) as jail:
        out, err = jail.staging / "stdout", jail.staging / "stderr"
        with open(out, "wb") as out_handle, open(err, "wb") as err_handle:
            process = jail.start(argv, collect=collect, stdout=out_handle, stderr=err_handle,
                                 stdin=subprocess.DEVNULL)
            timed_out = False
            try:
                process.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            jail.kill()
        seconds = time.monotonic() - jail.started
        files_back = {name: data for name in collect if (data := jail.collected(name)) is not None}
        with open(out, "rb") as o, open(err, "rb") as e:
            stdout, stderr = o.read(limits.file_bytes), e.read(limits.file_bytes)
        return JailResult(None if timed_out else jail.returncode(), timed_out, seconds, stdout, stderr,
                          jail.jailed, files_back)
