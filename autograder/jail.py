"""Run untrusted student code in a jail: an allowlist of what it sees, limits, nothing left behind.

As root on Linux (the grading machines and CI) a jailed command runs under **bubblewrap**
(``bwrap``, Debian's ``bubblewrap``) in a **minimal root built for it**: an allowlist, not a
list of hidden paths. It sees

- the system's programs and libraries (``/usr`` and its ``/bin``, ``/lib`` links), read-only;
- the Python interpreter and the course's virtual environment, read-only;
- the course library ``arflow/`` (the assignment imports it), read-only, and nothing else of
  the course: not ``autograder/``, ``solutions/``, the gradebook, other checkouts or submissions;
- a synthetic ``/etc`` (the dynamic linker's cache, a ``passwd`` naming its own user);
- its own size-limited **tmpfs** working folder (a host tmpfs the grader reads back), private
  ``/tmp`` and ``/dev/shm``, a fresh ``/proc`` and a minimal ``/dev``; the root itself is read-only;

in fresh **IPC** (System V shared memory and message queues die with it), **network** (a
loopback of its own, so no network at all), **mount**, **PID** and **UTS** namespaces: when the
jail's first process ends, every process it started is killed. The command runs as an
**unprivileged uid** of its own per job slot, with no capabilities (``setpriv``), under
**rlimits** (``prlimit``: address space, largest file written, processes, open files, no core
dumps) and a **wall-clock limit** enforced by the parent. Where the grader made a **cgroup** for
the submission (:mod:`autograder.cgroups`), every jail of that submission runs in it: memory,
process count and CPU are limited per submission, not only per process.

Without root (an instructor's laptop) :func:`jail_available` is False and commands run with
the rlimits, in a new session whose process group is killed at the end, in a private working
folder: no namespaces and no allowlist. ``autograder/README.md`` says which guarantees hold where.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .cgroups import SubmissionCgroup
from .paths import REPO

FIRST_UID = 61000  # jailed uids are FIRST_UID + slot; none of them owns anything on the machine
JAIL_WORKDIR = "/mnt/arflow-work"  # the working folder as the jailed command sees it
#: the only parts of the course a jailed command sees (read-only): the library the assignment imports
COURSE_ALLOWED = ("arflow",)
#: /etc files copied into the jail's synthetic /etc (the dynamic linker needs its cache)
ETC_ALLOWED = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime")
MS_NOSUID, MS_NODEV, MNT_DETACH = 2, 4, 2
_libc = ctypes.CDLL(None, use_errno=True)
_cgroup: SubmissionCgroup | None = None


@dataclass(frozen=True)
class Limits:
    """Per-process limits of one jail (autograder/README.md says why these values)."""

    wall_seconds: float = 600.0
    memory_bytes: int = 3 * 2**30  # address space per process; torch with a small PixelCNN needs < 1.5 GiB
    file_bytes: int = 64 * 2**20  # the largest file a process may write, captured output included
    disk_bytes: int = 256 * 2**20  # the private working folder, /tmp and /dev/shm, each
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
    """True where full isolation works: root on Linux with bubblewrap, prlimit and setpriv usable."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return False
    if not all(shutil.which(tool) for tool in ("bwrap", "prlimit", "setpriv")):
        return False
    try:
        probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--unshare-ipc",
                                "--unshare-uts", "--die-with-parent", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def use_cgroup(cgroup: SubmissionCgroup | None) -> None:
    """Put every jail started from now on into ``cgroup`` (one per submission; None: no cgroup)."""
    global _cgroup
    _cgroup = cgroup


def allowed_paths() -> list[str]:
    """What a jailed command may read besides ``/usr``: the interpreter, the venv, the course library."""
    paths = {str(Path(sys.base_prefix).resolve()), str(Path(sys.prefix).resolve()),
             *(str(REPO / name) for name in COURSE_ALLOWED)}
    interpreter = Path(sys.executable).resolve()
    if not any(interpreter.is_relative_to(p) for p in paths | {"/usr"}):
        paths.add(str(interpreter.parent))
    return sorted(p for p in paths if os.path.exists(p) and not Path(p).is_relative_to("/usr"))


