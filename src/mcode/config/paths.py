"""Where things live: the repository, its `.agentmemory/`, and the user's config and cache directories.

Only this package reads the environment; everyone else receives resolved paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mcode.fsio import MEMORY_DIRNAME, create_file

_PRIVATE_GITIGNORE = "# Created by mcode: rebuildable or private, never committed.\n*\n"


def ensure_private_dir(directory: Path) -> Path:
    """Create a directory that git must never pick up (index, caches, transcripts).

    A `.gitignore` of `*` inside it keeps it out of `git status` in any repository, whether or not the
    user ever ran `mcode init`, without touching any file of theirs. In a repository's
    `.agentmemory/`, a symlink on the way is refused (`UnsafePathError`), never written through.
    """
    create_file(directory / ".gitignore", _PRIVATE_GITIGNORE)
    return directory


# What a repository's `.agentmemory/` keeps out of git: the same rules as `.agentmemory.example/`.
MEMORY_GITIGNORE = """\
# Rebuilt by `mcode index` and `mcode watch`; never commit them.
index/
cache/
# Write locks, held for milliseconds while mcode changes a block.
*.lock
# Conversation transcripts: private, and tool output may hold secrets.
sessions/
# Temporary files of an interrupted write.
.*.tmp
# What each sleep-time pass did and spent: yours, not the team's.
sleep.log
"""


def ensure_memory_dir(memory: Path) -> Path:
    """Create a repository's `.agentmemory/` with its `.gitignore`, so that whichever mcode command
    touches it first, its locks, index and transcripts never show up in `git status`. A symlink on
    the way is refused (`UnsafePathError`), never written through."""
    create_file(memory / ".gitignore", MEMORY_GITIGNORE)
    return memory


def _xdg(var: str, fallback: str, env: dict[str, str]) -> Path:
    value = env.get(var)
    return Path(value) if value else Path.home() / fallback


@dataclass(frozen=True, slots=True)
class Paths:
    """Resolved locations for one repository and one user."""

    repo: Path
    user_config: Path  # ~/.config/mcode: user blocks, user config.toml, REPL history
    cache: Path  # ~/.cache/mcode: the embedding cache shared across checkouts

    @property
    def memory(self) -> Path:
        """The repo's `.agentmemory/`: committed blocks and config, plus the git-ignored index."""
        return self.repo / MEMORY_DIRNAME

    @property
    def index(self) -> Path:
        """Archival memory of the code: rebuildable, git-ignored."""
        return self.memory / "index"

    @property
    def manifest(self) -> Path:
        """The index's bookkeeping (SQLite): files, their chunks and symbols, and what awaits vectors."""
        return self.index / "manifest.db"

    @property
    def chunks(self) -> Path:
        """The index's chunk table (LanceDB)."""
        return self.index / "lance"

    @property
    def index_lock(self) -> Path:
        """Held by the one process that writes the index."""
        return self.index / "write.lock"

    @property
    def summaries(self) -> Path:
        """Module summaries (LanceDB), beside the chunk table but outside it: a rebuilt index
        keeps the summaries a model was paid to write."""
        return self.index / "summaries"

    @property
    def sleep_lock(self) -> Path:
        """Held by the one process running a sleep-time pass."""
        return self.index / "sleep.lock"

    @property
    def sleep_log(self) -> Path:
        """One JSON line per sleep-time pass (and per model summary): what it did and spent."""
        return self.memory / "sleep.log"

    @property
    def sessions(self) -> Path:
        """Conversation transcripts (recall memory's source of truth): private, git-ignored."""
        return self.memory / "sessions"

    @property
    def notes_file(self) -> Path:
        """Archival notes the agent files away: plain JSON lines, committable."""
        return self.memory / "notes.jsonl"

    @property
    def recall_index(self) -> Path:
        return self.index / "recall"

    @property
    def project_config(self) -> Path:
        return self.memory / "config.toml"

    @property
    def user_config_file(self) -> Path:
        return self.user_config / "config.toml"

    @classmethod
    def for_repo(cls, repo: Path, env: dict[str, str] | None = None) -> Paths:
        env = dict(os.environ) if env is None else env
        return cls(
            repo=repo,
            user_config=_xdg("XDG_CONFIG_HOME", ".config", env) / "mcode",
            cache=_xdg("XDG_CACHE_HOME", ".cache", env) / "mcode",
        )
