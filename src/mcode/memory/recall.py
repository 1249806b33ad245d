"""Recall memory (every message of every session) and the agent's archival notes, searchable.

Each is a JSON Lines journal (the truth, see `sessions`) mirrored into a LanceDB table (an index,
see `store.journals`). A write goes to the journal first and to the table under the same lock, so two
mcode processes agree; if the table write fails, the message is still safe and the table catches
up on the next open or search. On open, a table that is missing, damaged or behind is rebuilt
from the journals. Search fuses full-text and vector rankings by reciprocal rank; with no embedder
it is lexical only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mcode.fsio import ReentrantFileLock, append_line, atomic_write_text, clock, read_bytes
from mcode.memory.sessions import (
    SessionLog,
    StoredMessage,
    dump_line,
    message_text,
    messages_of,
    read_json_lines,
)
from mcode.secrets import redact
from mcode.store.filters import all_of, in_filter, tags_filter, time_filter
from mcode.store.journals import (
    MESSAGES,
    NOTES,
    TextTable,
    message_schema,
    note_schema,
)

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from mcode.embed import Embedder

log = logging.getLogger(__name__)

RRF_K = 60  # the usual reciprocal-rank constant: rank 1 scores 1/61
EXCERPT_CHARS = 500
NOTE_CHARS = 2000
# A huge tool output is indexed by its beginning; the transcript keeps all of it.
MAX_INDEXED_CHARS = 32_000
MAX_EMBEDDED_CHARS = 2_000
EMBED_BATCH = 64
COMPACT_EVERY = 50
_T = TypeVar("_T")


def excerpt(text: str, query: str, width: int = EXCERPT_CHARS) -> str:
    """At most `width` characters of `text`, around the first query word it contains."""
    if len(text) <= width:
        return text
    lowered = text.lower()
    hits = [lowered.find(w) for w in re.findall(r"\w{3,}", query.lower())]
    hits = [h for h in hits if h >= 0]
    start = min(max(0, min(hits) - width // 5), len(text) - width) if hits else 0
    return (
        ("…" if start else "")
        + text[start : start + width]
        + ("…" if start + width < len(text) else "")
    )


def fuse(rankings: Sequence[Sequence[dict[str, Any]]]) -> list[tuple[dict[str, Any], float]]:
    """Reciprocal-rank fusion by row id, best first."""
    scores: dict[str, float] = {}
    rows: dict[str, dict[str, Any]] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, 1):
            scores[row["id"]] = scores.get(row["id"], 0.0) + 1.0 / (RRF_K + rank)
            rows.setdefault(row["id"], row)
    order = sorted(scores, key=lambda i: -scores[i])
    return [(rows[i], scores[i]) for i in order]


class _Mirror:
    """A journal (JSON Lines files) and the table that mirrors it; subclasses say how to read it."""

    table_name: str

    def __init__(
        self,
        index_dir: Path,
        embedder: Embedder | None,
        lock: Callable[[], contextlib.AbstractContextManager[None]],
        backfill: bool,
    ) -> None:
        self.index_dir = index_dir
        self.embedder = embedder
        self._lock = lock
        self._writes = 0
        self._stale = False
        dim, embedder_id = self._embedder_shape()
        self._wanted = self._schema(dim, embedder_id)
        with self._lock():
            self._reopen()
        if backfill:
            self.fill_vectors()

    # -- what subclasses provide ---------------------------------------------------------------

    def _schema(self, dim: int, embedder_id: str) -> pa.Schema:
        raise NotImplementedError

    def _journal_files(self) -> list[Path]:
        raise NotImplementedError

    def _rows(self, path: Path) -> list[dict[str, Any]]:
        """The table rows one journal file holds (without vectors)."""
        raise NotImplementedError

    # -- embedding -------------------------------------------------------------------------------

    def _embedder_shape(self) -> tuple[int, str]:
        if self.embedder is None:
            return 0, ""
        try:
            return self.embedder.dim, self.embedder.id
        except Exception as exc:  # a remote model probes its dimension; it may be down
            log.warning("recall memory searches by text only: %s", exc)
            self.embedder = None
            return 0, ""

    def _embed(self, texts: Sequence[str]) -> np.ndarray | None:
        """Vectors for `texts`, or None when the embedder fails: text search still works."""
        if self.embedder is None or not self.table.has_vectors or not texts:
            return None
        try:
            return self.embedder.embed_documents([t[:MAX_EMBEDDED_CHARS] for t in texts])
        except Exception as exc:  # never lose or block a write because of the embedder
            log.warning("could not embed for recall memory (%s); searching by text only", exc)
            return None

    def fill_vectors(self, batch: int = EMBED_BATCH, max_rows: int | None = None) -> int:
        """Compute the vectors rows still lack, `batch` at a time; how many were filled."""
        done = 0
        tried: set[str] = set()
        while max_rows is None or done < max_rows:
            size = batch if max_rows is None else min(batch, max_rows - done)
            pending = [r for r in self.table.pending_vectors(size) if r["id"] not in tried]
            vectors = self._embed([row["text"] or "" for row in pending])
            if vectors is None:  # nothing left, or the embedder failed
                break
            ids = [row["id"] for row in pending]
            with self._lock():
                self.table.set_vectors(ids, vectors)
            tried.update(ids)  # a row that would not take its vector is not retried forever
            done += len(pending)
        return done

    # -- keeping the table in step ---------------------------------------------------------------

    def _reopen(self) -> None:
        """Open (or rebuild) the table and bring it level with the journal. Hold the lock."""
        self.table = TextTable(self.index_dir, self.table_name, self._wanted)
        self._sync()
        self.table.compact_if_fragmented()
        self._stale = False

    def _state_path(self) -> Path:
        return self.index_dir / f"{self.table_name}.state.json"

    def _sync(self) -> None:
        """Match the table to the journal: rows it lacks are added, rows no journal holds removed.

        Counting is cheap thanks to a record of each journal file's size and message count; only
        a file that changed is parsed, and only a count mismatch leads to comparing ids.
        """
        try:
            known = json.loads(read_bytes(self._state_path()))
        except (OSError, ValueError):
            known = {}
        counts: dict[str, list[int]] = {}
        parsed: dict[Path, list[dict[str, Any]]] = {}
        files = self._journal_files()
        for path in files:
            stat = path.stat()
            signature = [stat.st_size, stat.st_mtime_ns]
            cached = known.get(path.name) if isinstance(known, dict) else None
            if isinstance(cached, list) and cached[:2] == signature and len(cached) == 3:
                counts[path.name] = cached
            else:
                parsed[path] = self._rows(path)
                counts[path.name] = [*signature, len({r["id"] for r in parsed[path]})]
        if sum(c[2] for c in counts.values()) != self.table.count():
            wanted: dict[str, dict[str, Any]] = {}
            for path in files:
                for row in parsed.get(path) or self._rows(path):
                    wanted[row["id"]] = row
            self._repair(wanted)
        if counts != known:
            atomic_write_text(self._state_path(), json.dumps(counts))

    def _repair(self, wanted: dict[str, dict[str, Any]]) -> None:
        have = Counter(self.table.ids())
        doubled = [i for i, n in have.items() if n > 1]  # a row indexed twice: drop and re-add
        extra = [i for i in have if i not in wanted]
        self.table.delete_ids([*extra, *doubled])
        missing = [row for i, row in wanted.items() if have[i] != 1]
        for start in range(0, len(missing), 5000):
            self.table.add(missing[start : start + 5000])
        if missing or extra:
            log.info(
                "recall index %s: %d rows added, %d removed",
                self.table_name,
                len(missing),
                len(extra),
            )

    def _index(self, row: dict[str, Any], vector: np.ndarray | None) -> None:
        """Add one row just written to the journal. Hold the lock. A failure only marks the table
        stale: the row is safe in the journal and is indexed on the next search."""
        if vector is not None:
            row = {**row, "vector": vector.tolist()}
        try:
            self.table.add([row])
            self._writes += 1
            if self._writes % COMPACT_EVERY == 0:
                self.table.compact_if_fragmented()
        except Exception as exc:
            log.warning(
                "recall index %s missed a write (%s); it will catch up", self.table_name, exc
            )
            self._stale = True

    def _query(self, run: Callable[[], _T]) -> _T:
        if self._stale:
            with self._lock():
                self._reopen()
        try:
            return run()
        except Exception as exc:  # deleted or damaged under us: the journal rebuilds it
            log.warning("recall index %s failed (%s); rebuilding it", self.table_name, exc)
            with self._lock():
                self._reopen()
            return run()

    def _hybrid(self, query: str, where: str | None, k: int) -> list[tuple[dict[str, Any], float]]:
        fetch = max(4 * k, 20)
        rankings = [self.table.full_text(query, fetch, where)]
        if self.embedder is not None and self.table.has_vectors and query.strip():
            try:
                vector = self.embedder.embed_query(query[:MAX_EMBEDDED_CHARS])
            except Exception as exc:
                log.warning("could not embed the query (%s); searching by text only", exc)
            else:
                rankings.append(self.table.nearest(vector, fetch, where))
        return fuse(rankings)[:k]

    def _newest(self, where: str | None, k: int) -> list[tuple[dict[str, Any], float]]:
        """With no query words: the most recent rows that pass the filters."""
        stamps = self.table.scan(where, ["id", "time"])
        top = sorted(stamps, key=lambda r: r["time"], reverse=True)[:k]
        if not top:
            return []
        rows = {r["id"]: r for r in self.table.scan(in_filter("id", [r["id"] for r in top]))}
        return [(rows[r["id"]], 0.0) for r in top if r["id"] in rows]

    def _search(self, query: str, where: str | None, k: int) -> list[tuple[dict[str, Any], float]]:
        if query.strip():
            return self._query(lambda: self._hybrid(query, where, k))
        return self._query(lambda: self._newest(where, k))

    def count(self) -> int:
        return self.table.count()


def _message_row(message: StoredMessage) -> dict[str, Any]:
    text = message.text
    if len(text) > MAX_INDEXED_CHARS:
        text = text[:MAX_INDEXED_CHARS] + "…"
    return {
        "id": message.id,
        "session_id": message.session_id,
        "time": message.time,
        "role": message.role,
        "name": message.name,
        "text": text,
    }


class RecallStore(_Mirror):
    """Recall memory: every message of every session (implements `RecallMemory`)."""

    table_name = MESSAGES

    def __init__(
        self,
        log: SessionLog,
        index_dir: Path,
        embedder: Embedder | None,
        *,
        backfill: bool = True,
    ) -> None:
        self.log = log
        super().__init__(index_dir, embedder, log.locked, backfill)

    def _schema(self, dim: int, embedder_id: str) -> pa.Schema:
        return message_schema(dim, embedder_id)

    def _journal_files(self) -> list[Path]:
        return self.log.files()

    def _rows(self, path: Path) -> list[dict[str, Any]]:
        return [_message_row(m) for m in messages_of(path)]

    def record(
        self, session_id: str, message: dict[str, Any], *, time: datetime | None = None
    ) -> StoredMessage:
        """Append a message to its session's transcript and index it: what the agent loop calls."""
        text = message_text(message.get("content"), message.get("tool_calls"))
        vectors = self._embed([text]) if text.strip() else None
        with self._lock():
            stored = self.log.append(session_id, message, time=time)
            self._index(_message_row(stored), None if vectors is None else vectors[0])
        return stored

    def add(self, message: StoredMessage) -> None:
        """Index a message already appended with `SessionLog.append`; adding it twice is harmless."""
        row = _message_row(message)
        vectors = self._embed([row["text"]]) if row["text"].strip() else None
        if vectors is not None:
            row["vector"] = vectors[0].tolist()
        with self._lock():
            self.table.add_missing([row])

    def search(
        self,
        query: str,
        roles: list[str] | None = None,
        limit: int = 5,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Matching messages, best first; with an empty query, the newest that pass the filters."""
        where = all_of(
            in_filter("role", roles) if roles else None, time_filter(start_date, end_date)
        )
        return [
            {
                "session_id": row["session_id"],
                "time": clock.iso(row["time"]),
                "role": row["role"],
                "content": excerpt(row["text"] or "", query),
                "score": round(score, 4),
            }
            for row, score in self._search(query, where, limit)
        ]


class NotesStore(_Mirror):
    """Passages the agent files away with `archival_memory_insert` (implements `ArchivalMemory`).

    The journal (`.agentmemory/notes.jsonl`) is plain text meant to be committed with the repo.
    """

    table_name = NOTES

    def __init__(
        self,
        notes_file: Path,
        index_dir: Path,
        embedder: Embedder | None,
        *,
        backfill: bool = True,
    ) -> None:
        self.file = notes_file
        lock = ReentrantFileLock(notes_file.with_suffix(".lock"))
        super().__init__(index_dir, embedder, lock, backfill)

    def _schema(self, dim: int, embedder_id: str) -> pa.Schema:
        return note_schema(dim, embedder_id)

    def _journal_files(self) -> list[Path]:
        return [self.file] if self.file.is_file() else []

    def _rows(self, path: Path) -> list[dict[str, Any]]:
        rows = []
        for record in read_json_lines(path):
            try:
                rows.append(_note_row(record))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("%s: skipped a line that is not a note (%s)", path, exc)
        return rows

    def insert(self, content: str, tags: list[str]) -> str:
        text = redact(content.strip())  # the journal is committed: no secret value goes in
        if not text:
            raise ValueError("a note must not be empty")
        record = {
            "id": f"note-{secrets.token_hex(6)}",
            "time": clock.iso(),
            "content": text,
            "tags": list(dict.fromkeys(t.strip() for t in tags if t.strip())),
        }
        vectors = self._embed([text])
        with self._lock():
            append_line(self.file, dump_line(record))
            self._index(_note_row(record), None if vectors is None else vectors[0])
        return record["id"]

    def search(
        self, query: str, tags: list[str] | None = None, k: int = 10
    ) -> list[dict[str, Any]]:
        """The best `k` notes for `query`, restricted to notes with one of `tags` when given."""
        where = tags_filter(tags) if tags else None
        return [
            {
                "id": row["id"],
                "time": clock.iso(row["time"]),
                "tags": list(row["tags"] or []),
                "content": excerpt(row["text"] or "", query, NOTE_CHARS),
                "score": round(score, 4),
            }
            for row, score in self._search(query, where, k)
        ]


def _note_row(record: dict[str, Any]) -> dict[str, Any]:
    tags = record.get("tags") or []
    if not isinstance(record["id"], str) or not isinstance(tags, list):
        raise TypeError("id must be a string and tags a list")
    return {
        "id": record["id"],
        "time": clock.parse(record["time"]),
        "tags": [str(t) for t in tags],
        "text": str(record["content"]),
    }
