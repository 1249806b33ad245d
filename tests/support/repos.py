"""Real repositories and real `mcode` processes for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcode.config import Paths, Settings
from mcode.index.pipeline import Indexer, open_index

if TYPE_CHECKING:
    import pytest

    from mcode.embed import Embedder

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def use_git_identity(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """git run by the code under test inherits the environment: give it an identity, and a user
    config of its own (`home/gitconfig`) instead of the developer's and the system's."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def make_repo(root: Path, files: dict[str, str], *, commit: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    write_files(root, files)
    if commit and files:
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "initial")
    return root


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def plant_git_traps(repo: Path, marker: Path, elsewhere: Path) -> None:
    """Make `repo` one a stranger prepared and shipped with its `.git` (a tarball, not a clone):
    every command its git config and hooks can make git run appends its role (`fsmonitor`,
    `clean`, `pre-commit`, ...) to `marker`, and `core.worktree` points at `elsewhere`. Files are
    left stat-dirty, as unpacking leaves them."""
    trap = repo.parent / "trap.sh"
    trap.write_text(
        f'#!/bin/sh\necho "$*" >> "{marker}"\n'
        'case "$1" in clean|smudge) exec cat ;; esac\n'  # a filter passes the content through
    )
    trap.chmod(0o755)
    roles = ("fsmonitor", "pager", "editor", "ssh", "external", "textconv", "command", "clean")
    keys = ("core.fsmonitor", "core.pager", "core.editor", "core.sshCommand", "diff.external")
    keys += ("diff.trap.textconv", "diff.trap.command", "filter.trap.clean")
    settings = {key: f"{trap} {role}" for key, role in zip(keys, roles, strict=True)}
    settings |= {"filter.trap.smudge": f"{trap} smudge", "filter.trap.required": "true"}
    settings |= {"filter.proc.process": f"{trap} process", "gpg.program": f"{trap} gpg"}
    settings |= {"log.showSignature": "true", "core.worktree": str(elsewhere)}
    for key, value in settings.items():
        git(repo, "config", key, value)
    for hook in ("post-index-change", "pre-commit", "commit-msg", "post-commit"):
        path = repo / ".git" / "hooks" / hook
        path.write_text(f"#!/bin/sh\n{trap} {hook} </dev/null\n")
        path.chmod(0o755)
    (repo / ".git" / "info").mkdir(exist_ok=True)
    attributes = "*.py filter=trap diff=trap\n*.txt filter=proc\n"
    (repo / ".git" / "info" / "attributes").write_text(attributes)
    elsewhere.mkdir(parents=True, exist_ok=True)
    (elsewhere / "outside.txt").write_text("not the repository's\n")
    for path in repo.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            os.utime(path, (1, 1))


def mcode_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment whose user config and cache live under `home`, never the developer's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCODE_")}
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "NO_COLOR": "1",
            "COLUMNS": "120",
        }
    )
    env.update(extra)
    return env


def terminal_env(home: Path, **extra: str) -> dict[str, str]:
    """`mcode_env` for a process in a pseudo-terminal of 100 x 40, colours on."""
    env = mcode_env(
        home,
        TERM="xterm",
        COLUMNS="100",
        LINES="40",
        PROMPT_TOOLKIT_NO_CPR="1",  # nobody answers the cursor-position query here
        **extra,
    )
    env.pop("NO_COLOR", None)
    return env


def model_terminal_env(home: Path, api_base: str, **extra: str) -> dict[str, str]:
    """`terminal_env` whose model is the scripted server at `api_base` (the `llm_server` fixture)."""
    return terminal_env(
        home,
        MCODE_MODEL="openai/mock-model",
        MCODE_API_BASE=api_base,
        OPENAI_API_KEY="sk-test",
        **extra,
    )


def spawn_mcode(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> Any:
    """The real `mcode` in a pseudo-terminal (a `pexpect.spawn`), as a user's terminal runs it."""
    import pexpect

    return pexpect.spawn(
        sys.executable,
        ["-m", "mcode", *args],
        cwd=str(cwd),
        env=env,
        encoding="utf-8",
        codec_errors="replace",
        dimensions=(40, 100),
        timeout=timeout,
    )


def run_mcode(
    args: list[str],
    env: dict[str, str],
    cwd: Path | None = None,
    stdin: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcode", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,  # never the test runner's own
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def opened_index(root: Path, state: Path, embedder: Embedder | None = None) -> Iterator[Indexer]:
    """The indexer of the repository at `root`, in process (user config and caches under
    `state`); it holds the writer's lock until the block ends."""
    paths = Paths(repo=root, user_config=state / "config", cache=state / "cache")
    indexer, lock = open_index(Settings(paths=paths), embedder)
    try:
        yield indexer
    finally:
        indexer.manifest.close()
        lock.release()


@contextmanager
def indexed_repo(
    root: Path, files: dict[str, str], state: Path, embedder: Embedder | None = None
) -> Iterator[Indexer]:
    """`files` written under `root` and indexed, as `opened_index` gives it."""
    write_files(root, files)
    with opened_index(root, state, embedder) as indexer:
        indexer.update()
        yield indexer
