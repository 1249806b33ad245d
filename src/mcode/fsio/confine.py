"""What a cloned repository may make mcode read or write: its own files, never through a symlink.

Everything under a repository's `.agentmemory/` is untrusted input: anyone can commit a symlink there
(`blocks/notes.md -> ~/.bashrc`, `index/write.lock -> ~/anything`, or `.agentmemory` itself) and turn
a write "inside the repository" into a write anywhere. So a file under a `.agentmemory/` is checked
component by component from the repository down (none may be a symlink, none may be `..`) and opened
with O_NOFOLLOW, which also closes the gap at the last component. The repository is the directory
holding that `.agentmemory/`, so every write helper of `mcode.fsio` applies the rule on its own and
no caller has to remember it. Files elsewhere (the user's `~/.config/mcode/`) are the user's own: a
symlink there (blocks kept in a dotfiles repository) is followed as before.

Files the agent reads as instructions (AGENTS.md, CLAUDE.md…) may link to other files of the
repository; `inside` resolves them and refuses what lands outside it or in git's or mcode's own data.

`.git` and `.agentmemory` are recognised as a case-insensitive, normalising file system (macOS) sees
them: `.GIT/hooks` is `.git/hooks` there.
"""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from pathlib import Path

GIT_DIRNAME = ".git"
MEMORY_DIRNAME = ".agentmemory"
_RESERVED = frozenset({GIT_DIRNAME, MEMORY_DIRNAME})
# Code points HFS+ ignores in file names, so ".g\u200cit" is ".git" there (git's is_hfs_dotgit
# skips the same ones).
_HFS_IGNORED = dict.fromkeys(
    [*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)
REMOVE_LINK = "mcode never follows a symlink in a repository's .agentmemory: remove the link"


class UnsafePathError(OSError):
    """A repository path is, or passes through, a symlink, or leads outside the repository.

    An OSError, so that code which reports a failed read or write reports this one too; `strerror`
    says what is wrong and what to do, `str()` adds the path.
    """

    def __init__(self, path: Path | str, problem: str, fix: str = REMOVE_LINK) -> None:
        super().__init__(errno.ELOOP, f"{problem}; {fix}", os.fspath(path))

    def __str__(self) -> str:
        return f"{self.filename} {self.strerror}"


# Git's and mcode's own data --------------------------------------------------------------------------


def is_reserved(name: str) -> bool:
    """Whether a path component names git's or mcode's own data (`.git`, `.agentmemory`) on any
    file system: compared case-insensitively, NFKC-normalised, HFS+-ignored code points dropped."""
    if name.isascii():
        return name.lower() in _RESERVED
    folded = unicodedata.normalize("NFKC", name.translate(_HFS_IGNORED)).casefold()
    return unicodedata.normalize("NFKC", folded) in _RESERVED


def has_reserved_part(path: str) -> bool:
    """Whether any component of a repo-relative POSIX path is git's or mcode's own data."""
    if path.isascii():
        return not _RESERVED.isdisjoint(path.lower().split("/"))
    return any(is_reserved(part) for part in path.split("/"))


# Confinement --------------------------------------------------------------------------------------


def repository_of(path: Path) -> Path | None:
    """The repository whose `.agentmemory/` holds `path`; None for a file outside any (the user's)."""
    parts = path.parts
    for index in range(len(parts) - 1, -1, -1):
        if parts[index] == MEMORY_DIRNAME:
            return Path(*parts[:index]) if index else Path()
    return None


def confined(root: Path, path: Path, fix: str = REMOVE_LINK) -> Path:
    """`path`, once checked to lie under `root` with no symlink from `root` down to it (`root`
    itself is the user's choice and not checked). Components that do not exist yet are fine.

    Costs one lstat per existing component; UnsafePathError names the first offending one.
    """
    try:
        rel = path.relative_to(root)
    except ValueError:
        raise UnsafePathError(path, f"lies outside the repository {root}", fix) from None
    if ".." in rel.parts:
        raise UnsafePathError(path, f"leaves the repository {root}", fix)
    current = root
    for part in rel.parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except (FileNotFoundError, NotADirectoryError):
            break
        if stat.S_ISLNK(mode):
            problem = "is a symlink" if current == path else f"passes through the symlink {current}"
            raise UnsafePathError(path, problem, fix)
    return path


def check(path: Path, fix: str = REMOVE_LINK) -> Path:
    """`path`, confined to its repository when it lies under a `.agentmemory/`; else unchanged."""
    root = repository_of(path)
    return path if root is None else confined(root, path, fix)


def check_tree(directory: Path, fix: str = REMOVE_LINK) -> None:
    """Refuse a directory that is, passes through, or contains a symlink: for stores such as
    SQLite and LanceDB that open their own files and cannot be asked not to follow links.

    One scandir per directory; an entry's type comes with the listing, so no extra stat."""
    check(directory, fix)
    pending = [os.fspath(directory)]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_symlink():
                        raise UnsafePathError(entry.path, "is a symlink", fix)
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
        except (FileNotFoundError, NotADirectoryError):
            continue


def make_parents(path: Path) -> Path:
    """`path`, checked, with the directories it needs created (`mkdir -p` itself would pass
    through a symlinked directory without a word)."""
    check(path).parent.mkdir(parents=True, exist_ok=True)
    return path


def open_fd(path: Path, flags: int, mode: int = 0o666) -> int:
    """`os.open`, refusing in repository scope a path that is or passes through a symlink; the
    final component is opened with O_NOFOLLOW, so a link planted after the check is refused too."""
    root = repository_of(path)
    if root is not None:
        confined(root, path)
        flags |= os.O_NOFOLLOW
    try:
        return os.open(path, flags | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP and flags & os.O_NOFOLLOW:
            raise UnsafePathError(path, "is a symlink") from None
        raise


def read_bytes(path: Path) -> bytes:
    """A file's bytes, read as `open_fd` allows (FileNotFoundError when it is absent)."""
    fd = open_fd(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def inside(root: Path, path: Path) -> Path:
    """Where `path` really is, refused (UnsafePathError) when that lies outside `root` or in git's
    or mcode's own data: for project files that may be links to other files of the repository."""
    top = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([top, real]) != top:
        raise UnsafePathError(path, "leads outside the repository", "not read")
    if any(is_reserved(part) for part in Path(os.path.relpath(real, top)).parts):
        raise UnsafePathError(path, "leads into git's or mcode's own data", "not read")
    return Path(real)
