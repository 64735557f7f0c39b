"""A Jupyter kernel manager that starts the kernel in the jail (for nbgrader's autograde).

nbgrader executes a submission's notebook in a Jupyter kernel: that is the student's code, so
the kernel runs in :mod:`autograder.jail` (no network, its own uid, the grader's files hidden,
limits). The kernel talks to nbgrader over Unix sockets (ZeroMQ ``ipc`` transport) in a folder
under ``/dev/shm`` that both sides see, since the jail has no network, not even the host's
loopback. The files of the submission's folder (its weights) are copied into the jail's
working folder, where the notebook runs. Used only where :func:`autograder.jail.jail_available`.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from . import sandbox
from .jail import FIRST_UID, Jail, Limits, mount_tmpfs, unmount

KERNEL_LIMITS = Limits(wall_seconds=900)  # the whole notebook; nbgrader's per-cell timeout ends one hang sooner
MAX_FILE_BYTES = 50 * 2**20  # files of the submission's folder copied into the jail
SOCKETS_BYTES = 2**20  # the socket folder's tmpfs


class JailedKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose kernel process runs in a fresh jail."""

    #: what happened to this process's kernels, for the feedback (one grading worker = one submission)
    events: list[str] = []
    limits: Limits = KERNEL_LIMITS

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._timer: threading.Timer | None = None
        # This submission's list: a stray event can never land in the next submission's feedback.
        self._events = JailedKernelManager.events
        self._slot = sandbox.next_slot(2000)
        self._ipc_dir = tempfile.mkdtemp(prefix="arflow-kernel-")
        # The jailed kernel, under its own uid, creates its sockets here; nothing else fits.
        mount_tmpfs(Path(self._ipc_dir), SOCKETS_BYTES, FIRST_UID + self._slot)
        self.transport = "ipc"
        self.ip = os.path.join(self._ipc_dir, "kernel")
        self._jail: Jail | None = None

    def format_kernel_cmd(self, extra_arguments=None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        connection = Path(cmd[cmd.index("-f") + 1])
        cwd = Path(self._launch_args.get("cwd") or os.getcwd())
        files = {p.name: p for p in sorted(cwd.iterdir())
                 if p.is_file() and not p.is_symlink() and p.stat().st_size <= MAX_FILE_BYTES}
        files["kernel.json"] = connection.read_bytes()
        env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "ARFLOW_DEVICE": "cpu",
               "MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONDONTWRITEBYTECODE": "1",
               "NBGRADER_EXECUTION": os.environ.get("NBGRADER_EXECUTION", "autograde")}
        self._jail = Jail(files, limits=self.limits, slot=self._slot, env=env,
                          shared=[self._ipc_dir])  # the kernel's sockets, at the same path on both sides
        # The whole notebook's wall clock: a kernel still running then is killed with everything it started.
        self._timer = threading.Timer(self.limits.wall_seconds, self._out_of_time)
        self._timer.daemon = True
        self._timer.start()
        argv = [*cmd[: cmd.index("-f")], "-f", "kernel.json", *cmd[cmd.index("-f") + 2:]]
        # The kernel's own banner and logs would flood the grader's terminal; cell output goes over ZeroMQ.
        argv = ["/bin/sh", "-c", 'exec "$@" >/dev/null 2>&1', "kernel", *argv]
        command, _, _, _ = self._jail.command(argv)
        return command

    def _out_of_time(self) -> None:
        self._events.append(f"the notebook ran past its time limit ({self.limits.wall_seconds:.0f} s) "
                            "and its kernel was stopped")
        self._kill_jail()

    def _kill_jail(self) -> None:
        process = getattr(self.provisioner, "process", None) if self.provisioner else None
        if process is not None and process.poll() is None:  # a reaped process's PID may be someone else's now
            try:
                os.killpg(process.pid, signal.SIGKILL)  # bwrap leads the group; its PID namespace dies with it
            except (ProcessLookupError, PermissionError):
                pass

    def _end_jail(self, restart: bool) -> None:
        """Stop the whole-notebook clock, kill the kernel's jail and remove it; safe to call again."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._kill_jail()
        if self._jail is not None:
            self._jail.close()
            self._jail = None
        if not restart and self._ipc_dir is not None:
            unmount(Path(self._ipc_dir))
            shutil.rmtree(self._ipc_dir, ignore_errors=True)
            self._ipc_dir = None

    async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        try:
            await super()._async_shutdown_kernel(now=now, restart=restart)
        finally:
            self._end_jail(restart)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        # nbclient skips the shutdown when the kernel is already dead (os._exit, a signal, the memory
        # limit) and only cleans up: the clock and the jail must end here too, or the clock would
        # fire while a serving worker grades the next submission.
        try:
            await super()._async_cleanup_resources(restart=restart)
        finally:
            self._end_jail(restart)

    shutdown_kernel = _async_shutdown_kernel
    cleanup_resources = _async_cleanup_resources
