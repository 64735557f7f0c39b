"""The grader's jail: limits hold, nothing leaks out, nothing is left behind.

Full isolation (namespaces, a uid of its own, hidden paths) needs root on Linux, which CI has;
where it is not available those tests skip with the reason, and the rlimit tests still run.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import uuid
from pathlib import Path

import pytest

from autograder import cgroups, jail
from autograder.jail import Limits

PY = sys.executable
needs_jail = pytest.mark.skipif(not jail.jail_available(), reason="full isolation needs root and bubblewrap")
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
def test_only_the_allowlist_is_visible(outside_tmp):
    """The jail is an allowlist: the course's grader, solutions and history, host folders, other
    checkouts do not exist inside; the library the assignment imports is there, read-only."""
    secret = outside_tmp / "graded"
    secret.mkdir()
    (secret / "reference.pth").write_text("weights")
    os.chmod(outside_tmp, 0o755)
    course = jail.REPO
    probes = [str(secret / "reference.pth"), str(course / "autograder"),
              str(course / "autograder" / "assignments" / "10_ar" / "reference.py"),
              str(course / "solutions"), str(course / ".git"), "/var/tmp", "/home", "/srv", "/etc/shadow",
              "/root/.ssh", "/work/main/README.md" if course != Path("/work/main") else "/var/lib/dpkg"]
    code = ("import os, sys, json\n"
            "seen = {p: os.path.exists(p) for p in sys.argv[1:]}\n"
            "import arflow.data\n"
            "try:\n    open(os.path.join(os.path.dirname(arflow.data.__file__), 'planted.py'), 'w'); ro = False\n"
            "except OSError:\n    ro = True\n"
            "print(json.dumps({'seen': seen, 'ro': ro, 'uid': os.getuid(), 'root': sorted(os.listdir('/'))}))")
    result = jail.run([PY, "-I", "-c", code, *probes], limits=SMALL)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert not any(report["seen"].values()), report["seen"]
    assert report["ro"] and report["uid"] >= jail.FIRST_UID
    assert set(report["root"]) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "mnt", "proc", "sbin",
                                   "tmp", "usr", *{Path(p).parts[1] for p in jail.allowed_paths()}}, report["root"]


@needs_jail
def test_system_v_and_posix_ipc_stay_inside_one_jail():
    """One submission published a SysV shared-memory segment and another read it: the IPC namespace
    makes each jail's segments and message queues its own, and they die with it."""
    import ctypes.util  # noqa: F401 - the code below runs inside the jail

    key = 0x5EED0000 + os.getpid() % 0xFFFF
    publish = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
               f"shm = libc.shmget({key}, 4096, 0o1666)\nprint('made', shm >= 0)")
    look = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            f"print('found', libc.shmget({key}, 0, 0o666) >= 0)")
    assert b"made True" in py(publish).stdout
    assert b"found False" in py(look).stdout
    with open("/proc/sysvipc/shm") as table:  # nothing left on the host either
        assert f"{key:d}" not in [line.split()[0] for line in table.readlines()[1:]]


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
    """Only the jail's own tmpfs folders (and a folder it is told to share) take writes: a
    world-writable host folder (here a 1777 one under /var/tmp, like /var/tmp or /dev/shm) is not
    even there, and /dev/shm is the jail's own."""
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
    result = jail.run([PY, "-I", "-c", code, str(open_dir), str(kept)], limits=SMALL, shared=[kept])
    verdicts = dict(line.split("|", 1) for line in result.stdout.decode().splitlines())
    assert verdicts[str(open_dir)].startswith("denied"), verdicts
    assert verdicts["."] == "wrote" and verdicts["/tmp"] == "wrote" and verdicts[str(kept)] == "wrote", verdicts
    assert verdicts["/dev/shm"] == "wrote", verdicts  # the jail's own /dev/shm
    assert not (open_dir / "planted").exists() and (kept / "planted").exists()
    assert not os.path.exists("/dev/shm/planted")


