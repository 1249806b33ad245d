"""Where the repository is, found by looking for `.git` without running git.

Every command but `--help` starts here, so this costs a few `stat` calls: no process, and no
GitPython, whose import takes 80-100 ms (measured; about 50 ms more once mcode's own imports are
in). GitPython's face for it, `Repo(search_parent_directories=True)`, is that import plus the same
walk. Unlike `git rev-parse --show-toplevel`, the walk does not read `core.worktree`: a repository
someone else prepared cannot move mcode's root (and with it the agent's write confinement) to the
user's home directory.
"""

from __future__ import annotations

from pathlib import Path

GITFILE_PREFIX = "gitdir:"


class RepoNotFoundError(Exception):
    """The path given as the repository does not exist or is not a directory."""


def find_repo_root(start: Path | None = None, explicit: Path | None = None) -> Path:
    """The repository to work on: `explicit` if given, else the git top level of `start`, else `start`."""
    if explicit is not None:
        path = explicit.expanduser()
        if not path.exists():
            raise RepoNotFoundError(f"repository path does not exist: {path}")
        if not path.is_dir():
            raise RepoNotFoundError(f"repository path is not a directory: {path}")
        return path.resolve()
    start = (start or Path.cwd()).resolve()
    return toplevel(start) or start


def toplevel(start: Path) -> Path | None:
    """The work tree holding `start`: the nearest directory at or above it with a `.git` that is a
    git directory or a gitfile pointing at one (worktrees, submodules). As git does, a `.git`
    directory that is not a repository is passed over, and a broken gitfile ends the search."""
    for directory in (start, *start.parents):
        dot_git = directory / ".git"
        if git_dir(directory) is not None:
            return directory
        if dot_git.exists() and not dot_git.is_dir():
            return None
    return None


def git_dir(root: Path) -> Path | None:
    """The git directory behind `root/.git`: that directory, or where its gitfile points."""
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git if _is_git_dir(dot_git) else None
    try:
        text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if not text.startswith(GITFILE_PREFIX):
        return None
    target = (root / text[len(GITFILE_PREFIX) :].strip()).resolve()
    return target if _is_git_dir(target) else None


def common_dir(root: Path) -> Path | None:
    """Where a work tree's shared git files live (`info/exclude` among them): a linked worktree's
    git directory names it in `commondir`; otherwise it is the git directory itself."""
    gitdir = git_dir(root)
    if gitdir is None:
        return None
    try:
        common = (gitdir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return gitdir
    return (gitdir / common).resolve()


def _is_git_dir(path: Path) -> bool:
    """git's own test, loosely: a HEAD, and objects and refs here or in a common directory."""
    if not (path / "HEAD").is_file():
        return False
    return (path / "commondir").is_file() or (
        (path / "objects").is_dir() and (path / "refs").is_dir()
    )
