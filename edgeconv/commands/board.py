"""`edgeconv board create|list|remove|start`: emulated aarch64 boards (edgeconv.board)."""

from __future__ import annotations

import json as jsonlib
import shlex
import signal
import sys
from typing import Annotated

import typer

from edgeconv import render
from edgeconv.commands._options import JsonFlag
from edgeconv.errors import EdgeconvError

app = typer.Typer(
    name="board", no_args_is_help=True, add_completion=False,
    help="Emulated Raspberry Pi boards (rpi4, rpi5): an arm64 Debian root under qemu user mode"
         " with the runtime-only edgeconv and an SSH server on 127.0.0.1 (docs/board.md).")

Name = Annotated[str, typer.Argument(metavar="NAME", help="The board: rpi4 (Cortex-A72) or"
                                                           " rpi5 (Cortex-A76).")]


@app.command()
def create(name: Name, json: JsonFlag = False) -> None:
    """Make the board in the user's cache (as root; ~4 min the first time), or reuse it."""
    from edgeconv.board import create as make_board
    from edgeconv.commands._progress import RichProgress

    with RichProgress(render.stderr_console()) as progress:
        board = make_board(name, progress)
    if json:
        render.print_json(board.to_dict())
        return
    packages = ", ".join(f"{k} {v}" for k, v in sorted(board.packages.items()))
    typer.echo(f"board {board.name} {board.action} in {board.seconds:.0f} s: {board.cpu}"
               f" (QEMU_CPU={board.qemu_cpu}), edgeconv {board.edgeconv}, Python"
               f" {board.python}, {packages}; {render.nbytes(board.size_bytes)} in {board.path}")
    typer.echo(f"next: edgeconv board start {board.name}")


@app.command("list")
def list_boards(json: JsonFlag = False) -> None:
    """The boards in the cache: CPU, state, size on disk, when made, edgeconv inside."""
    from edgeconv.board import boards_dir
    from edgeconv.board import list_boards as listed

    boards = listed()
    if json:
        render.print_json({"boards_dir": str(boards_dir()),
                           "boards": [b.to_dict() for b in boards]})
        return
    rows = [[b.name, b.cpu or "", b.state, render.nbytes(b.size_bytes), b.created or "",
             b.edgeconv or "", b.note] for b in boards]
    console = render.stdout_console()
    console.print(render.table(f"boards in {boards_dir()}",
                               ["board", "cpu", "state", "size", "created", "edgeconv", "note"],
                               rows, right={"size"}))
    if not boards:
        console.print("none yet: edgeconv board create rpi4", highlight=False, markup=False)


@app.command()
def remove(name: Name) -> None:
    """Delete the board from the cache (refused while it runs)."""
    from edgeconv.board import remove as remove_board

    removed = remove_board(name)
    typer.echo(f"removed {', '.join(removed)}" if removed else f"board {name}: nothing to remove")


@app.command()
def start(
    name: Name,
    port: Annotated[int | None, typer.Option(
        help="Port on 127.0.0.1 (default: a free one).", min=1, max=65535,
        show_default=False)] = None,
    json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON line (host, ssh_options, remote_edgeconv, ...) once the"
                       " board answers.")] = False,
) -> None:
    """Run the board's SSH server until Ctrl-C, and print how to bench on it."""
    from edgeconv.board import start as start_board

    running = start_board(name, port)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops it as Ctrl-C does
    try:
        if json:
            sys.stdout.write(jsonlib.dumps(running.to_dict()) + "\n")
        else:
            typer.echo(f"board {running.board.name} ({running.cpu}, emulated: timings are not"
                       f" a board's) answers on {running.host}; Ctrl-C stops it")
            typer.echo("edgeconv bench RUN " + shlex.join(running.bench_args()))
            typer.echo("ssh " + shlex.join(running.ssh_args("uname -m")[1:]))
        sys.stdout.flush()
        status = running.wait()
        raise EdgeconvError(f"board {name}: sshd exited ({status}): {running.log_tail()}")
    except KeyboardInterrupt:
        typer.echo(f"board {name} stopped", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        running.stop()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
