"""Per-turn checkpoints: what the files a turn changed looked like before it, to put them back.

The agent gives each turn a fresh `TurnCheckpoint` as the context's recorder; the file tools report
every file before they change it, and only the first report per file counts, so a file edited three
times in a turn goes back to how it was when the turn began. Changes made by shell commands are not
seen, and files the turn did not touch are never written.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from mcode.tools.paths import atomic_write


class TurnCheckpoint:
    """A `FileChangeRecorder` that can undo the turn's file changes."""

    def __init__(self) -> None:
        self._previous: dict[Path, bytes | None] = {}

    def before_write(self, path: Path, previous: bytes | None) -> None:
        self._previous.setdefault(Path(os.path.abspath(path)), previous)

    @property
    def paths(self) -> list[Path]:
        """The files changed in this turn, in the order they were first changed."""
        return list(self._previous)

    def __len__(self) -> int:
        return len(self._previous)

    def previous(self, path: Path) -> bytes | None:
        """The content `path` had before the turn (None: it did not exist); KeyError if untouched."""
        return self._previous[Path(os.path.abspath(path))]

    def restore(self) -> list[Path]:
        """Put every changed file back as it was; files the turn created are deleted.

        Returns the paths restored. Directories the turn created are left in place.
        """
        for path, previous in self._previous.items():
            if previous is None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            else:
                atomic_write(path, previous)
        restored = list(self._previous)
        self._previous.clear()
        return restored
