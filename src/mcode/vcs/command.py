"""Running git, through GitPython's command layer, so that a repository's own config runs nothing.

A repository can carry code in `.git/config` and `.git/hooks` when it comes as a tarball, a shared
directory or a copied disk rather than a clone. git runs some of it on commands that only look:
`core.fsmonitor` on status, diff, ls-files and add; the `post-index-change` hook when status
refreshes the index; a filter driver's `clean` command on every file whose stat changed (after
unpacking, every file); a diff driver's `textconv` or `command`; `gpg.program` when log shows
signatures; and a partial clone's lazy fetch through `core.sshCommand` or `remote.*.uploadpack`.
So every read mcode runs gets, on git's command line, which outranks every config file:

- `core.fsmonitor=false` and `core.hooksPath=/dev/null`;
- `protocol.allow=never` (and `GIT_NO_LAZY_FETCH=1` for gits that know it): mcode never needs the
  network to read;
- on reads that may hash working-tree files (status, diff), each filter driver the repository's
  config defines (its `.git/config`, `config.worktree`, or a file either includes) switched off, or
  given the user's own command when the user's config defines the same driver (`filter.lfs`); see
  `_filter_overrides`. Listings, logs, blobs and config lookups never run a driver, and skip the
  `git config` run that finds them;
- `--work-tree` set to the directory holding `.git` (`discovery.toplevel`), so `core.worktree`
  cannot point status or `add -A` at another directory.

The operations add the rest (`repo`): diffs pass `--no-ext-diff --no-textconv`, log passes
`--no-show-signature`, revisions that look like options are refused. git never gets a terminal,
an editor or a prompt (`GIT_PAGER=cat`, `GIT_EDITOR=true`, `GIT_TERMINAL_PROMPT=0`), so
`core.pager` and `core.editor` never run. The user's own config (identity, excludes file, their
filters and drivers) applies as it does to their own git.

A commit the user approved (`/commit MESSAGE`, the agent's `git_commit` after its prompt) runs as
their own `git commit` would, hooks, filters and signing included, with only `core.fsmonitor`
off and the work tree pinned: the mcode review hook and team pre-commit checks rely on it, and the
same approval already lets a shell command run anything. The file list that prompt shows comes
from hardened reads.

GitPython is used for what it has: starting git, collecting output, and killing git with its
children (hooks) on a timeout. Its object model is not used: the porcelain's exact output and
revision syntax are what the tools and the model expect, and its `Repo` follows `core.worktree`.
No `subprocess` here; repository discovery needs no process at all (`discovery`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from mcode.vcs.discovery import toplevel

READ_TIMEOUT = 120.0  # ls-files in a very large repository
COMMIT_TIMEOUT = 600.0  # commit hooks may run tests or a review
_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "GIT_EDITOR": "true",
}
_READ_ENV = {**_ENV, "GIT_NO_LAZY_FETCH": "1"}
_ALWAYS = ("-c", "core.fsmonitor=false")
_READ = (*_ALWAYS, "-c", "core.hooksPath=/dev/null", "-c", "protocol.allow=never")
_FILTER_COMMANDS = frozenset({"clean", "smudge", "process"})
# Reads that never pass working-tree content through a filter driver, so they need no overrides
# (and no `git config` run to find the drivers): the listing on every `mcode index` is one of them.
_UNFILTERED = frozenset({"rev-parse", "log", "cat-file", "config"})
_LS_FILES_HASHING = frozenset({"-m", "--modified", "-d", "--deleted", "-k", "--killed"})
_USER_SCOPES = frozenset({"system", "global", "command"})  # `command`: the user's own `-c`


class GitError(Exception):
    """git is missing, failed, or took too long; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class GitResult:
    code: int
    out: bytes
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace")

    @property
    def output(self) -> str:
        """What git and its hooks printed, stdout then stderr, trimmed."""
        return (self.text + self.err).strip()


