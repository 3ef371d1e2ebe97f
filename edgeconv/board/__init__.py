"""Emulated boards: a Raspberry Pi 4 or 5 without the Pi.

An arm64 Debian root run under qemu user-mode emulation (binfmt_misc), with the runtime-only
edgeconv installed the way a user installs it on a Pi, and the root's own OpenSSH server on
a loopback port, so that `edgeconv bench --target rpi4 --host root@127.0.0.1:PORT` runs the
real SSH path against aarch64 code. What it proves and what it does not: docs/board.md.

    board = create("rpi4", progress)          # minutes the first time, seconds after
    with start("rpi4") as running:            # sshd on 127.0.0.1, a free port
        running.host, running.ssh_options, running.remote_edgeconv
    list_boards(); remove("rpi4")

Modules: spec (the board table), host (preconditions, the Debian mirror), root (mmdebstrap,
keys, venv, pip), wheel (this checkout's wheel), cache (folders, stamps, locks, list,
remove), make (create, load), namespace (running in the root), server (sshd).
"""

from __future__ import annotations

from edgeconv.board.cache import BoardInfo, boards_dir, list_boards
from edgeconv.board.make import Board, create, load, remove
from edgeconv.board.server import RunningBoard, in_board, start
from edgeconv.board.spec import BOARDS, BoardSpec, get_spec

__all__ = ["BOARDS", "Board", "BoardInfo", "BoardSpec", "RunningBoard", "boards_dir", "create",
           "get_spec", "in_board", "list_boards", "load", "remove", "start"]
