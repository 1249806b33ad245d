"""Archival memory as the agent's tools see it: the notes it filed away and the indexed code, as one.

`archival_memory_search` asks both. A note that shares most of the query's words is what the agent
itself wrote about exactly this, so it leads; then the code; then the weaker notes. A search with
tags only looks at notes, since code carries no tags.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from mcode.retrieval.hits import CodeSearcher, SearchHit, SearchUnavailable

STRONG_NOTE = 0.5  # share of the query's words a note must contain to come before the code
_WORD = re.compile(r"[A-Za-z0-9_]{3,}")


class NoteStore(Protocol):
    """`mcode.memory.recall.NotesStore` is one."""

    def insert(self, content: str, tags: list[str]) -> str: ...

    def search(
        self, query: str, tags: list[str] | None = None, k: int = 10
    ) -> list[dict[str, Any]]: ...


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def note_strength(query: str, content: str) -> float:
    """The share of the query's words the note contains."""
    wanted = _words(query)
    return len(wanted & _words(content)) / len(wanted) if wanted else 0.0


def code_result(hit: SearchHit) -> dict[str, Any]:
    return {
        "source": "code",
        "path": hit.path,
        "start_line": hit.start_line,
        "end_line": hit.end_line,
        "symbol": hit.symbol,
        "kind": hit.kind,
        "snippet": hit.snippet,
    }


class MergedArchival:
    """An `ArchivalMemory` over notes and code. `hidden` says which code paths must not be shown
    (secret files, paths a deny rule covers)."""

    def __init__(
        self,
        notes: NoteStore | None,
        code: CodeSearcher | None,
        hidden: Callable[[str], bool] = lambda path: False,
    ) -> None:
        self.notes = notes
        self.code = code
        self.hidden = hidden

    def insert(self, content: str, tags: list[str]) -> str:
        if self.notes is None:
            raise ValueError("archival notes are not available in this session")
        return self.notes.insert(content, tags)

    def search(self, query: str, tags: list[str] | None, k: int) -> list[dict[str, Any]]:
        notes = [
            {"source": "note", **note}
            for note in (self.notes.search(query, tags, k) if self.notes else [])
        ]
        if tags or self.code is None:
            return notes[:k]
        strong = [
            n for n in notes if note_strength(query, str(n.get("content", ""))) >= STRONG_NOTE
        ]
        weak = [n for n in notes if n not in strong]
        return [*strong, *self._code(query, k), *weak][:k]

    def _code(self, query: str, k: int) -> Sequence[dict[str, Any]]:
        assert self.code is not None
        try:
            hits = self.code.search(query, k, "symbol")
        except SearchUnavailable:  # the code is not indexed yet: the notes answer alone
            return []
        return [code_result(h) for h in hits if not self.hidden(h.path)]
