"""Run a program inside a board's root: a private mount namespace (unshare), the mounts an
aarch64 program needs, then chroot.

Every mount is made inside the namespace, so none appears on the host and all vanish with
the namespace's last process: nothing to unmount after a crash, and removing the board's
folder can never reach the host's /proc, /sys or /dev (the host's /dev is never bound in).

The program also runs in a PID namespace of its own (`unshare --pid --fork --kill-child`):
when unshare dies, its child (the namespace's PID 1) gets SIGKILL and the kernel kills every
process in the namespace with it; `_proc.die_with_parent` makes unshare die with us. So
nothing of a board outlives the edgeconv process that started it, however that one ends.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

# $1 the root, $2 a fake aarch64 cpuinfo ('' for none), then the program and its arguments.
# - proc, with the fake cpuinfo over proc/cpuinfo: qemu user mode shows the host's x86 text,
#   which makes XNNPACK's cpuinfo library crash LiteRT (or silently skip XNNPACK);
# - /sys read-only: the cpuinfo library counts CPUs there;
# - a new devpts instance, its ptmx over the root's dev/ptmx node (which is the host's);
# - a tmpfs on dev/shm (Python's multiprocessing and shm_open want one).
_SETUP = r"""
set -e
root=$1; cpuinfo=$2; shift 2
mount -t proc proc "$root/proc"
if [ -n "$cpuinfo" ]; then mount --bind "$cpuinfo" "$root/proc/cpuinfo"; fi
mount -o bind,ro /sys "$root/sys"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
mount --bind "$root/dev/pts/ptmx" "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
"""
_EXEC = 'exec chroot "$root" "$@"\n'


_UNSHARE = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
            "--kill-child=SIGKILL"]

# The whole environment of a program in the root: the host's would bring its PIP_FIND_LINKS,
# virtualenv and paths that do not exist there.
BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root", "LANG": "C.UTF-8"}


def in_root(root: Path, argv: list[str], *, cpuinfo: Path | None,
            binds: tuple[tuple[Path, str], ...] = ()) -> list[str]:
    """The argument list that runs `argv` (paths inside the root) in `root`. Give it an
    environment holding QEMU_CPU: qemu reads it when the first aarch64 program starts.
    `binds`: (host folder, absolute path in the root) pairs, bound read-only for the run."""
    lines = []
    for source, inside in binds:
        if not inside.startswith("/") or ".." in inside.split("/"):
            raise ValueError(f"bind target {inside!r}: an absolute path without '..'")
        step = root
        for part in inside.strip("/").split("/"):  # a link in the root may lead to the host
            step = step / part
            if step.is_symlink():
                raise ValueError(f"bind target {inside!r}: {step} is a symbolic link")
        where = '"$root"' + shlex.quote(inside)
        lines.append(f"mkdir -p {where}; mount --bind {shlex.quote(str(source))} {where};"
                     f" mount -o remount,bind,ro {where}\n")
    return [*_UNSHARE, "--", "/bin/sh", "-c", _SETUP + "".join(lines) + _EXEC,
            "edgeconv-board", str(root), str(cpuinfo or ""), *argv]


def private(argv: list[str]) -> list[str]:
    """`argv` (a host program) in private mount and PID namespaces: the mounts it makes
    (mmdebstrap mounts proc, sys and device nodes into the root it builds) and the processes
    it starts (apt, dpkg) die with it if it is killed."""
    return [*_UNSHARE, "--mount-proc", "--", *argv]


def env(qemu_cpu: str, **extra: str) -> dict[str, str]:
    return {**BASE_ENV, "QEMU_CPU": qemu_cpu, **extra}


def mount_namespace(pid: int) -> str | None:
    """The mount namespace of a process (its /proc/PID/ns/mnt link), None when it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def members(namespace: str) -> list[int]:
    """Every process in the mount namespace `namespace`: a board's sshd and its sessions."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and mount_namespace(int(entry)) == namespace:
            pids.append(int(entry))
    return pids


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` in this namespace (never remove through one)."""
    top = str(path.resolve())
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            point = _unescape(fields[4])
            if point == top or point.startswith(top.rstrip("/") + "/"):
                found.append(point)
    return found


def _unescape(text: str) -> str:
    # mountinfo writes space, tab, newline and backslash as \040, \011, \012, \134
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1:i + 4].isdigit():
            out.append(chr(int(text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
