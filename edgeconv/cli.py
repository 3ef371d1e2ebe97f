"""The `edgeconv` command line. Thin: parse, call the library, render.

Nothing heavy is imported at module level: `edgeconv --help` must stay fast and a device
install (no TensorFlow) must still run the commands it has the runtimes for.
"""

from __future__ import annotations

import re
from typing import Annotated, NoReturn

import typer
from typer.core import TyperGroup

from edgeconv import __version__
from edgeconv.commands import bench, board, data, export, fit, gate, mcu, report, train, zoo
from edgeconv.errors import EdgeconvError

try:  # recent Typer carries its own copy of Click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older Typer depends on Click itself
    from click.exceptions import UsageError


def escape_controls(message: str) -> str:
    """`message` with every line break or control character written as an escape (`\\n`):
    a name the user typed may hold one, and an error is one line whatever it quotes."""
    return "".join(c if c.isprintable() or c == " " else ascii(c)[1:-1] for c in message)


def fail(message: str) -> NoReturn:
    """The one place errors are printed: `error: ...` as one line on stderr, exit 2."""
    typer.echo(f"error: {escape_controls(message)}", err=True)
    raise typer.Exit(2)


def _usage(exc: UsageError) -> str:
    """Click's usage error (bad value, missing argument, unknown command or option) as the
    text of one `error:` line, with its suggestion and where to find help, instead of the
    usage box."""
    message = exc.format_message()
    possible = getattr(exc, "possibilities", None)  # NoSuchOption: close option names
    if possible:
        message = f"{exc.message}; did you mean {' or '.join(sorted(possible))}?"
    message = re.sub(r"\.\s+Did you mean", "; did you mean", message.strip()).rstrip(".")
    if message[:1].isupper() and message[1:2].islower():  # "Invalid value": as ours read
        message = message[0].lower() + message[1:]
    if exc.ctx is not None:
        message += f" (see '{exc.ctx.command_path} --help')"
    return message


def _usage_error(exc: UsageError) -> NoReturn:
    if type(exc).__name__ == "NoArgsIsHelpError":  # bare `edgeconv` or `edgeconv board`:
        raise exc  # the help, as Click shows it
    fail(_usage(exc))


class _Group(TyperGroup):
    """Turns the errors a user can cause into one line on stderr and exit code 2: ours
    (EdgeconvError) and Click's usage errors, from parsing the group's own options
    (`make_context`) or the command and its parameters (inside `invoke`)."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as exc:
            _usage_error(exc)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgeconvError as exc:
            fail(str(exc))
        except UsageError as exc:  # the command's name, options and arguments
            _usage_error(exc)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Group,
    name="edgeconv",
    help="Compact CNNs from definition to a measured deployment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold credentials (SSH targets)
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgeconv {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Compact CNNs from definition to a measured deployment."""


app.command()(zoo.models)
app.command()(zoo.inspect)
app.command()(zoo.compare)
app.command()(data.data)
app.command()(train.train)
app.command()(export.export)
app.command("quant-report")(export.quant_report)
app.command()(bench.bench)
app.command()(bench.targets)
app.command()(fit.fit)
app.command()(gate.gate)
app.command()(report.report)
app.add_typer(board.app, name="board")
app.add_typer(mcu.app, name="mcu")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