def run(
    root: Path | str,
    *args: str,
    timeout: float = READ_TIMEOUT,
    check: bool = True,
    approved: bool = False,
) -> GitResult:
    """Run `git ARGS` in `root`, hardened for reading unless the user `approved` this very command
    (a commit). With `check`, a non-zero exit is a GitError carrying git's words."""
    root = Path(root)
    if approved:
        options, env = list(_ALWAYS), _ENV
    elif _unfiltered(args):
        options, env = list(_READ), _READ_ENV
    else:
        options, env = [*_READ, *_filter_overrides(root)], _READ_ENV
    top = toplevel(root.resolve())
    if top is not None:
        options.append(f"--work-tree={top}")
    result = _execute(root, options, args, timeout, env)
    if check and not result.ok:
        message = (result.err or result.text).strip()
        if "not a git repository" in message:
            raise GitError(f"{root} is not a git repository")
        raise GitError(f"git {args[0]} failed: {message}")
    return result


def _unfiltered(args: tuple[str, ...]) -> bool:
    """Whether git runs no filter driver for this read: it never hashes working-tree files."""
    if args[0] == "ls-files":
        return _LS_FILES_HASHING.isdisjoint(args[1:])
    return args[0] in _UNFILTERED


def _filter_overrides(root: Path) -> list[str]:
    """`-c` options switching off the filter drivers the repository's own config defines.

    A driver the user's config also defines keeps the user's value; `required` becomes false, or
    git would refuse the file. A driver name holding `=` cannot be written as `-c name=value`, so
    it stops the command instead of running.
    """
    query = ("config", "-z", "--show-scope", "--get-regexp", r"^filter\.")
    listing = _execute(root, list(_READ), query, READ_TIMEOUT, _READ_ENV)
    if listing.code == 1:
        return []  # no filter anywhere
    if not listing.ok:
        raise GitError(f"cannot read the repository's git config: {listing.err.strip()}")
    fields = listing.out.decode("utf-8", "surrogateescape").split("\0")
    users: dict[str, str] = {}
    repository: list[str] = []
    for scope, entry in zip(fields[::2], fields[1::2], strict=False):
        key, _, value = entry.partition("\n")
        if key.rpartition(".")[2] not in (*_FILTER_COMMANDS, "required"):
            continue
        if scope in _USER_SCOPES:
            users[key] = value
        else:
            repository.append(key)
    overrides = []
    for key in dict.fromkeys(repository):
        if "=" in key:
            raise GitError(
                f"the repository's git config defines a filter mcode cannot turn off: {key}"
            )
        neutral = "" if key.rpartition(".")[2] in _FILTER_COMMANDS else "false"
        overrides += ["-c", f"{key}={users.get(key, neutral)}"]
    return overrides


def _execute(
    root: Path, options: list[str], args: tuple[str, ...], timeout: float, env: dict[str, str]
) -> GitResult:
    gitpython = _gitpython()
    if not (root.is_dir() and os.access(root, os.X_OK)):
        # GitPython would quietly run git in the current directory instead.
        raise GitError(f"{root} is not a directory mcode can enter")
    command = [gitpython.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *options, *args]
    started = time.monotonic()
    try:
        code, out, err = gitpython.Git(str(root)).execute(
            command,
            with_extended_output=True,
            with_exceptions=False,
            stdout_as_string=False,
            strip_newline_in_stdout=False,
            kill_after_timeout=timeout,
            env=env,
        )
    except gitpython.GitCommandNotFound:
        raise GitError("git is not installed") from None
    if code != 0 and time.monotonic() - started >= timeout:
        raise GitError(f"git {args[0]} took longer than {timeout:g} s and was stopped")
    return GitResult(code, out, err.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


def _gitpython() -> ModuleType:
    """GitPython, imported on first use: `mcode --help` and repository discovery never pay for it.
    Its import runs `git version` and fails without a git executable."""
    try:
        import git
    except ImportError:
        raise GitError("git is not installed") from None
    return git