def _set_limits(limits: Limits) -> None:
    import resource

    for name, value in (("RLIMIT_AS", limits.memory_bytes), ("RLIMIT_FSIZE", limits.file_bytes),
                        ("RLIMIT_CORE", 0), ("RLIMIT_NOFILE", limits.open_files)):
        resource.setrlimit(getattr(resource, name), (value, value))


def mount_tmpfs(path: Path, size: int, uid: int, mode: int = 0o700) -> None:
    """A size-limited tmpfs on ``path`` (a folder of the grader's), owned by the jailed ``uid``."""
    options = f"size={size},mode={mode:o},uid={uid},gid={uid}".encode()
    if _libc.mount(b"tmpfs", str(path).encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount tmpfs on {path}: {os.strerror(errno)}")


def unmount(path: Path) -> None:
    """Detach a tmpfs: whatever the student made in it (deep trees, odd names) goes at once."""
    _libc.umount2(str(path).encode(), MNT_DETACH)


def _root_links() -> list[str]:
    """``/bin``, ``/lib``, ... as the host has them: links into ``/usr`` or read-only folders."""
    args = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    return args


class Jail:
    """One jail: a working folder with the files, a running command, and cleanup.

    ``with Jail(files, limits) as jail: process = jail.start(argv, stdin=PIPE, stdout=PIPE)``
    gives an interactive process (the hidden checks talk to one); :func:`run` runs one to the end.
    ``shared`` folders of the grader's are bound read-write at their own path (the jailed
    kernel's sockets). Closing the jail kills everything it started and removes its files.
    """

    def __init__(self, files: dict[str, bytes | os.PathLike] | None = None, limits: Limits = Limits(),
                 slot: int = 0, env: dict[str, str] | None = None, isolate: bool | None = None,
                 shared: list[str | os.PathLike] = ()):
        self.limits, self.slot, self.uid = limits, slot, FIRST_UID + slot
        self.shared = [str(Path(p).resolve()) for p in shared]
        self.jailed = jail_available() if isolate is None else isolate
        self.cgroup = _cgroup if self.jailed else None
        self.env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **(env or {})}
        self.staging = Path(tempfile.mkdtemp(prefix="arflow-jail-"))
        os.chmod(self.staging, 0o700)
        self.work = self.staging / "work"
        self.work.mkdir()
        self._mounted = False
        self.process: subprocess.Popen | None = None
        if self.jailed:
            mount_tmpfs(self.work, limits.disk_bytes, self.uid)
            self._mounted = True
        for name, content in (files or {}).items():
            if Path(name).name != name or name in ("", ".", ".."):
                self.close()
                raise ValueError(f"jail file names must be plain names, got {name!r}")
            target = self.work / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                shutil.copyfile(content, target)
            if self.jailed:
                os.chown(target, self.uid, self.uid)

    @property
    def workdir(self) -> str:
        """The working folder as the jailed command sees it."""
        return JAIL_WORKDIR if self.jailed else str(self.work)

    def _etc(self) -> Path:
        """The jail's synthetic /etc: the linker's files, and users that name the jailed uid."""
        etc = self.staging / "etc"
        etc.mkdir(exist_ok=True)
        for name in ETC_ALLOWED:
            host = Path("/etc") / name
            if host.is_dir() and not host.is_symlink():
                shutil.copytree(host, etc / name, symlinks=True, dirs_exist_ok=True)
            elif host.exists():
                shutil.copyfile(host, etc / name)
        (etc / "passwd").write_text(f"root:x:0:0::/:/usr/sbin/nologin\n"
                                    f"student:x:{self.uid}:{self.uid}::{JAIL_WORKDIR}:/usr/sbin/nologin\n")
        (etc / "group").write_text(f"root:x:0:\nstudent:x:{self.uid}:\n")
        (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
        return etc

    def _bwrap(self, argv: list[str]) -> list[str]:
        limits, size = self.limits, str(self.limits.disk_bytes)
        command = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                   "--unshare-cgroup-try", "--hostname", "arflow-jail", "--die-with-parent",
                   "--ro-bind", "/usr", "/usr", *_root_links(),
                   "--ro-bind", str(self._etc()), "/etc",
                   "--proc", "/proc", "--dev", "/dev",
                   "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm",
                   "--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
        binds = [("--ro-bind", path) for path in allowed_paths()]
        binds += [("--bind", JAIL_WORKDIR), *(("--bind", path) for path in self.shared)]
        made: set[str] = set()
        for kind, path in binds:
            # bwrap would make the folders leading there 0700 (root's): the jailed uid must pass through.
            for ancestor in reversed(Path(path).parents[:-1]):
                if str(ancestor) not in made and str(ancestor) not in ("/tmp", "/usr"):
                    made.add(str(ancestor))
                    command += ["--perms", "0755", "--dir", str(ancestor)]
            source = str(self.work) if path == JAIL_WORKDIR else path
            command += [kind, source, path]
        command += ["--remount-ro", "/", "--chdir", JAIL_WORKDIR, "--clearenv"]
        env = dict(self.env, HOME=JAIL_WORKDIR, TMPDIR="/tmp", MPLCONFIGDIR="/tmp/matplotlib", USER="student")
        for key, value in env.items():
            command += ["--setenv", key, value]
        return [*command, "--",
                "prlimit", f"--as={limits.memory_bytes}", f"--fsize={limits.file_bytes}",
                f"--nproc={limits.processes}", "--core=0", f"--nofile={limits.open_files}", "--",
                "setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--no-new-privs", "--", *argv]

    def command(self, argv: list[str]) -> tuple[list[str], str, dict, object]:
        """``(command, cwd, env, preexec_fn)`` that run ``argv`` in this jail (for Popen or a kernel launcher)."""
        if self.jailed:
            command = self._bwrap(argv)
            if self.cgroup is not None:  # the whole jail, bwrap first, in the submission's cgroup
                command = self.cgroup.wrap(command)
            return command, str(self.staging), {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, None
        limits = self.limits
        return argv, str(self.work), dict(self.env, HOME=str(self.work), TMPDIR=str(self.work)), \
            (lambda: _set_limits(limits))

    def start(self, argv: list[str], **popen) -> subprocess.Popen:
        if self.process is not None:
            raise RuntimeError("a jail runs one command; make a new Jail for another")
        command, cwd, env, preexec = self.command(argv)
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True, preexec_fn=preexec, **popen)
        return self.process

    def returncode(self) -> int | None:
        code = self.process.returncode
        if self.jailed and code is not None and code > 128:  # bwrap exits 128 + N when its command died of signal N
            code = -(code - 128)
        return code

    def collected(self, name: str) -> bytes | None:
        """A regular file the command left in its working folder, never through a link, at most ``file_bytes``."""
        if Path(name).name != name or name in ("", ".", ".."):
            return None
        try:
            fd = os.open(self.work / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        with open(fd, "rb") as handle:
            if not os.path.stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
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
        if self._mounted:
            unmount(self.work)
            self._mounted = False
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> Jail:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run(argv: list[str], files: dict[str, bytes | os.PathLike] | None = None, limits: Limits = Limits(),
        slot: int = 0, env: dict[str, str] | None = None, collect: list[str] = (), isolate: bool | None = None,
        shared: list[str | os.PathLike] = ()) -> JailResult:
    """Run ``argv`` to its end (or its time limit) in a fresh jail whose working folder holds ``files``.

    Returns its status, its output (at most ``limits.file_bytes`` of each stream) and the
    files named in ``collect`` that it left in its working folder.
    """
    with Jail(files, limits, slot, env, isolate, shared) as jail:
        out, err = jail.staging / "stdout", jail.staging / "stderr"
        with open(out, "wb") as out_handle, open(err, "wb") as err_handle:
            process = jail.start(argv, stdout=out_handle, stderr=err_handle, stdin=subprocess.DEVNULL)
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
