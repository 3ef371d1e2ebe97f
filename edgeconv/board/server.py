"""A board on the network: the root's own aarch64 OpenSSH server on 127.0.0.1, in a private
mount namespace (edgeconv.board.namespace), reached with the board's key and a known_hosts
file made for its port, so that `edgeconv bench --host` needs nothing loosened.

sshd clears its sessions' environment, so QEMU_CPU would not reach them and they would run
qemu's default CPU (it advertises SME, and XNNPACK's int8 output is then garbage): sshd's
own `SetEnv` puts it back in every session, and `start` checks that it did.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeconv.board import cache, host, namespace
from edgeconv.board._proc import die_with_parent
from edgeconv.board.make import Board, load
from edgeconv.board.root import HOST_KEY, host_key
from edgeconv.errors import EdgeconvError

START_TIMEOUT_S = 60.0  # sshd answers in 0.3-0.8 s here; a loaded machine may take longer
SESSION_TIMEOUT_S = 60.0
STOP_GRACE_S = 5.0
USER = "root"
ADDRESS = "127.0.0.1"


@dataclass
class RunningBoard:
    """A board's sshd, listening on 127.0.0.1:port. A context manager: it stops on exit."""

    board: Board
    port: int
    pid: int  # the server's (unshare, whose namespace holds sshd and its sessions)
    run_dir: Path  # known_hosts and sshd.log of this server
    _proc: subprocess.Popen = field(repr=False)
    _namespace: str | None = field(repr=False)
    _stack: contextlib.ExitStack = field(repr=False)

    @property
    def host(self) -> str:
        return f"{USER}@{ADDRESS}:{self.port}"

    @property
    def identity(self) -> Path:
        return self.board.path / "ssh" / "id"

    @property
    def known_hosts(self) -> Path:
        return self.run_dir / "known_hosts"

    @property
    def ssh_options(self) -> tuple[str, ...]:
        """What `edgeconv bench --ssh-option` needs (host-key checking stays on)."""
        return (f"IdentityFile={_value(self.identity)}", "IdentitiesOnly=yes",
                f"UserKnownHostsFile={_value(self.known_hosts)}", "StrictHostKeyChecking=yes")

    @property
    def remote_edgeconv(self) -> str:
        return self.board.remote_edgeconv

    @property
    def remote_python(self) -> str:
        return self.board.remote_python

    @property
    def cpu(self) -> str:
        return self.board.cpu

    @property
    def qemu_cpu(self) -> str:
        return self.board.qemu_cpu

    def ssh_args(self, command: str) -> list[str]:
        """An ssh command line that runs `command` (one shell line) in a board session."""
        options = ["BatchMode=yes", *self.ssh_options, "ConnectTimeout=10"]
        return ["ssh", *(a for o in options for a in ("-o", o)), "-p", str(self.port), "-T",
                "--", f"{USER}@{ADDRESS}", command]

    def bench_args(self) -> list[str]:
        """The `edgeconv bench` options that bench on this board over SSH."""
        return ["--target", self.board.target, "--host", self.host,
                *(a for o in self.ssh_options for a in ("--ssh-option", o)),
                "--remote-edgeconv", self.remote_edgeconv]

    def log_tail(self) -> str:
        """The server's last log line (why it exited)."""
        return _log_tail(self)

    def alive(self) -> bool:
        return self._proc.poll() is None

    def wait(self) -> int:
        """Block until the server exits (it does not on its own); its exit status."""
        return self._proc.wait()

    def stop(self) -> None:
        """Stop the server and every process of its sessions (its PID namespace dies with
        it); the namespace's mounts vanish with them."""
        try:
            _terminate(self._proc, self._namespace)
        finally:
            with contextlib.suppress(OSError, EdgeconvError):
                cache.remove_tree(self.run_dir)
            self._stack.close()

    def to_dict(self) -> dict[str, Any]:
        return {"board": self.board.name, "target": self.board.target, "cpu": self.cpu,
                "qemu_cpu": self.qemu_cpu, "host": self.host, "port": self.port,
                "pid": self.pid, "ssh_options": list(self.ssh_options),
                "remote_edgeconv": self.remote_edgeconv, "remote_python": self.remote_python,
                "edgeconv": self.board.edgeconv, "bench_args": self.bench_args()}

    def __enter__(self) -> RunningBoard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start(name: str, port: int | None = None, *, timeout: float = START_TIMEOUT_S
          ) -> RunningBoard:
    """Start board `name`'s sshd on 127.0.0.1:`port` (a free one by default) and return
    once a session answers with the board's CPU model."""
    board = load(name)
    host.require_root(f"edgeconv board start {name}")
    host.require_tools(host.START_TOOLS)
    host.ensure_binfmt()
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(cache.locked(name, shared=True))  # no create/remove meanwhile
        port = _port(port)
        run_dir = board.path / "run" / str(port)
        cache.remove_tree(run_dir)  # a server of this port that was killed
        run_dir.mkdir(parents=True)
        (run_dir / "known_hosts").write_text(f"[{ADDRESS}]:{port} {host_key(board.root)}\n")
        cpuinfo = cache.write_cpuinfo(board.path, board.spec, host.host_cpus())
        (board.root / "run" / "sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        sshd = ["/usr/sbin/sshd", "-D", "-e", "-p", str(port), "-h", HOST_KEY,
                "-o", f"ListenAddress={ADDRESS}", "-o", "UsePAM=no",
                "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
                "-o", "PermitRootLogin=prohibit-password", "-o", "PidFile=none",
                "-o", f"SetEnv=QEMU_CPU={board.qemu_cpu}"]
        log = stack.enter_context((run_dir / "sshd.log").open("w"))
        proc = subprocess.Popen(namespace.in_root(board.root, sshd, cpuinfo=cpuinfo),
                                env=namespace.env(board.qemu_cpu), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=die_with_parent)  # the board dies with us
    except BaseException:
        stack.close()
        raise
    ours = namespace.mount_namespace(os.getpid())
    running = RunningBoard(board=board, port=port, pid=proc.pid, run_dir=run_dir,
                           _proc=proc, _namespace=None, _stack=stack)
    try:
        _wait_for_banner(running, timeout)
        ns = namespace.mount_namespace(proc.pid)
        running._namespace = ns if ns and ns != ours else None  # never sweep our own
        check_session(running)
    except BaseException:
        running.stop()
        raise
    return running


