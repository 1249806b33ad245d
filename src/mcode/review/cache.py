"""Review results kept by what decides them: a re-run on an unchanged diff costs no model call.

A file's result is keyed by its change (the hunks, not git's `index` line: `FileDiff.digest`), the
memory version (the blocks the model read), the model and the prompt templates. So a commit that
failed the hook and is retried unchanged is answered from here at once, and so is the hook run by
the agent's own commit after its pre-commit check reviewed the same change; editing the lessons, or
switching models, reviews afresh.

Entries are files under `.agentmemory/cache/review/` (git-ignored, never read or written through a
symlink); an entry that cannot be read is a miss. `last.json` keeps the latest run's findings, for
`mcode review --dismiss ID`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from mcode.config import Paths, ensure_memory_dir, ensure_private_dir
from mcode.fsio import atomic_write_text, read_bytes, remove_file
from mcode.prompts import load_prompt
from mcode.review.findings import Finding

CACHE_VERSION = 1
MAX_ENTRIES = 2000
LAST = "last.json"
PROMPTS = ("review.md", "review_file.md")


def prompts_digest() -> str:
    text = "\0".join(load_prompt(name) for name in PROMPTS)
    return hashlib.sha256(text.encode()).hexdigest()


class ReviewCache:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.directory = paths.memory / "cache" / "review"

    def key(self, file_digest: str, memory_version: str, model: str, prompts: str) -> str:
        parts = [CACHE_VERSION, prompts, model, memory_version, file_digest]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def get(self, key: str) -> tuple[list[Finding], int] | None:
        """The findings and the tokens they cost, or None."""
        data = self._read(f"{key}.json")
        try:
            findings = [Finding.from_dict(f) for f in data["findings"]]  # type: ignore[index]
            return findings, int(data["tokens"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, key: str, findings: list[Finding], tokens: int) -> None:
        self._write(f"{key}.json", {"findings": [f.to_dict() for f in findings], "tokens": tokens})
        self._prune()

    def save_last(self, findings: list[Finding]) -> None:
        self._write(LAST, {"findings": [f.to_dict() for f in findings]})

    def last(self) -> list[Finding]:
        data = self._read(LAST)
        try:
            return [Finding.from_dict(f) for f in data["findings"]]  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            return []

    def _read(self, name: str) -> Any:
        try:
            return json.loads(read_bytes(self.directory / name))
        except (OSError, ValueError):
            return None

    def _write(self, name: str, data: dict[str, Any]) -> None:
        """Best effort: a cache that cannot be written costs a call next time, nothing else."""
        with contextlib.suppress(OSError):
            ensure_memory_dir(self.paths.memory)
            ensure_private_dir(self.directory.parent)
            atomic_write_text(self.directory / name, json.dumps(data, ensure_ascii=False))

    def _prune(self) -> None:
        """Past MAX_ENTRIES, the older half goes."""
        try:
            entries = [e for e in os.scandir(self.directory) if e.name != LAST]
        except OSError:
            return
        if len(entries) <= MAX_ENTRIES:
            return
        entries.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime)
        for entry in entries[: len(entries) - MAX_ENTRIES // 2]:
            with contextlib.suppress(OSError):
                remove_file(Path(entry.path))
