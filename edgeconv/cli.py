"""The `edgeconv` command line. Thin: parse, call the library, render.

Nothing heavy is imported at module level: `edgeconv --help` must stay fast and a device
install (no TensorFlow) must still run the commands it has the runtimes for.
"""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperGroup

from edgeconv import __version__
from edgeconv.commands import bench, data, export, gate, report, train, zoo
from edgeconv.errors import EdgeconvError


class _Group(TyperGroup):
    """Turns the errors a user can cause into one line on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgeconvError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
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
app.command()(gate.gate)
app.command()(report.report)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
