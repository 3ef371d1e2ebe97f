"""What this machine must have to make and run an emulated board, each missing piece one line
that says what to do: root, the Debian tools, qemu-aarch64 registered with binfmt_misc (flag
F, so a chroot runs aarch64 programs with no copy of qemu inside), a Debian mirror.

Host packages are never installed from here: the line names the `apt-get install` to run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from edgeconv.board.spec import SUITE
from edgeconv.errors import EdgeconvError

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BINFMT_ENTRY = "qemu-aarch64"
MIRROR_ENV = "EDGECONV_BOARD_MIRROR"  # a Debian mirror URL when the host's apt has none
# program -> the Debian package that installs it
TOOLS = {"mmdebstrap": "mmdebstrap", "qemu-aarch64-static": "qemu-user-static",
         "update-binfmts": "binfmt-support", "ssh-keygen": "openssh-client",
         "ssh": "openssh-client",
         "unshare": "util-linux", "chroot": "coreutils", "mount": "mount"}
CREATE_TOOLS = tuple(TOOLS)
START_TOOLS = ("unshare", "chroot", "mount", "ssh")

# The seam a test or a wrapper may replace: who we run as (mmdebstrap, chroot and mounts
# need root). Everything else here reads the real machine.
effective_uid: Callable[[], int] = os.geteuid


def require_root(what: str) -> None:
    if effective_uid() != 0:
        raise EdgeconvError(f"{what} needs root (mmdebstrap, chroot and the board's mounts"
                            f" do): run it as root, e.g. `sudo {what}`")


def require_tools(names: tuple[str, ...]) -> None:
    missing = [name for name in names if not _which(name)]
    if missing:
        packages = " ".join(sorted({TOOLS[name] for name in missing}))
        raise EdgeconvError(f"{', '.join(missing)} not found: install them with"
                            f" `apt-get install -y {packages}`")


def _which(name: str) -> str | None:
    # root's PATH has the sbin folders; a sudo'd or minimal PATH may not
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def ensure_binfmt() -> None:
    """qemu-aarch64 registered, enabled, with flag F; mounts binfmt_misc and enables the
    entry (root) when that is all that is missing. One line when it cannot."""
    if not os.path.ismount(BINFMT_DIR):
        done = _run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)])
        if done is not None:
            raise EdgeconvError(f"binfmt_misc is not mounted at {BINFMT_DIR} and mounting it"
                                f" failed ({done}); run `mount -t binfmt_misc binfmt_misc"
                                f" {BINFMT_DIR}` on the host (a container needs the host's)")
    entry = BINFMT_DIR / BINFMT_ENTRY
    if not _enabled(entry):
        done = _run([_which("update-binfmts") or "update-binfmts", "--enable", BINFMT_ENTRY])
        if not _enabled(entry):
            raise EdgeconvError(f"qemu-aarch64 is not registered with binfmt_misc and"
                                f" `update-binfmts --enable {BINFMT_ENTRY}` failed"
                                f" ({done or 'no entry appeared'}); install qemu-user-static"
                                f" and binfmt-support (`apt-get install -y qemu-user-static"
                                f" binfmt-support`)")
    flags = re.search(r"^flags:\s*(\S*)", entry.read_text(), re.M)
    if not flags or "F" not in flags.group(1):
        raise EdgeconvError(f"{entry} lacks flag F (its interpreter would have to be inside"
                            f" every root): register qemu-user-static's entry, `update-binfmts"
                            f" --disable {BINFMT_ENTRY}; update-binfmts --enable {BINFMT_ENTRY}`")


def _enabled(entry: Path) -> bool:
    try:
        return entry.read_text().splitlines()[0].strip() == "enabled"
    except (OSError, IndexError):
        return False


def _run(command: list[str]) -> str | None:
    """None when `command` succeeded, else its last words."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def host_cpus() -> int:
    """How many CPUs the kernel says are present (the fake cpuinfo has one block each)."""
    try:
        text = Path("/sys/devices/system/cpu/present").read_text().strip()
        count = 0
        for part in text.split(","):
            first, _, last = part.partition("-")
            count += int(last or first) - int(first) + 1
        return count
    except (OSError, ValueError):
        return os.cpu_count() or 1


def debian_sources(etc: Path = Path("/etc")) -> list[str]:
    """One-line apt sources for the board's suite, from the host's own Debian mirror: the
    archive (and its -updates) and the security archive, as the host's apt lists them."""
    override = os.environ.get(MIRROR_ENV, "").strip()
    if override:
        if not re.fullmatch(r"https?://\S+", override):
            raise EdgeconvError(f"{MIRROR_ENV}={override!r} is not an http(s) URL of a Debian"
                                " mirror")
        return [f"deb {override} {SUITE} main", f"deb {override} {SUITE}-updates main"]
    release = _os_release(etc / "os-release")
    codename = release.get("VERSION_CODENAME", "")
    if release.get("ID") != "debian" or not codename:
        raise EdgeconvError(f"no Debian apt mirror found (this host is not Debian): set"
                            f" {MIRROR_ENV}=http://deb.debian.org/debian (or your mirror)")
    kinds = {codename: "", f"{codename}-updates": "-updates", f"{codename}-security":
             "-security", f"{codename}/updates": "-security"}
    lines: list[str] = []
    for uris, suites in _apt_entries(etc / "apt"):
        for uri in uris:
            for suite in suites:
                if suite in kinds and uri.startswith(("http://", "https://")):
                    line = f"deb {uri} {SUITE}{kinds[suite]} main"
                    if line not in lines:
                        lines.append(line)
    if not any(line.endswith(f" {SUITE} main") for line in lines):
        raise EdgeconvError(f"no Debian mirror for '{codename}' in the host's apt sources"
                            f" ({etc / 'apt'}): set {MIRROR_ENV}=http://deb.debian.org/debian"
                            " (or your mirror)")
    return lines


def _os_release(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip().strip('"') for key, value in pairs}


def _apt_entries(apt: Path) -> list[tuple[list[str], list[str]]]:
    """(URIs, suites) of every enabled `deb` entry: sources.list lines and deb822 files."""
    entries: list[tuple[list[str], list[str]]] = []
    one_line = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    for path in one_line:
        for line in _read(path).splitlines():
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                entries.append(([words[1]], [words[2]]))
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", _read(path)):
            fields: dict[str, str] = {}
            key = None
            for line in stanza.splitlines():
                if line.startswith("#"):
                    continue
                if line[:1].isspace() and key:
                    fields[key] += " " + line.strip()
                elif ":" in line:
                    key, value = line.split(":", 1)
                    key = key.strip().lower()
                    fields[key] = value.strip()
            if ("deb" in fields.get("types", "").split()
                    and fields.get("enabled", "yes").lower() != "no"):
                entries.append((fields.get("uris", "").split(), fields.get("suites", "").split()))
    return entries


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
