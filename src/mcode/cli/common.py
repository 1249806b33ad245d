"""What every command shares: resolving the repository and settings, and failing with one clear line.

Exit codes are the contract in README.md: 0 ok, 1 the work failed, 2 bad usage or input.
"""

from __future__ import annotations

import json
import os
import select
import stat
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer

from mcode.config import ConfigError, Paths, Settings, load_settings
from mcode.config.trust import untrusted_notice
from mcode.vcs import RepoNotFoundError, find_repo_root

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # as a shell reports SIGINT

REPO_OPTION_HELP = "Repository to work on (default: the git top level of the current directory)."


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print a one-line reason on stderr and exit with `code`."""
    first_line = " ".join(message.strip().splitlines()) or "failed"
    sys.stderr.write(f"mcode: {first_line}\n")
    raise typer.Exit(code)


def resolve_paths(repo: Path | None) -> Paths:
    try:
        root = find_repo_root(explicit=repo)
    except RepoNotFoundError as exc:
        fail(str(exc), EXIT_USAGE)
    return Paths.for_repo(root)


def resolve_settings(repo: Path | None, **overrides: Any) -> Settings:
    """The settings in force; in a repository the user has not trusted, one line on stderr names
    the project settings that were ignored and how to trust them."""
    settings = load_repo_settings(repo, **overrides)
    announce_untrusted(settings)
    return settings


def load_repo_settings(repo: Path | None, **overrides: Any) -> Settings:
    """The settings in force, saying nothing about trust (for callers that ask or report it)."""
    paths = resolve_paths(repo)
    try:
        return load_settings(paths, overrides=overrides)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)


def announce_untrusted(settings: Settings) -> None:
    """One line on stderr when the repository's settings that need trust were ignored."""
    if settings.trust.ignored:
        sys.stderr.write(f"mcode: {untrusted_notice(settings.trust.ignored)}\n")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def read_text_argument(value: str) -> str:
    """`-` means: read the text from standard input."""
    if value == "-":
        return sys.stdin.read()
    return value


def piped_stdin(wait: float) -> str | None:
    """What is piped or redirected into standard input (`echo X | mcode -p ...`): "" for a
    terminal, /dev/null, or anything else that is not a pipe or a file; None when a pipe stays
    silent for `wait` seconds (a parent that left its own stdin open, and never writes to it)."""
    stream = sys.stdin
    if stream is None or stream.isatty():
        return ""
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError):
        return stream.read()  # an in-memory stream (a test's runner)
    if stat.S_ISREG(mode):
        return stream.read()
    if not stat.S_ISFIFO(mode):
        return ""
    if not select.select([fd], [], [], wait)[0]:
        return None
    return stream.read()
