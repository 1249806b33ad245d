"""Per-turn checkpoints: what the files a turn changed held before it and after it, to undo the turn
without destroying what the user did since.

The agent gives each turn a fresh `TurnCheckpoint` as the context's recorder; the file tools report
every file before they change it, and only the first report per file counts, so a file edited three
times in a turn goes back to how it was when the turn began. When the turn ends (done, failed or
interrupted) the session seals the checkpoint: it reads what each of those files holds then, which
is what the turn left, a later shell command's changes in the same turn included. Files that only
a shell command touched are not tracked, and files the turn did not touch are never written.

Undo puts a file back only if it still holds exactly what the turn left. A file the user changed
since keeps the user's version: the reverse of the turn's change is merged on top of it when the
two touch separate lines (`merge.merge3`); otherwise the file is left alone and the turn's change
comes back as a diff, to revert by hand. A file the turn created that the user changed since is
kept, and one the user deleted since stays deleted: bringing back the turn's "before" would
resurrect what the user chose to remove.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mcode.fsio import remove_file
from mcode.tools.base import ToolError
from mcode.tools.files import unified_diff
from mcode.tools.merge import merge3
from mcode.tools.paths import atomic_write, read_bytes

UndoOutcome = Literal[
    "restored",  # held what the turn left: back as it was before the turn
    "removed",  # created by the turn and untouched since: deleted
    "unchanged",  # already as it was before the turn: nothing to do
    "merged",  # changed by the user since: the turn's change reversed on top of the user's edits
    "conflict",  # the user's edits overlap the turn's change: left alone, `diff` shows the change
    "kept",  # created (or deleted) by the turn, the user's own file since: left alone
    "deleted",  # deleted by the user since the turn: left deleted
    "failed",  # could not be read or written: left alone, `reason` says why
]
_UNREADABLE = "it could not be read when the turn ended"


@dataclass(frozen=True, slots=True)
class FileUndo:
    """What undo did to one file. `diff` is the turn's change, for the user to revert by hand
    where undo could not ("conflict")."""

    path: str  # relative to the root given to `TurnCheckpoint.undo`, POSIX separators
    outcome: UndoOutcome
    diff: str = ""
    reason: str = ""

    @property
    def reverted(self) -> bool:
        """Whether the file is now free of the turn's change (otherwise it is as the user had it)."""
        return self.outcome in ("restored", "removed", "merged", "unchanged")

    def describe(self) -> str:
        """One line for the user."""
        return f"{self.path}: {_DESCRIPTIONS[self.outcome].format(reason=self.reason)}"


_DESCRIPTIONS: dict[str, str] = {
    "restored": "restored as it was before the turn.",
    "removed": "removed (the turn created it).",
    "unchanged": "already as it was before the turn.",
    "merged": "you edited it since: your edits are kept, the turn's change is reversed.",
    "conflict": "you edited it since, overlapping the turn's change: left as it is. "
    "Revert the turn's change by hand:",
    "kept": "{reason}: kept as it is.",
    "deleted": "you deleted it since the turn: left deleted.",
    "failed": "{reason}: left as it is.",
}


class TurnCheckpoint:
    """A `FileChangeRecorder` that can undo the turn's file changes once sealed."""

    def __init__(self) -> None:
        self._previous: dict[Path, bytes | None] = {}
        self._left: dict[Path, bytes | None] | None = None  # what the turn left, once sealed

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

    def seal(self) -> None:
        """Record what each changed file holds now, as what the turn left; call when it ends.

        A file that cannot be read then is left out, and undo leaves it alone."""
        self._left = {}
        for path in self._previous:
            with contextlib.suppress(ToolError, OSError):
                self._left[path] = read_bytes(path)

    def undo(self, root: Path) -> list[FileUndo]:
        """Undo the turn's changes where that loses none of the user's later work (see the module
        docstring); one `FileUndo` per changed file, named relative to `root`.

        The checkpoint is empty afterwards. Directories the turn created are left in place.
        """
        if self._left is None:
            raise RuntimeError("seal() the checkpoint when its turn ends, before undoing it")
        real_root = os.path.realpath(root)
        results = [
            _undo_file(path, _label(path, real_root), self._previous[path], self._left[path])
            if path in self._left
            else FileUndo(_label(path, real_root), "failed", reason=_UNREADABLE)
            for path in self._previous
        ]
        self._previous.clear()
        self._left = {}
        return results


def _label(path: Path, real_root: str) -> str:
    return os.path.relpath(path, real_root).replace(os.sep, "/")


def _undo_file(path: Path, label: str, before: bytes | None, left: bytes | None) -> FileUndo:
    if os.path.realpath(path) != str(path):
        return FileUndo(label, "failed", reason="it now leads through a symlink")
    try:
        now = read_bytes(path)
    except (ToolError, OSError) as exc:
        return FileUndo(label, "failed", reason=str(exc))
    if now == before:
        return FileUndo(label, "unchanged")
    try:
        if now == left:
            if before is None:
                remove_file(path)
                return FileUndo(label, "removed")
            atomic_write(path, before)
            return FileUndo(label, "restored")
        if now is None:
            return FileUndo(label, "deleted")
        if left == before or before is None or left is None:
            return FileUndo(label, "kept", reason=_kept_because(before, left))
        merged = merge3(left, now, before)
        if merged is None:
            return FileUndo(label, "conflict", diff=_change(label, before, left))
        atomic_write(path, merged)
        return FileUndo(label, "merged")
    except OSError as exc:
        return FileUndo(label, "failed", reason=f"could not write it: {exc.strerror or exc}")


def _kept_because(before: bytes | None, left: bytes | None) -> str:
    if before is None:
        return "the turn created it and you edited it since"
    if left is None:
        return "the turn deleted it and you created it again"
    return "the turn left it as it was and you edited it since"


def _change(label: str, before: bytes, after: bytes) -> str:
    """The turn's change as a unified diff; a binary file only says that it changed."""
    if b"\0" in before or b"\0" in after:
        return f"Binary files a/{label} and b/{label} differ\n"
    return unified_diff(label, before, after)
