"""Which change a review reads, and reading it from git (through `mcode.vcs`, hardened as every read).

- `staged`: what `git commit` would take (the pre-commit hook's default);
- `base REF`: what the branch adds since it left REF (`git diff REF...HEAD`: pre-push, CI);
- `range A..B`: the commits between two revisions;
- `worktree`: every uncommitted change to some paths (or all), untracked files included: what the
  agent's own `git_commit` of those paths would take.

Changes under `.agentmemory/` are left out: they are mcode's own data (the blocks, their history,
the config), reviewed by the people who read them, not code to check against themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mcode.vcs as vcs
from mcode.fsio import is_reserved
from mcode.review.diff import FileDiff, added_file, parse_diff

MAX_UNTRACKED_BYTES = 1_000_000
# What git says when the revision the user gave is wrong: bad usage, not a failure.
_BAD_REF = ("unknown revision", "bad revision", "ambiguous argument", "looks like an option")


class ChangeError(Exception):
    """git cannot show the change; `usage` when the cause is what the user asked for (a ref)."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # "staged", "base", "range" or "worktree"
    ref: str = ""
    paths: tuple[str, ...] = ()

    @classmethod
    def staged(cls, paths: Sequence[str] = ()) -> Target:
        return cls("staged", "", tuple(paths))

    def describe(self) -> str:
        where = f" in {', '.join(self.paths)}" if self.paths else ""
        if self.kind == "base":
            return f"the changes since {self.ref}{where}"
        if self.kind == "range":
            return f"the changes in {self.ref}{where}"
        if self.kind == "worktree":
            return f"the uncommitted changes{where}"
        return f"the staged changes{where}"


def read_changes(root: Path, target: Target) -> list[FileDiff]:
    """The files `target` changes, as parsed diffs; ChangeError naming what git said."""
    if vcs.git_dir(root) is None:
        raise ChangeError(
            f"{root} is not a git repository: a review reads the change from git", usage=True
        )
    return [f for f in _read(root, target) if not is_reserved(f.name.split("/")[0])]


def _read(root: Path, target: Target) -> list[FileDiff]:
    try:
        if target.kind == "worktree":
            return _worktree(root, target.paths)
        if target.kind == "base":
            text = vcs.diff(root, *target.paths, rev=f"{target.ref}...HEAD")
        elif target.kind == "range":
            text = vcs.diff(root, *target.paths, rev=target.ref)
        else:
            text = vcs.diff(root, *target.paths, staged=True)
    except vcs.GitError as exc:
        message = str(exc)
        raise ChangeError(message, usage=any(s in message for s in _BAD_REF)) from None
    return parse_diff(text)


def _worktree(root: Path, paths: Sequence[str]) -> list[FileDiff]:
    changes = vcs.changes(root, *paths)
    untracked = [c.path for c in changes if c.status == "??"]
    tracked = [c.path for c in changes if c.status != "??"]
    files: list[FileDiff] = []
    if tracked:
        try:
            files = parse_diff(vcs.diff(root, *tracked, rev="HEAD"))
        except vcs.GitError:  # no commit yet: every file is new
            untracked += tracked
    for path in untracked:
        text = _read_new_file(root / path)
        if text is not None:
            files.append(added_file(path, text))
    return files


def _read_new_file(path: Path) -> str | None:
    """A new file's text; None for what a diff would not show as lines (binary, huge, a link)."""
    if path.is_symlink():
        return None
    try:
        if path.stat().st_size > MAX_UNTRACKED_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", "replace")
