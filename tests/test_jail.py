"""The grader's jail: limits hold, nothing leaks out, nothing is left behind.

Full isolation (namespaces, a uid of its own, hidden paths) needs root on Linux, which CI has;
where it is not available those tests skip with the reason, and the rlimit tests still run.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import uuid

import pytest

from autograder import jail
from autograder.jail import Limits

PY = sys.executable
needs_jail = pytest.mark.skipif(not jail.jail_available(), reason="full isolation needs root and unshare")
SMALL = Limits(wall_seconds=60, memory_bytes=1 * 2**30, file_bytes=2 * 2**20, disk_bytes=32 * 2**20, processes=32)


def py(code: str, **kwargs) -> jail.JailResult:
    return jail.run([PY, "-I", "-c", code], **{"limits": SMALL, **kwargs})


def _processes_with(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(int(pid))
        except (OSError, ValueError):
            pass
    return found


def test_a_normal_run_returns_output_and_collected_files():
    result = py("import sys; print('hello'); print('oops', file=sys.stderr); open('w.pth','wb').write(b'\\x01')",
                collect=["w.pth", "missing"])
    assert result.returncode == 0 and result.reason == "finished"
    assert result.stdout == b"hello\n" and result.stderr == b"oops\n"
    assert result.files == {"w.pth": b"\x01"}


def test_files_are_given_to_the_command():
    result = py("print(open('sub.txt').read())", files={"sub.txt": b"submitted"})
    assert result.stdout.strip() == b"submitted"


def test_exit_codes_and_signals_are_reported():
    assert py("import sys; sys.exit(3)").returncode == 3
    assert py("import os; os._exit(4)").returncode == 4
    killed = py("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert killed.returncode == -9 and "SIGKILL" in killed.reason


def test_the_wall_clock_limit_stops_a_hang():
    result = py("import time; time.sleep(600)", limits=Limits(wall_seconds=2))
    assert result.timed_out and result.returncode is None and "time limit" in result.reason


def test_memory_limit():
    result = py("x = bytearray(4 * 2**30); print('allocated')")
    assert result.returncode != 0 and b"MemoryError" in result.stderr and b"allocated" not in result.stdout


def test_output_is_capped():
    result = py("import sys\nwhile True: sys.stdout.write('x' * 65536)")
    assert result.returncode != 0 and len(result.stdout) <= SMALL.file_bytes
    assert "SIGXFSZ" in result.reason or b"File too large" in result.stderr


@needs_jail
def test_leftover_processes_are_killed():
    marker = f"arflow-orphan-{uuid.uuid4().hex}"
    code = ("import os, subprocess\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            f"    subprocess.Popen(['sleep', '300', '{marker}'], start_new_session=True)\n"
            "    os._exit(0)\n"
            "print('parent leaves')")
    result = py(code)
    assert result.returncode == 0
    assert _processes_with(marker) == []


@needs_jail
def test_a_fork_bomb_is_contained_and_cleaned_up():
    marker = f"arflow-bomb-{uuid.uuid4().hex}"
    code = (f"import os, time\nos.environ['M'] = '{marker}'\n"
            "for _ in range(200):\n"
            "    try:\n"
            "        if os.fork() == 0:\n"
            f"            os.execvp('sleep', ['sleep', '300', '{marker}'])\n"
            "    except OSError:\n"
            "        break\n"
            "print('done')")
    result = py(code, limits=Limits(wall_seconds=30, processes=16))
    assert _processes_with(marker) == []
    assert result.returncode == 0


@needs_jail
def test_no_network_not_even_the_hosts_loopback():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    result = py(f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
                "    print('connected')\nexcept OSError as e:\n    print('refused', e)")
    server.close()
    assert b"refused" in result.stdout and not accepted


@pytest.fixture
def outside_tmp():
    """A folder outside /tmp (the jail has a private /tmp, which would hide anything there anyway)."""
    import shutil
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="arflow-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@needs_jail
def test_hidden_paths_and_the_instructors_files_are_out_of_reach(outside_tmp):
    tmp_path = outside_tmp
    secret_dir = tmp_path / "autograder"
    secret_dir.mkdir()
    (secret_dir / "hidden_tests.py").write_text("SECRET = 42")
    gradebook = tmp_path / "gradebook.db"
    gradebook.write_text("grades")
    os.chmod(tmp_path, 0o755)
    code = (f"import os\nprint(sorted(os.listdir({str(secret_dir)!r})))\n"
            f"print(repr(open({str(gradebook)!r}).read()))\n"
            f"try:\n    open({str(tmp_path / 'planted.py')!r}, 'w')\n    print('wrote')\n"
            "except OSError as e:\n    print('denied', e.errno)\n"
            "print(os.getuid())")
    result = py(code, hide=[secret_dir, gradebook])
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "[]" and lines[1] == "''" and lines[2].startswith("denied"), result.stderr
    assert int(lines[3]) >= jail.FIRST_UID
    assert not (tmp_path / "planted.py").exists()


@needs_jail
def test_filling_the_disk_hits_the_private_quota(tmp_path):
    code = ("import os\nwritten = 0\ntry:\n"
            "    with open('big', 'wb') as f:\n"
            "        while True:\n            f.write(b'x' * 2**20); f.flush(); written += 1\n"
            "except OSError as e:\n    print('stopped', e.errno, written)")
    result = py(code, limits=Limits(wall_seconds=60, file_bytes=2**30, disk_bytes=16 * 2**20))
    words = result.stdout.split()
    assert words[0] == b"stopped" and int(words[2]) <= 16


@needs_jail
def test_a_planted_symlink_is_not_collected():
    result = py("import os; os.symlink('/etc/passwd', 'pixelcnn.pth')", collect=["pixelcnn.pth"])
    assert result.returncode == 0 and result.files == {}


def test_bad_file_names_are_refused():
    with pytest.raises(ValueError, match="plain names"):
        jail.run(["true"], files={"../escape": b""})


@needs_jail
def test_world_writable_host_folders_are_read_only_inside(outside_tmp):
    """Only the jail's own tmpfs folders (and a folder it is told to keep writable) take writes:
    a world-writable host folder (here a 1777 one under /var/tmp, like /var/tmp or /dev/shm) does not."""
    open_dir = outside_tmp / "open"
    open_dir.mkdir()
    os.chmod(outside_tmp, 0o755)
    os.chmod(open_dir, 0o1777)
    kept = outside_tmp / "kept"
    kept.mkdir()
    os.chmod(kept, 0o1777)
    code = ("import os, sys\n"
            "for folder in sys.argv[1:] + ['/dev/shm', '.', '/tmp']:\n"
            "    try:\n"
            "        open(os.path.join(folder, 'planted'), 'w').write('x')\n"
            "        print(folder + '|wrote')\n"
            "    except OSError as err:\n"
            "        print(folder + '|denied', err.errno)\n")
    result = jail.run([PY, "-I", "-c", code, str(open_dir), str(kept)], limits=SMALL, writable=[kept])
    verdicts = dict(line.split("|", 1) for line in result.stdout.decode().splitlines())
    assert verdicts[str(open_dir)].startswith("denied") and verdicts["/dev/shm"].startswith("denied"), verdicts
    assert verdicts["."] == "wrote" and verdicts["/tmp"] == "wrote" and verdicts[str(kept)] == "wrote", verdicts
    assert not (open_dir / "planted").exists() and (kept / "planted").exists()
    assert not os.path.exists("/dev/shm/planted")
