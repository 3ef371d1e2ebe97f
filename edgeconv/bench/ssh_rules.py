"""What may reach the ssh/scp command line, and from where (docs/bench.md, "SSH options").

Three sources give ssh_config options (`Key=Value`, passed as `-o`), trusted differently:

- `--ssh-option` (`COMMAND_LINE`): the user typed it, so it may run a command
  (ProxyCommand, ...), but never turn host-key checking or BatchMode off.
- a target file the user named (`--targets-dir`) or a shipped one (`NAMED_FILE`): it may
  set `host` and options, but none that runs a command or loads code on this machine, nor
  reuses a connection another process opened (`EXECUTES`), nor opens a way between this
  machine and the board beyond the bench's own session (`FORWARDS`).
- a target file picked up from `./targets/` of the working directory (`WORKING_DIR`): a
  cloned repository may hold one, so it may not set `host` or `remote_edgeconv` at all, and
  only the options in `WORKING_DIR_OPTIONS`, which choose neither where the bench goes nor
  which host keys are trusted.

Whatever the source: BatchMode stays yes, StrictHostKeyChecking yes or accept-new,
NoHostAuthenticationForLocalhost no, UserKnownHostsFile names files that keep keys (never
none, an empty value, /dev/null or another device), and accept-new only with a
UserKnownHostsFile that can keep the key it learns (else every connection is a "first"
one). Standard library only; every message is one line.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass

from edgeconv.errors import EdgeconvError
from edgeconv.files import in_pseudo_fs

COMMAND_LINE, NAMED_FILE, WORKING_DIR = "--ssh-option", "named file", "working dir"

# ssh_config keywords that run a program or load code on this machine, or hand the session
# to a connection another process set up (a multiplexing socket skips every check).
EXECUTES: dict[str, str] = {
    **dict.fromkeys(("proxycommand", "proxyusefdpass", "localcommand", "permitlocalcommand",
                     "knownhostscommand", "remotecommand", "match", "include", "host",
                     "xauthlocation", "forwardx11", "forwardx11trusted", "enablesshkeysign"),
                    "runs a command on this machine"),
    **dict.fromkeys(("pkcs11provider", "smartcarddevice", "securitykeyprovider"),
                    "loads a library into ssh"),
    **dict.fromkeys(("controlpath", "controlmaster", "controlpersist"),
                    "reuses a connection another process opened, skipping its checks"),
}
# ssh_config keywords that open a channel past the bench's own commands: the board reaching
# this machine's SSH agent or ports, or this machine listening for the board (a target file
# names a board; it must not hand that board your keys or a way into your network).
FORWARDS: dict[str, str] = {
    "forwardagent": "hands the board your SSH agent",
    "sendenv": "sends this machine's environment variables to the board",
    **dict.fromkeys(("localforward", "remoteforward", "dynamicforward", "gatewayports",
                     "permitremoteopen", "tunnel", "tunneldevice"),
                    "forwards ports or a tunnel between this machine and the board"),
}
REFUSED_IN_FILES = {**EXECUTES, **FORWARDS}
# What a file found in ./targets/ may set: how to authenticate and how long to wait, never
# where to connect (HostName, Port, User, ProxyJump), which keys to trust, or what to run.
WORKING_DIR_OPTIONS = frozenset((
    "identityfile", "identitiesonly", "connecttimeout", "connectionattempts",
    "serveraliveinterval", "serveralivecountmax", "tcpkeepalive", "compression",
    "addressfamily", "ipqos", "loglevel"))
HOST_KEY_CHECKS = ("yes", "accept-new")  # accept-new still refuses a changed key
CONNECT_TIMEOUT_RANGE = (1, 3600)  # seconds, whole (what ssh's ConnectTimeout takes)
_HOST = re.compile(r"(?:([A-Za-z0-9_.+-]+)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)"
                   r"(?::([0-9]{1,5}))?")
_OPTION = re.compile(r"[ \t]*([A-Za-z][A-Za-z0-9]*)[ \t]*(?:=|[ \t])[ \t]*"
                     r"([^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*?)[ \t]*")


@dataclass(frozen=True)
class Destination:
    user: str | None
    host: str  # without brackets
    port: int | None


def check_host(text: object, where: str = "--host") -> Destination:
    """`[user@]host[:port]` (IPv6 as `[addr]:port`): ASCII letters, digits, `.`, `-`, `_`
    (and `+` in a user), never starting with `-`, port 1 to 65535."""
    match = _HOST.fullmatch(text) if isinstance(text, str) else None
    if not match or text.startswith("-") or match.group(2).startswith("-") \
            or (match.group(3) and not 1 <= int(match.group(3)) <= 65535):
        raise EdgeconvError(f"{where} {_quoted(text)} is not user@host or user@host:port"
                            " (letters, digits, . - _; port 1 to 65535)")
    user, host, port = match.groups()
    return Destination(user, host.strip("[]"), int(port) if port else None)


def split_option(option: object, where: str = COMMAND_LINE) -> tuple[str, str]:
    """(keyword, value) of one ssh_config option, `Key=Value` or `Key Value`, one line."""
    match = _OPTION.fullmatch(option) if isinstance(option, str) else None
    if not match:
        raise EdgeconvError(f"{where} {_quoted(option)} is not Key=Value (ssh_config syntax,"
                            " one line, e.g. IdentityFile=~/.ssh/pi)")
    return match.group(1), match.group(2)


def check_options(options: list[str] | tuple[str, ...], source: str, where: str
                  ) -> list[str]:
    """The options as `Key=Value`, each allowed from `source` (COMMAND_LINE, NAMED_FILE or
    WORKING_DIR); `where` names them in a message (`--ssh-option`, `FILE: ssh_options[2]`)."""
    checked = []
    for i, option in enumerate(options):
        here = where if source == COMMAND_LINE else f"{where}[{i}]"
        key, value = split_option(option, here)
        lower = key.lower()
        if source != COMMAND_LINE and lower in REFUSED_IN_FILES:
            raise EdgeconvError(
                f"{here} {_quoted(option)}: {key} {REFUSED_IN_FILES[lower]}; a target file may"
                " not set"
                f" it (pass --ssh-option {key}=... on the command line if you mean it)")
        if source == WORKING_DIR and lower not in WORKING_DIR_OPTIONS:
            raise EdgeconvError(
                f"{here} {_quoted(option)}: a target file picked up from ./targets/ may set only"
                f" {', '.join(sorted(WORKING_DIR_OPTIONS))}; name its folder with --targets-dir"
                " to use other options")
        _check_value(lower, key, value, f"{here} {_quoted(option)}")
        checked.append(f"{key}={value}")
    return checked


def _check_value(lower: str, key: str, value: str, here: str) -> None:
    if lower == "batchmode" and value.lower() != "yes":
        raise EdgeconvError(f"{here}: BatchMode stays yes (no prompt may hang a bench)")
    if lower == "stricthostkeychecking" and value.lower() not in HOST_KEY_CHECKS:
        raise EdgeconvError(f"{here}: host-key checking stays on"
                            f" ({' or '.join(HOST_KEY_CHECKS)})")
    if lower == "nohostauthenticationforlocalhost" and value.lower() != "no":
        raise EdgeconvError(f"{here}: host-key checking stays on, for localhost too")
    if lower == "userknownhostsfile":
        for path in _paths(value, here):
            if path.lower() == "none" or _device(path):
                raise EdgeconvError(f"{here}: host keys must be checked against a file that"
                                    " keeps them, not none or a device like /dev/null")
    if lower == "connecttimeout":
        low, high = CONNECT_TIMEOUT_RANGE
        if not value.isdigit() or not low <= int(value) <= high:
            raise EdgeconvError(f"{here}: ConnectTimeout must be a whole number of seconds"
                                f" from {low} to {high}")


def check_host_keys(options: list[str]) -> None:
    """The options ssh will use together (the first value of a key holds, as in ssh): with
    StrictHostKeyChecking=accept-new, the first UserKnownHostsFile must be able to keep the
    key it learns, or every connection would trust whatever key it is shown."""
    first: dict[str, str] = {}
    for option in options:
        key, value = split_option(option)
        first.setdefault(key.lower(), value)
    if first.get("stricthostkeychecking", "yes").lower() != "accept-new" \
            or "userknownhostsfile" not in first:
        return
    value = first["userknownhostsfile"]
    path = _paths(value, "UserKnownHostsFile")[0]
    problem = None
    if "%" in path or "${" in path:
        problem = "its name is expanded by ssh, so edgeconv cannot check it keeps keys"
    else:
        file = os.path.expanduser(path)
        folder = os.path.dirname(os.path.abspath(file))
        if os.path.exists(file) and not (os.path.isfile(file) and os.access(file, os.W_OK)):
            problem = "it is not a writable regular file"
        elif not os.path.exists(file) and not (os.path.isdir(folder)
                                               and os.access(folder, os.W_OK | os.X_OK)):
            problem = "its folder does not exist or cannot be written"
    if problem:
        raise EdgeconvError(
            f"ssh option UserKnownHostsFile={value} with StrictHostKeyChecking=accept-new:"
            f" {problem}, so a learned host key would not be kept and every connection would"
            " trust a new one; use StrictHostKeyChecking=yes or a known_hosts file that keeps"
            " keys")


def _paths(value: str, here: str) -> list[str]:
    try:
        paths = shlex.split(value)
    except ValueError:
        paths = []
    if not paths or any(not p for p in paths):
        raise EdgeconvError(f"{here}: host keys must be checked against a file that keeps"
                            " them; give its path")
    return paths


def _device(path: str) -> bool:
    if "%" in path or "${" in path:
        return False  # expanded by ssh; accept-new with it is refused in check_host_keys
    return in_pseudo_fs(os.path.expanduser(path))  # /dev, /proc, /sys keep no keys


def _quoted(text: object) -> str:
    """A user's value in a one-line message: repr when it holds a line break or the like."""
    if isinstance(text, str) and text.isprintable():
        return f"'{text}'"
    return repr(text)
