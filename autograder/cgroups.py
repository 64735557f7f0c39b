"""One control group per submission: memory, process count and CPU for everything it runs, together.

Per-process rlimits (:class:`autograder.jail.Limits`) bound each process, but a submission
runs several (the jailed kernel, the black box, whatever they fork): 64 processes of 3 GiB
each are far more than one submission should hold. A :class:`SubmissionCgroup` puts every
jail of one submission into one cgroup with a memory ceiling (tmpfs pages written by the
jailed processes count too), a process-count ceiling and its CPU share (an equal weight for
every submission; optionally a hard quota), and kills whatever is left in it at the end.

- **cgroups v2** (the unified hierarchy with the ``memory``, ``pids`` and ``cpu`` controllers
  enabled): ``memory.max``, ``pids.max``, ``cpu.weight`` (``cpu.max``), ``cgroup.kill``.
- **cgroups v1** (older and hybrid machines, such as this project's CI containers):
  ``memory.limit_in_bytes``, ``pids.max``, ``cpu.shares`` (``cpu.cfs_quota_us``), one folder
  per hierarchy.
- **Neither writable** (no root, a container that does not delegate): :func:`create` returns
  None and the per-process rlimits are all there is; ``autograder/README.md`` says so.
"""

from __future__ import annotations

import os
import shlex
import signal
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
GROUP = "arflow-grader"  # the parent of every submission's cgroup


@dataclass(frozen=True)
class CgroupLimits:
    """Ceilings for everything one submission runs at once."""

    memory_bytes: int = 4 * 2**30  # the kernel and the black box together, tmpfs files included
    processes: int = 128
    #: a hard cap in cores' worth of CPU time; None: no cap, but every submission has the same CPU
    #: weight, so under contention each gets an equal share and idle cores are never wasted
    cpus: float | None = None


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per hierarchy: {"": v2 path, "memory": v1 path, ...}."""
    paths = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


@lru_cache(maxsize=1)
def flavour() -> str | None:
    """"v2", "v1" or None: which cgroup interface this machine lets us use (needs root)."""
    if os.geteuid() != 0:
        return None
    controllers = ROOT / "cgroup.controllers"
    if controllers.is_file() and {"memory", "pids"} <= set(controllers.read_text().split()):
        return "v2" if _writable_dir(ROOT) else None
    if all(_writable_dir(ROOT / name) for name in ("memory", "pids")):
        return "v1"
    return None


#: the v1 hierarchies a submission's cgroup lives in (cpuacct: only to count its CPU time)
V1_HIERARCHIES = ("memory", "pids", "cpu", "cpuacct")


def _parents() -> list[Path]:
    """The folders that hold the submissions' cgroups, one per hierarchy in use."""
    kind = flavour()
    if kind == "v2":
        return [ROOT / GROUP]
    if kind == "v1":
        own = _own_paths()
        return [ROOT / h / own.get(h, "/").lstrip("/") / GROUP for h in V1_HIERARCHIES]
    return []


