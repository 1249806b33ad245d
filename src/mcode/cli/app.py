"""The `mcode` command line. Commands parse arguments and delegate; nothing heavy is imported here."""

from __future__ import annotations

import typer

from mcode import __version__
from mcode.cli import archive_cmds
from mcode.cli.memory_cmd import memory_app

app = typer.Typer(
    name="mcode",
    help="A memory-first coding agent for the terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mcode {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """A memory-first coding agent for the terminal."""


app.command("index")(archive_cmds.index)
app.command("search")(archive_cmds.search)
app.command("map")(archive_cmds.repo_map)
app.command("watch")(archive_cmds.watch)
app.add_typer(memory_app, name="memory")


def main() -> None:
    app()
