"""Where the coding tools may look and write: inside the repository, and nowhere else.

A path from the model is taken relative to the repository root (an absolute path must lie inside
it). It is refused when `..` climbs out, when a symlink on the way leads out of the repository, and,
for writes, when it points into git's own database. Writes are atomic: a reader sees the old file or
the new one, never half of each.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from mcode.fsio import atomic_write_bytes, has_reserved_part, is_reserved
from mcode.index.ignore import MCODEIGNORE, IgnoreRules, read_spec, walk
from mcode.tools.base import ToolError
from mcode.vcs import work_tree_files


@dataclass(frozen=True, slots=True)
class RepoPath:
    """A path checked to be inside the repository."""

    path: Path  # absolute, symlinks resolved: what is really read or written
    rel: str  # repo-relative POSIX path as the model named it ("." for the root)
    real_rel: str  # repo-relative POSIX path of `path`; differs from `rel` through a symlink


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _rel(path: str, root: str) -> str:
    rel = os.path.relpath(path, root)
    return "." if rel == "." else rel.replace(os.sep, "/")


def resolve(root: Path, name: str, *, write: bool = False) -> RepoPath:
    """Check a path the model gave; a ToolError says why it is refused."""
    if not name or not name.strip():
        raise ToolError("path must not be empty")
    if "\0" in name:
        raise ToolError("path contains a NUL character")
    root_s = os.path.realpath(root)
    given = os.path.expanduser(name.strip())
    lexical = os.path.normpath(os.path.join(root_s, given))
    if not _inside(lexical, root_s):
        raise ToolError(
            f"{name} is outside the repository ({root_s}); the tools only work on paths inside it"
        )
    real = os.path.realpath(lexical)
    rel = _rel(lexical, root_s)
    if not _inside(real, root_s):
        raise ToolError(
            f"{rel} is a symlink (or lies under one) that leads outside the repository, to "
            f"{real}; refused"
        )
    real_rel = _rel(real, root_s)
    # Case-insensitively: on macOS `.GIT/hooks/pre-commit` is git's own hook.
    if write and any(map(is_reserved, real_rel.split("/")[:-1] + rel.split("/"))):
        raise ToolError(
            f"{rel} is inside git's or mcode's own data (.git, .agentmemory); the file tools do "
            "not write there. Change memory blocks with the memory tools."
        )
    return RepoPath(Path(real), rel, real_rel)


def read_bytes(path: Path) -> bytes | None:
    """A regular file's bytes, None when it does not exist; never blocks on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ToolError(f"cannot read {path.name}: {exc.strerror}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ToolError(f"{path.name} is not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` via a temp file and a rename, keeping an existing file's mode."""
    atomic_write_bytes(path, data)


def repo_files(root: Path) -> list[str]:
    """Every file the tools see, repo-relative and sorted: git's tracked and untracked files
    minus ignored ones (or the same rules applied by a walk outside git), minus `.mcodeignore`."""
    root_s = os.path.realpath(root)
    mcodeignore = read_spec(os.path.join(root_s, MCODEIGNORE))
    listed = work_tree_files(root_s)
    if listed is None:
        rules = IgnoreRules(mcodeignore=mcodeignore)
        listed = [f for found in walk(Path(root_s), rules) for f in found.files]
    elif mcodeignore is not None:
        listed = [p for p in listed if not mcodeignore.match_file(p)]
    kept = {p for p in listed if not has_reserved_part(p)}
    return sorted(p for p in kept if os.path.lexists(os.path.join(root_s, p)))
