"""A throwaway Redis server on loopback and local Celery grading workers: what the tests
(``tests/redis_server.py``) and the bench (``make bench-grader``) run ``--executor celery`` on.

Redis is Debian's ``redis-server`` (``make system-deps`` installs it), started on a free port
with no persistence in a temporary folder and stopped at the end. Where the binary is absent,
:func:`find_binary` returns None and the fixtures skip with a clear message. The workers are
``python -m autograder worker`` processes of their own (one slot each, disjoint jail slots).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .paths import REPO


def find_binary() -> str | None:
    return shutil.which("redis-server") or next((p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server")
                                                 if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, binary: str):
        self.binary, self.port = binary, _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="arflow-redis-"))
        self.process: subprocess.Popen | None = None

    def start(self) -> str:
        log = open(self.root / "log", "wb")
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.root), "--protected-mode", "yes"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.root / 'log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return self.url()
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("redis-server did not answer within 30 s")

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


class CeleryWorkers:
    """``n`` grading workers (``python -m autograder worker``), each a process of its own."""

    def __init__(self, broker: str, n: int = 2, logs: Path | None = None, slot_base: int = 1):
        self.broker, self.n, self.slot_base = broker, n, slot_base
        self.logs = logs or Path(tempfile.mkdtemp(prefix="arflow-workers-"))
        self.processes: dict[str, subprocess.Popen] = {}

    def start_one(self, index: int) -> str:
        name = f"w{index}@arflow-test"
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
        with open(self.logs / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "autograder", "worker", "--broker", self.broker, "--slots", "1",
                 "--slot-base", str(self.slot_base + index), "--name", name,
                 "--scratch", str(self.logs / f"scratch-{index}"), "--loglevel", "WARNING"],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return name

    def start(self, timeout: float = 300) -> list[str]:
        """Start the workers and wait until each has said it is ready (its template built)."""
        names = [self.start_one(i) for i in range(self.n)]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = [n for n in names if "ready in" in self.log(n)]
            dead = [n for n in names if self.processes[n].poll() is not None]
            if dead:
                raise RuntimeError(f"worker {dead[0]} exited: {self.log(dead[0])[-3000:]}")
            if len(ready) == len(names):
                time.sleep(2)  # the Celery consumer connects right after
                return names
            time.sleep(0.5)
        raise RuntimeError(f"the workers were not ready within {timeout:.0f} s")

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def cpu_seconds(self) -> float:
        """CPU seconds the running workers' own processes (all their threads) have used so far."""
        total = 0.0
        for process in self.processes.values():
            try:
                fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, ValueError, IndexError):
                pass
        return total

    def kill(self, name: str) -> None:
        """SIGKILL a worker (no chance to clean up or to acknowledge anything)."""
        os.kill(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(self.logs, ignore_errors=True)
