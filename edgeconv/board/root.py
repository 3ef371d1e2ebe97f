"""A board's root file system: an arm64 Debian root (mmdebstrap), SSH keys, a venv holding
the runtime-only edgeconv (`pip install 'edgeconv[litert]'` from a wheel, its aarch64
dependencies from the package index), and the check that it imports and has no TensorFlow.

Each function does one step on a folder; edgeconv.board.make decides which steps run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeconv._child import BadReply, last_line, parse_reply
from edgeconv.board import namespace
from edgeconv.board._proc import run_step
from edgeconv.board.spec import ARCH, EXTRA, PACKAGES, SUITE, VENV, BoardSpec
from edgeconv.errors import EdgeconvError

HOST_KEY = "/etc/ssh/edgeconv_host_ed25519_key"  # in the root; sshd -h names it
HOST_CA = "/etc/ssl/certs/edgeconv-host-ca.crt"  # in the root, when the host trusts more CAs
DEBIAN_CA = "/etc/ssl/certs/ca-certificates.crt"
_PASSED = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
           "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT")
DEBOOTSTRAP_TIMEOUT_S = 1800
PIP_TIMEOUT_S = 1800
_PACKAGES_REPORTED = ("numpy", "typer", "rich", "ai-edge-litert")

Lines = Callable[[str], None]


def debootstrap(root: Path, sources: list[str], on_line: Lines | None = None) -> None:
    """arm64 Debian (minbase + PACKAGES) into `root`, in a private mount namespace: what
    mmdebstrap mounts into the root while it works dies with it if it is killed."""
    run_step(namespace.private(
        ["mmdebstrap", f"--arch={ARCH}", "--variant=minbase", f"--include={','.join(PACKAGES)}",
         SUITE, str(root), *sources]),
        what="mmdebstrap (the arm64 Debian root)", timeout=DEBOOTSTRAP_TIMEOUT_S,
        on_line=on_line)


def make_keys(folder: Path, root: Path, name: str) -> None:
    """The client key pair (folder/ssh/id) with its public half in the root's
    authorized_keys, and the root's own host key (made here: an emulated ssh-keygen is slow)."""
    ssh = folder / "ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    for key in (ssh / "id", root / HOST_KEY.lstrip("/")):
        for old in (key, key.with_name(key.name + ".pub")):
            old.unlink(missing_ok=True)
        run_step(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"edgeconv-board-{name}",
                  "-f", str(key)], what="ssh-keygen", timeout=60)
    dot_ssh = root / "root" / ".ssh"
    dot_ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
    authorized = dot_ssh / "authorized_keys"
    authorized.write_text((ssh / "id.pub").read_text())
    authorized.chmod(0o600)
    (root / "run" / "sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation


def host_key(root: Path) -> str:
    """The root's host public key: "ssh-ed25519 AAAA..." (for known_hosts)."""
    words = (root / f"{HOST_KEY.lstrip('/')}.pub").read_text().split()
    return " ".join(words[:2])


def make_venv(root: Path, spec: BoardSpec, cpuinfo: Path) -> None:
    run_step(namespace.in_root(root, ["/usr/bin/python3", "-m", "venv", VENV], cpuinfo=cpuinfo),
             env=namespace.env(spec.qemu_cpu), what=f"python3 -m venv {VENV} in the board",
             timeout=PIP_TIMEOUT_S)


def install_edgeconv(root: Path, wheel: Path, spec: BoardSpec, cpuinfo: Path,
                     on_line: Lines | None = None) -> None:
    """`pip install 'edgeconv-*.whl[litert]'` in the board's venv, replacing any edgeconv
    there (the same version number may hold other code: a checkout's wheel)."""
    drop = root / "tmp" / "edgeconv-wheel"
    shutil.rmtree(drop, ignore_errors=True)
    drop.mkdir(parents=True)
    shutil.copy2(wheel, drop / wheel.name)
    _refresh_network_files(root)
    pip_env = _pip_env(root, spec)
    pip = [f"{VENV}/bin/python", "-m", "pip"]
    try:
        # an edgeconv that is not there is not an error here
        run_step(namespace.in_root(root, [*pip, "uninstall", "--yes", "--quiet", "edgeconv"],
                                   cpuinfo=cpuinfo),
                 env=pip_env, what="pip uninstall edgeconv in the board", timeout=PIP_TIMEOUT_S)
        run_step(namespace.in_root(root, [*pip, "install", "--no-cache-dir", "--progress-bar",
                                          "off", f"/tmp/edgeconv-wheel/{wheel.name}[{EXTRA}]"],
                                   cpuinfo=cpuinfo),
                 env=pip_env, what=f"pip install 'edgeconv[{EXTRA}]' in the board",
                 timeout=PIP_TIMEOUT_S, on_line=on_line)
    finally:
        shutil.rmtree(drop, ignore_errors=True)


def write_marker(root: Path, spec: BoardSpec) -> None:
    """/etc/edgeconv/emulated.json in the root: what a program there (the board's edgeconv
    reporting its environment) can read to know its timings are emulated, not a board's."""
    try:
        first = subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True,
                               text=True, timeout=30, check=False).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        first = []
    folder = root / "etc" / "edgeconv"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "emulated.json").write_text(json.dumps({
        "board": spec.name, "target": spec.target, "cpu": spec.cpu, "qemu_cpu": spec.qemu_cpu,
        "emulator": first[0].strip() if first else "qemu-aarch64"}, indent=2) + "\n")


