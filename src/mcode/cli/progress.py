"""Progress for long work, drawn on stderr only when it is a terminal (scripts get clean output)."""

from __future__ import annotations

import sys
from typing import Any


class TerminalProgress:
    """Adapts the indexer's Progress protocol to a rich progress bar."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description:>8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task: Any = None

    def _say(self, stage: str, total: int) -> None:
        """Vectors are the long part of a first index: say that the wait is optional."""
        if stage == "embed":
            self._progress.console.print(
                f"the index is searchable by words now; vectors for {total:,} chunks follow "
                "(Ctrl-C keeps the ones done, and `mcode index`, `mcode` or `mcode watch` go on)",
                highlight=False,
                soft_wrap=True,
            )

    def start(self, stage: str, total: int) -> None:
        if total <= 0:
            return
        if self._task is None:
            self._progress.start()
        else:
            self._progress.remove_task(self._task)
        self._say(stage, total)
        self._task = self._progress.add_task(stage, total=total)

    def advance(self, count: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, count)

    def finish(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
            self._progress.stop()


def progress_for_terminal() -> TerminalProgress | None:
    return TerminalProgress() if sys.stderr.isatty() else None