needs_cgroups = pytest.mark.skipif(not jail.jail_available() or cgroups.flavour() is None,
                                   reason="needs the jail and a writable cgroup hierarchy (v2, or v1 memory and pids)")


@needs_cgroups
def test_the_processes_of_one_submission_share_one_memory_ceiling():
    """rlimits bound each process (here 1 GiB); the submission's cgroup bounds them together: four
    processes of 150 MiB each do not fit in 400 MiB, so the kernel stops one of them."""
    group = cgroups.SubmissionCgroup.create(f"{os.getpid()}-test-{uuid.uuid4().hex[:8]}",
                                            cgroups.CgroupLimits(memory_bytes=400 * 2**20, processes=32))
    assert group is not None
    code = ("import subprocess, sys\n"
            "hold = 'import time; b = bytearray(150 * 2**20); b[::4096] = b\"x\" * len(b[::4096]); time.sleep(4)'\n"
            "children = [subprocess.Popen([sys.executable, '-c', hold]) for _ in range(4)]\n"
            "print(sorted(c.wait() for c in children))")
    jail.use_cgroup(group)
    try:
        result = py(code)
        assert group.oom_kills() >= 1, result.stdout
        assert group.peak_memory() <= 400 * 2**20 + 2**20
    finally:
        jail.use_cgroup(None)
        group.remove()
    assert result.returncode != 0 or b"-9" in result.stdout, (result.stdout, result.stderr)
    assert not any(folder.exists() for folder in group.folders)


@needs_cgroups
def test_the_processes_of_one_submission_share_one_process_ceiling():
    group = cgroups.SubmissionCgroup.create(f"{os.getpid()}-test-{uuid.uuid4().hex[:8]}",
                                            cgroups.CgroupLimits(processes=6))
    code = ("import subprocess, sys\nstarted = 0\n"
            "try:\n    for _ in range(20):\n"
            "        subprocess.Popen(['sleep', '5']); started += 1\n"
            "except OSError as err:\n    print('stopped', started)\n")
    jail.use_cgroup(group)
    try:
        result = py(code, limits=Limits(wall_seconds=30, processes=64))
    finally:
        jail.use_cgroup(None)
        group.remove()
    words = result.stdout.split()
    assert words[:1] == [b"stopped"] and int(words[1]) < 6, (result.stdout, result.stderr)


@needs_cgroups
def test_every_submission_gets_an_equal_cpu_share_and_a_cap_only_when_asked():
    name = f"{os.getpid()}-test-{uuid.uuid4().hex[:8]}"
    shared = cgroups.SubmissionCgroup.create(name + "a", cgroups.CgroupLimits())
    capped = cgroups.SubmissionCgroup.create(name + "b", cgroups.CgroupLimits(cpus=0.5))
    try:
        def cpu_file(group, *names):
            return next((f / n).read_text().split() for f in group.folders for n in names if (f / n).exists())

        assert cpu_file(shared, "cpu.weight", "cpu.shares") == cpu_file(capped, "cpu.weight", "cpu.shares")
        assert cpu_file(shared, "cpu.max", "cpu.cfs_quota_us")[0] in ("max", "-1")
        assert cpu_file(capped, "cpu.max", "cpu.cfs_quota_us")[0] == "50000"
    finally:
        shared.remove()
        capped.remove()


@needs_cgroups
def test_the_cgroups_of_a_dead_grader_are_removed_and_those_of_a_live_one_kept():
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()  # its PID names a grader that is gone
    stale = cgroups.SubmissionCgroup.create(f"{dead.pid}-student-{uuid.uuid4().hex[:8]}", cgroups.CgroupLimits())
    live = cgroups.SubmissionCgroup.create(f"{os.getpid()}-student-{uuid.uuid4().hex[:8]}", cgroups.CgroupLimits())
    try:
        removed = cgroups.remove_stale()
        assert stale.folders[0].name in removed and not any(f.exists() for f in stale.folders)
        assert all(f.exists() for f in live.folders)
    finally:
        live.remove()
