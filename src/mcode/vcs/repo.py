"""What mcode asks git: the files it lists, what changed, diffs, history, blobs, and commits.

Each function takes the directory git runs in (the repository root, or a directory inside it) and
runs hardened git through `command.run`. Failures are `GitError`s unless a function says it
answers None or an empty list instead; paths come back relative to that directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from mcode.vcs.command import COMMIT_TIMEOUT, GitError, GitResult, run

# The prefixes whatever the user's diff.noprefix or diff.mnemonicPrefix say: the review parses them.
_DIFF = (
    "diff",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)


class Change(NamedTuple):
    """One changed file as `git status --porcelain` names it: two status letters and a path."""

    status: str
    path: str


def work_tree_files(root: Path | str) -> list[str] | None:
    """Tracked plus untracked-not-ignored files, or None when `root` is not in a git work tree or
    git cannot run (callers then walk the tree themselves)."""
    try:
        result = run(
            root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", check=False
        )
    except GitError:
        return None
    if not result.ok:
        return None
    names = os.fsdecode(result.out).split("\0")
    # A conflicted file appears once per stage; an untracked nested repository ends with "/".
    return [n for n in dict.fromkeys(names) if n and not n.endswith("/")]


def untracked_files(root: Path | str) -> list[str]:
    """Files git does not track and does not ignore."""
    result = run(root, "ls-files", "-z", "--others", "--exclude-standard")
    return [n for n in os.fsdecode(result.out).split("\0") if n]


def status_summary(root: Path | str) -> str:
    """`git status --short --branch`, untracked files listed one by one."""
    return run(root, "status", "--short", "--branch", "--untracked-files=all").text


def changes(root: Path | str, *pathspec: str) -> list[Change]:
    """Every change `git add -A` would stage (untracked files included), within `pathspec`."""
    out = run(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *pathspec)
    entries = out.text.split("\0")
    found = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        if status[0] in "RC":
            index += 1  # the rename's source follows
        found.append(Change(status, path))
    return found


def staged_changes(root: Path | str) -> list[Change]:
    """What a plain `git commit` would take, as `changes` names it ("M ", "A ", …)."""
    parts = [p for p in run(root, "diff", "--cached", "--name-status", "-z").text.split("\0") if p]
    found = []
    index = 0
    while index < len(parts):
        status = parts[index]
        step = 3 if status[:1] in "RC" else 2
        found.append(Change(status[:1] + " ", parts[index + step - 1]))
        index += step
    return found


def diff(root: Path | str, *pathspec: str, staged: bool = False, rev: str | None = None) -> str:
    """The unified diff of the work tree (or the index with `staged`) against the index (or `rev`),
    as text changes: no external diff program and no textconv filter runs."""
    return run(root, *_diff_args(staged, rev), "--", *pathspec).text


def diff_names(
    root: Path | str, *pathspec: str, staged: bool = False, rev: str | None = None
) -> list[str]:
    """The files `diff` with the same arguments would show, relative to `root`."""
    out = run(root, *_diff_args(staged, rev), "--name-only", "--relative", "-z", "--", *pathspec)
    return [n for n in out.text.split("\0") if n]


def _diff_args(staged: bool, rev: str | None) -> list[str]:
    args = [*_DIFF]
    if staged:
        args.append("--cached")
    if rev is not None:
        args.append(_revision(rev))
    return args


def commit(
    root: Path | str,
    message: str,
    *pathspec: str,
    add_all: bool = False,
    tracked: bool = False,
    timeout: float = COMMIT_TIMEOUT,
) -> GitResult:
    """Commit what is staged; with `add_all`, first stage every change (within `pathspec`, when
    given, which the commit is then limited to); with `tracked`, every change to tracked files
    (`commit -a`). Only for a commit the user approved: hooks run (see `command`). A failed
    `add` is a GitError; a refused commit is the result, with the hooks' words in `output`."""
    if add_all:
        run(root, "add", "-A", "--", *pathspec, approved=True)
    args = ["commit", "-m", message]
    if tracked:
        args.append("-a")
    if pathspec:
        args += ["--", *pathspec]
    return run(root, *args, timeout=timeout, check=False, approved=True)


def current_branch(root: Path | str) -> str | None:
    """The checked-out branch ("HEAD" when detached); None outside git or before the first commit."""
    try:
        result = run(root, "rev-parse", "--abbrev-ref", "HEAD", check=False)
    except GitError:
        return None
    return (result.text.strip() or None) if result.ok else None


def recent_subjects(root: Path | str, count: int) -> list[str]:
    """The subjects of the last `count` commits that are not merges, newest first; none without
    history or git."""
    try:
        result = run(
            root,
            "log",
            "--no-show-signature",
            "-n",
            str(count),
            "--no-merges",
            "--format=%s",
            check=False,
        )
    except GitError:
        return []
    return [s.strip() for s in result.text.splitlines() if s.strip()] if result.ok else []


def blob(root: Path | str, rev: str, path: str) -> bytes | None:
    """The bytes of `path` (relative to the top level) as committed in `rev`; None when `rev` has
    no such file. No filter or textconv applies: the bytes are git's."""
    result = run(root, "cat-file", "blob", f"{_revision(rev)}:{path}", check=False)
    return result.out if result.ok else None


def config_value(root: Path | str, key: str, *, path: bool = False) -> str | None:
    """The value git uses for `key` in `root` (with `path`, `~` expanded); None when unset or
    unreadable. A GitError only when git cannot run."""
    result = run(root, "config", *(["--path"] if path else []), "--get", key, check=False)
    return (result.text.strip() or None) if result.ok else None


def _revision(rev: str) -> str:
    """A revision git cannot read as an option (`--output=…` would write a file)."""
    if rev.startswith("-"):
        raise GitError(f"ref {rev!r} looks like an option; give a commit, branch or tag")
    return rev