def owner_alive(name: str) -> bool:
    """Whether the grader that made the cgroup ``name`` (``<grader pid>-...``) is still running."""
    try:
        os.kill(int(name.split("-", 1)[0]), 0)
    except ValueError:
        return False
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Remove the cgroups left by graders that died (``kill -9`` gives them no chance to clean up),
    killing what is still in them; the cgroups of running graders are left alone."""
    removed = []
    for parent in _parents():
        for folder in sorted(parent.glob("*")) if parent.is_dir() else []:
            if folder.is_dir() and not owner_alive(folder.name):
                SubmissionCgroup([folder], flavour() or "v1").remove()
                removed.append(folder.name)
    return sorted(set(removed))


class SubmissionCgroup:
    """The cgroup(s) of one submission. ``enter()`` (in a child before exec) moves that process in."""

    def __init__(self, folders: list[Path], flavour_: str):
        self.folders, self.flavour = folders, flavour_

    # ------------------------------------------------------------------ creating
    @classmethod
    def create(cls, name: str, limits: CgroupLimits = CgroupLimits()) -> SubmissionCgroup | None:
        """A fresh cgroup named ``name`` with these limits, or None where cgroups can't be used."""
        kind = flavour()
        try:
            if kind == "v2":
                return cls._create_v2(name, limits)
            if kind == "v1":
                return cls._create_v1(name, limits)
        except OSError:
            return None
        return None

    @classmethod
    def _create_v2(cls, name: str, limits: CgroupLimits) -> SubmissionCgroup:
        parent = ROOT / GROUP
        parent.mkdir(exist_ok=True)
        wanted = {"memory", "pids", "cpu"} & set((ROOT / "cgroup.controllers").read_text().split())
        for where in (ROOT, parent):  # controllers must be enabled down the path
            try:
                (where / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in sorted(wanted)))
            except OSError:
                pass
        folder = parent / name
        folder.mkdir()
        (folder / "memory.max").write_text(str(limits.memory_bytes))
        if (folder / "memory.swap.max").exists():
            (folder / "memory.swap.max").write_text("0")
        (folder / "pids.max").write_text(str(limits.processes))
        if (folder / "cpu.weight").exists():
            (folder / "cpu.weight").write_text("100")
        if limits.cpus is not None and (folder / "cpu.max").exists():
            (folder / "cpu.max").write_text(f"{int(limits.cpus * 100_000)} 100000")
        return cls([folder], "v2")

    @classmethod
    def _create_v1(cls, name: str, limits: CgroupLimits) -> SubmissionCgroup:
        own = _own_paths()
        folders = []
        made = cls(folders, "v1")
        try:
            for hierarchy in V1_HIERARCHIES:
                base = ROOT / hierarchy
                if not _writable_dir(base):
                    continue
                folder = base / own.get(hierarchy, "/").lstrip("/") / GROUP / name
                folder.mkdir(parents=True)
                folders.append(folder)
                if hierarchy == "memory":
                    (folder / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
                    if (folder / "memory.memsw.limit_in_bytes").exists():
                        (folder / "memory.memsw.limit_in_bytes").write_text(str(limits.memory_bytes))
                elif hierarchy == "pids":
                    (folder / "pids.max").write_text(str(limits.processes))
                elif hierarchy == "cpu":
                    (folder / "cpu.shares").write_text("1024")
                    if limits.cpus is not None:
                        (folder / "cpu.cfs_period_us").write_text("100000")
                        (folder / "cpu.cfs_quota_us").write_text(str(int(limits.cpus * 100_000)))
        except OSError:
            made.remove()
            raise
        return made

    # ------------------------------------------------------------------ using
    def enter(self) -> None:
        """Move the calling process into this cgroup (every hierarchy). For ``preexec_fn``: no allocation-heavy work."""
        for folder in self.folders:
            with open(folder / "cgroup.procs", "w") as handle:
                handle.write("0")

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` preceded by a shell that moves itself into this cgroup, then becomes ``argv``
        (for launchers that take a command but no ``preexec_fn``, such as Jupyter's)."""
        moves = " && ".join(f"echo $$ > {shlex.quote(str(folder / 'cgroup.procs'))}" for folder in self.folders)
        return ["/bin/sh", "-c", f'{moves} && exec "$@"', "cgroup-enter", *argv]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for folder in self.folders:
            try:
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return found

    def peak_memory(self) -> int | None:
        """The most memory (bytes) the submission's processes held at once, tmpfs pages included."""
        for folder in self.folders:
            for name in ("memory.peak", "memory.max_usage_in_bytes"):
                try:
                    return int((folder / name).read_text())
                except (OSError, ValueError):
                    continue
        return None

    def cpu_seconds(self) -> float | None:
        """CPU seconds (user + system) the submission's processes used so far, or None where not counted."""
        for folder in self.folders:
            try:
                if (folder / "cpu.stat").is_file() and self.flavour == "v2":
                    for line in (folder / "cpu.stat").read_text().splitlines():
                        if line.startswith("usage_usec "):
                            return int(line.split()[1]) / 1e6
                if (folder / "cpuacct.usage").is_file():
                    return int((folder / "cpuacct.usage").read_text()) / 1e9
            except (OSError, ValueError):
                continue
        return None

    def oom_kills(self) -> int:
        """How many times the memory ceiling made the kernel kill one of the submission's processes."""
        for folder in self.folders:
            for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
                try:
                    for line in (folder / name).read_text().splitlines():
                        if line.startswith(key + " "):
                            return int(line.split()[1])
                except (OSError, ValueError):
                    continue
        return 0

    def kill_all(self, attempts: int = 50) -> None:
        """SIGKILL every process left in the cgroup (a fork racing the kill is caught by the next pass)."""
        for folder in self.folders:
            kill_file = folder / "cgroup.kill"
            if kill_file.exists():
                try:
                    kill_file.write_text("1")
                except OSError:
                    pass
        for _ in range(attempts):
            left = self.pids()
            if not left:
                return
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        """Kill what is left and remove the cgroup folders (an empty cgroup is removed with rmdir)."""
        self.kill_all()
        for folder in self.folders:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # busy while the last processes are reaped
                    time.sleep(0.02)
