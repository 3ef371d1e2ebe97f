"""A real OpenSSH server on 127.0.0.1 that plays a board, for tests/test_remote.py and
tests/test_hostile_bench.py: a free port, a temporary host key, client key pair and
known_hosts, and a target file for this machine reached over it.

Not a test module (pytest collects test_*.py): a module that needs the server defines its
fixture with `serve_sshd`.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
# The board's edgeconv: this venv's, with TensorFlow made unimportable, so a test proves the
# board side never needs it (a device install has none).
NO_TF = ("import sys; sys.modules['tensorflow'] = None; sys.argv[0] = 'edgeconv'; "
         "from edgeconv.cli import main; main()")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _keygen(path: Path) -> list[str]:
    """A new ed25519 key pair at `path`; returns the public key's [type, base64]."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgeconv-test", "-f",
                    str(path)], check=True, capture_output=True)
    return Path(f"{path}.pub").read_text().split()[:2]


def serve_sshd(tmp_path_factory):
    """sshd -D on 127.0.0.1:PORT; yields (dir, port) and kills it at the end. A module's
    fixture: `yield from serve_sshd(tmp_path_factory)` (skips when sshd cannot run here)."""
    if not Path(SSHD).is_file() or not shutil.which("ssh") or not shutil.which("scp"):
        pytest.skip("OpenSSH server or client not installed (apt-get install openssh-server)")
    root = tmp_path_factory.mktemp("sshd")
    host_key_type, host_key = _keygen(root / "host_key")
    client_type, client_key = _keygen(root / "id")
    (root / "authorized_keys").write_text(f"{client_type} {client_key}\n")
    port = _free_port()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key_type} {host_key}\n")
    sftp = next((p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server",
                             "/usr/lib/ssh/sftp-server") if Path(p).is_file()), "internal-sftp")
    (root / "sshd_config").write_text("\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {root / 'host_key'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PubkeyAuthentication yes", "UsePAM no",
        "StrictModes no", f"PidFile {root / 'sshd.pid'}", "PermitRootLogin prohibit-password",
        f"Subsystem sftp {sftp}", "LogLevel ERROR", ""]))
    if os.access("/run", os.W_OK):  # sshd's privilege-separation folder, when we may
        Path("/run/sshd").mkdir(exist_ok=True)
    check = subprocess.run([SSHD, "-t", "-f", str(root / "sshd_config")], capture_output=True,
                           text=True, check=False)
    if check.returncode != 0:
        pytest.skip(f"sshd refuses the test config here: {check.stderr.strip()[-300:]}")
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
                              stderr=(root / "sshd.log").open("w"))
    try:
        deadline = time.monotonic() + 10
        while server.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.skip(f"sshd did not start: {(root / 'sshd.log').read_text()[-300:]}")
        yield root, port
    finally:
        server.kill()
        server.wait()


def _board(root: Path, port: int, folder: Path, known_hosts: Path | None = None,
           arch: str = platform.machine(),
           remote_edgeconv: str = f"{sys.executable} -c {json.dumps(NO_TF)}") -> Path:
    """A target file for this machine as a board reached over SSH on the loopback, in a
    folder to pass as --targets-dir (a file the user names may set host)."""
    folder.mkdir(exist_ok=True)
    options = [f"IdentityFile={root / 'id'}", "IdentitiesOnly=yes",
               f"UserKnownHostsFile={known_hosts or root / 'known_hosts'}",
               "GlobalKnownHostsFile=/dev/null"]
    (folder / "loopback.toml").write_text("\n".join([
        'description = "this machine as a board, over SSH on 127.0.0.1"', 'kind = "board"',
        f'arch = "{arch}"', 'runtimes = ["litert"]', "threads = [1]",
        f'host = "{getpass.getuser()}@127.0.0.1:{port}"',
        f"ssh_options = {json.dumps(options)}",
        f"remote_edgeconv = {json.dumps(remote_edgeconv)}", ""]))
    return folder
