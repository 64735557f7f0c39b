"""The first process inside a jail (PID 1 of its namespaces, still root): set up, drop rights, run.

Started by :mod:`autograder.jail` as ``unshare ... python -I jail_init.py SPEC``. It brings the
loopback interface up (the only network there is), mounts a size-limited tmpfs as the working
folder and another over ``/tmp``, copies the submission's files in, mounts empty read-only
filesystems over the hidden paths, then forks: the child sets the rlimits, becomes the
unprivileged uid and executes the command; this process waits, copies back the files the
grader asked for, and exits with the command's status. Its exit ends the PID namespace, which
kills every process the command left behind.
"""

import ctypes
import fcntl
import json
import os
import resource
import shutil
import signal
import socket
import struct
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 4096, 16384, 1 << 18
WORK = "/mnt/arflow-work"
libc = ctypes.CDLL(None, use_errno=True)


def mount(source, target, fstype, flags, data=None):
    if libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(), flags,
                  data and data.encode()) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")


def loopback_up():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, 0x8913, request))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 0x1, b""))  # SIOCSIFFLAGS, IFF_UP


MS_MOVE = 8192
KEEP = "/mnt/arflow-keep"
_held = [0]


def under(path, folder):
    return os.path.commonpath([os.path.abspath(path), folder]) == folder and os.path.abspath(path) != folder


def cover(folder, keep, data):
    """Mount a fresh tmpfs (``data``: its options) over ``folder`` in this mount namespace, with
    the children of ``folder`` that lead to the paths in ``keep`` bind-mounted back, so that those
    stay reachable while everything else in ``folder`` disappears from view."""
    children = sorted({os.path.relpath(p, folder).split(os.sep)[0] for p in keep if under(p, folder)})
    os.makedirs(KEEP, exist_ok=True)
    held = []
    for child in children:
        _held[0] += 1
        holder = os.path.join(KEEP, str(_held[0]))
        os.makedirs(holder, exist_ok=True)
        mount(os.path.join(folder, child), holder, None, MS_BIND | MS_REC)
        held.append((child, holder))
    mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, data)
    for child, holder in held:
        os.makedirs(os.path.join(folder, child), exist_ok=True)
        mount(holder, os.path.join(folder, child), None, MS_MOVE)


def make_reachable(paths, uid_can_enter):
    """Let the jailed user reach ``paths`` (the interpreter, the venv, the course) through
    ancestors it may not enter (``/root`` is 0700): each such ancestor is covered by an empty
    0755 tmpfs into which just the needed children are bind-mounted back. Everything else in it
    (``/root/.ssh`` ...) disappears from view."""
    for _ in range(16):  # one blocking ancestor per pass, outermost first
        blocked = set()
        for path in paths:
            parts = os.path.abspath(path).split(os.sep)[1:]
            for depth in range(1, len(parts)):
                ancestor = os.sep + os.path.join(*parts[:depth])
                if not uid_can_enter(ancestor):
                    blocked.add(ancestor)
                    break
        if not blocked:
            return
        cover(min(blocked, key=len), paths, "size=64k,mode=0755")


MS_NOEXEC, MS_REMOUNT, CLONE_NEWNS = 8, 32, 0x00020000
FLAG_OPTIONS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}
#: mount points left writable: kernel interfaces (their own permissions apply)
VIRTUAL = ("/proc", "/sys", "/dev/pts", "/dev/mqueue")


def _unescape(field):
    return field.encode().decode("unicode_escape").encode("latin-1").decode()


def read_only_everywhere(writable):
    """Remount every mount point of this namespace read-only, except the jail's own tmpfs folders
    (``writable``) and kernel interfaces: a world-writable host folder (``/var/tmp``, ``/dev/shm``)
    must not take a submission's files either."""
    with open("/proc/self/mountinfo") as handle:
        mounts = [line.split() for line in handle]
    for fields in mounts:
        target, options = _unescape(fields[4]), fields[5].split(",")
        if target in writable or any(target == v or target.startswith(v + "/") for v in VIRTUAL):
            continue
        if "ro" in options:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for name, bit in FLAG_OPTIONS.items():
            if name in options:
                flags |= bit
        try:
            mount(None, target, None, flags)
        except OSError:
            pass  # a mount that cannot be remounted (gone, or special): nothing the uid could write there


