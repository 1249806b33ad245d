"""The command line: `mcode` and its subcommands."""

from mcode.cli.app import app, main

__all__ = ["app", "main"]