def inspect(root: Path, spec: BoardSpec, cpuinfo: Path) -> dict[str, Any]:
    """What the board's venv holds, from inside it: machine, Python, edgeconv and its
    runtime versions, whether TensorFlow is importable (it must not be), LiteRT's import."""
    script = (
        "import importlib.metadata as m, importlib.util as u, json, platform, edgeconv\n"
        "from ai_edge_litert.interpreter import Interpreter\n"
        "def v(d):\n"
        "    try: return m.version(d)\n"
        "    except m.PackageNotFoundError: return None\n"
        f"print(json.dumps({{'machine': platform.machine(), 'python': platform.python_version(),"
        f" 'edgeconv': edgeconv.__version__, 'packages': {{d: v(d) for d in"
        f" {_PACKAGES_REPORTED!r} if v(d)}},"
        " 'tensorflow': u.find_spec('tensorflow') is not None}))\n")
    out = run_step(namespace.in_root(root, [f"{VENV}/bin/python", "-c", script],
                                     cpuinfo=cpuinfo),
                   env=namespace.env(spec.qemu_cpu), what="checking edgeconv in the board",
                   timeout=300)
    try:  # the board's answer, bounded in size and depth like any child's
        found = parse_reply(last_line(out))
    except BadReply:
        found = None
    if not isinstance(found, dict):
        raise EdgeconvError(f"checking edgeconv in the board printed no result: {out[-300:]}")
    if found.get("machine") != "aarch64":
        raise EdgeconvError(f"the board's Python runs as {found.get('machine')}, not aarch64:"
                            " is qemu-aarch64 registered with binfmt_misc?")
    if found.get("tensorflow"):
        raise EdgeconvError("TensorFlow is importable in the board: the runtime-only install"
                            " must not pull it in")
    version = run_step(namespace.in_root(root, [f"{VENV}/bin/edgeconv", "--version"],
                                         cpuinfo=cpuinfo),
                       env=namespace.env(spec.qemu_cpu), what="edgeconv --version in the board",
                       timeout=300)
    if found["edgeconv"] not in version:
        raise EdgeconvError(f"the board's edgeconv command says {version.strip()!r}, its"
                            f" package {found['edgeconv']}")
    return found


def _pip_env(root: Path, spec: BoardSpec) -> dict[str, str]:
    """pip's environment in the root: none of the host's pip settings (PIP_FIND_LINKS may
    name a host folder) but its proxies and http(s) indexes, and a CA bundle pip can read
    there: the host's, copied in, when it trusts CAs Debian's bundle lacks (a TLS proxy)."""
    passed = {name: os.environ[name] for name in _PASSED
              if name in os.environ and not re.search(r"(^|\s)(file:|/)", os.environ[name])}
    bundle = _ca_bundle(root)
    tls = {"PIP_CERT": bundle, "REQUESTS_CA_BUNDLE": bundle, "SSL_CERT_FILE": bundle}
    return namespace.env(spec.qemu_cpu, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
                         **passed, **tls)


def _ca_bundle(root: Path) -> str:
    """The root's path of the CA bundle pip should trust."""
    host = next((Path(os.environ[v]) for v in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
                 if os.environ.get(v) and Path(os.environ[v]).is_file()),
                Path(DEBIAN_CA))
    own = root / DEBIAN_CA.lstrip("/")
    try:
        if host.is_file() and host.read_bytes() != own.read_bytes():
            target = root / HOST_CA.lstrip("/")
            shutil.copyfile(host, target)
            return HOST_CA
    except OSError:
        pass
    return DEBIAN_CA


def _refresh_network_files(root: Path) -> None:
    """The host's resolver for pip (mmdebstrap copied it at build time; it may have moved)."""
    for name in ("resolv.conf", "hosts"):
        source = Path("/etc") / name
        target = root / "etc" / name
        try:
            if source.is_file():
                if target.is_symlink():  # never write through a link into the host
                    target.unlink()
                shutil.copyfile(source, target)
        except OSError:
            pass


def size_on_disk(folder: Path) -> int:
    """Bytes the folder takes on disk (blocks, hard links once, not crossing mounts)."""
    try:
        top = folder.lstat().st_dev
    except OSError:
        return 0
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_dev != top or (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            total += info.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return total