def check_session(running: RunningBoard) -> None:
    """A session over SSH runs the board's CPU model: qemu's default (`max`) would show
    SME and more in AT_HWCAP2; the Cortex-A72 and A76 models show none."""
    try:
        done = subprocess.run(running.ssh_args("LD_SHOW_AUXV=1 /bin/true"), capture_output=True,
                              text=True, timeout=SESSION_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise EdgeconvError(f"board {running.board.name}: an SSH session on {running.host} did"
                            f" not answer in {SESSION_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise EdgeconvError(f"board {running.board.name}: an SSH session on {running.host}"
                            f" failed: {lines[-1] if lines else f'exit {done.returncode}'}")
    found = re.search(r"AT_HWCAP2:\s*(0x[0-9a-f]+|\d+)", done.stdout)
    if not found or int(found.group(1), 0) != 0:
        raise EdgeconvError(f"board {running.board.name}: sessions do not run the"
                            f" {running.cpu} model (AT_HWCAP2"
                            f" {found.group(1) if found else 'missing'}): QEMU_CPU did not"
                            " reach them")


def in_board(board: Board, argv: list[str], *, binds: tuple[tuple[Path, str], ...] = (),
             **env: str) -> tuple[list[str], dict[str, str]]:
    """(argument list, environment) that run `argv` inside the board without SSH, with its
    CPU model and cpuinfo; `binds` puts host folders at paths in the root (read-only), for
    the time of the run only. Hold `cache.locked(name, shared=True)` while it runs."""
    cpuinfo = cache.write_cpuinfo(board.path, board.spec, host.host_cpus())
    return (namespace.in_root(board.root, argv, cpuinfo=cpuinfo, binds=binds),
            namespace.env(board.qemu_cpu, **env))


def _port(port: int | None) -> int:
    with socket.socket() as sock:
        try:
            sock.bind((ADDRESS, port or 0))
        except OverflowError:
            raise EdgeconvError(f"--port {port}: not a port (1-65535)") from None
        except OSError as exc:
            raise EdgeconvError(f"port {port} on {ADDRESS} is not free"
                                f" ({exc.strerror or exc})") from None
        return sock.getsockname()[1]


def _wait_for_banner(running: RunningBoard, timeout: float) -> None:
    """Until sshd sends its "SSH-2.0-" banner on the port; one line if it exits or never
    answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running.alive():
            raise EdgeconvError(f"board {running.board.name}: sshd exited"
                                f" ({running._proc.returncode}): {_log_tail(running)}")
        try:
            with socket.create_connection((ADDRESS, running.port), timeout=2) as sock:
                sock.settimeout(max(1.0, min(10.0, deadline - time.monotonic())))
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise EdgeconvError(f"board {running.board.name}: sshd did not answer on {running.host}"
                        f" in {timeout:g} s: {_log_tail(running)}")


def _log_tail(running: RunningBoard) -> str:
    try:
        lines = (running.run_dir / "sshd.log").read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return lines[-1] if lines else "no output"


def _terminate(proc: subprocess.Popen, ns: str | None) -> None:
    """SIGKILL unshare (it ignores SIGTERM while it waits): --kill-child kills the
    namespace's PID 1 and the kernel every other process in it. Then wait until none is
    left in the mount namespace, so its mounts are gone when stop() returns."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_GRACE_S)
    deadline = time.monotonic() + STOP_GRACE_S
    while ns and namespace.members(ns):
        if time.monotonic() > deadline:  # not expected: the kernel does it; by PID then
            for pid in namespace.members(ns):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + STOP_GRACE_S
        time.sleep(0.05)


def _value(path: Path) -> str:
    """A path as an ssh_config value (quoted when it holds a space)."""
    text = str(path)
    return f'"{text}"' if any(c.isspace() for c in text) else text