def other_can_enter(path):
    try:
        return bool(os.stat(path).st_mode & 0o001)
    except OSError:
        return True


def main():
    spec = json.load(open(sys.argv[1]))
    limits, uid = spec["limits"], spec["uid"]
    staging_parent = os.open(os.path.dirname(spec["staging"]), os.O_RDONLY | os.O_DIRECTORY)
    staged = {name: open(os.path.join(spec["staging"], name), "rb").read() for name in os.listdir(spec["staging"])}

    mount(None, "/", None, MS_REC | MS_PRIVATE)
    loopback_up()
    make_reachable(spec["reach"], other_can_enter)
    size = f"size={limits['disk_bytes']},mode=0755"
    os.makedirs(WORK, exist_ok=True)
    mount("tmpfs", WORK, "tmpfs", MS_NOSUID | MS_NODEV, size)
    # A private /tmp; the course itself may live under /tmp (a CI clone): that part stays.
    cover("/tmp", spec["reach"], f"size={limits['disk_bytes']},mode=1777")
    for path in spec["hide"]:
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=0555")
        elif os.path.exists(path):
            mount("/dev/null", path, None, MS_BIND)
    for path in spec.get("writable", []):  # e.g. the jailed kernel's socket folder: a mount point of its own
        if os.path.isdir(path):
            mount(path, path, None, MS_BIND)
    for name, content in staged.items():
        with open(os.path.join(WORK, name), "wb") as handle:
            handle.write(content)
        os.chown(os.path.join(WORK, name), uid, uid)
    os.chown(WORK, uid, uid)

    child = os.fork()
    if child == 0:
        try:
            # A mount namespace of the command's own, where everything else is read-only; this
            # process keeps its writable view, to hand back the collected files.
            if libc.unshare(CLONE_NEWNS) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
            mount(None, "/", None, MS_REC | MS_PRIVATE)
            read_only_everywhere({WORK, "/tmp", *spec.get("writable", [])})
            os.chdir(WORK)
            for name, value in (("RLIMIT_AS", limits["memory_bytes"]), ("RLIMIT_FSIZE", limits["file_bytes"]),
                                ("RLIMIT_NPROC", limits["processes"]), ("RLIMIT_CORE", 0),
                                ("RLIMIT_NOFILE", limits["open_files"])):
                resource.setrlimit(getattr(resource, name), (value, value))
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            env = dict(spec["env"], HOME=WORK, TMPDIR="/tmp", MPLCONFIGDIR="/tmp/matplotlib")
            os.execvpe(spec["argv"][0], spec["argv"], env)
        except BaseException as err:  # noqa: BLE001 - report and never return into the parent's code
            os.write(2, f"jail: could not start {spec['argv'][0]}: {err}\n".encode())
        os._exit(127)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a kernel's interrupts are for the command, not for us
    status = 0
    while True:  # PID 1 reaps every orphan; stop when the command itself has ended
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        if pid == child:
            status = os.waitstatus_to_exitcode(code)
            break
    os.mkdir("collected", dir_fd=staging_parent)
    out_dir = os.open("collected", os.O_RDONLY | os.O_DIRECTORY, dir_fd=staging_parent)
    for name in spec["collect"]:
        try:  # O_NOFOLLOW: a symlink planted by the student is never followed as root
            fd = os.open(os.path.join(WORK, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        with open(fd, "rb") as source:
            if not os.path.stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                continue
            target_fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=out_dir)
            with open(target_fd, "wb") as target:
                shutil.copyfileobj(source, target, length=1 << 20)
    sys.exit(128 - status if status < 0 else status)


if __name__ == "__main__":
    main()
