"""The interactive terminal UI: `run_repl` is what plain `mcode` runs."""

from __future__ import annotations

from mcode.repl.app import run_repl

__all__ = ["run_repl"]
