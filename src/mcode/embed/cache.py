"""Vectors remembered by (embedder id, text hash), shared by every checkout and repo of the user.

A chunk that did not change, or that another branch or clone already embedded, costs a SQLite
lookup instead of a model run. WAL mode and a busy timeout let an indexer and a watcher (or two
repos) write at the same time.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from mcode.embed.base import Embedder, text_hash

log = logging.getLogger(__name__)

CACHE_FILE = "embeddings.sqlite3"
_BUSY_TIMEOUT_S = 60.0
_CHUNK = 500  # keys per SELECT, well under SQLite's bound-parameter limit

Key = tuple[str, str]  # (embedder id, text hash)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    embedder TEXT NOT NULL,
    hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (embedder, hash)
) WITHOUT ROWID
"""


def _select(conn: sqlite3.Connection, embedder: str, digests: list[str]) -> list[tuple[str, bytes]]:
    marks = ",".join("?" * len(digests))
    sql = f"SELECT hash, vector FROM vectors WHERE embedder = ? AND hash IN ({marks})"
    return conn.execute(sql, [embedder, *digests]).fetchall()


class EmbeddingCache:
    """A SQLite file of float32 vectors; the connection opens on first use, from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @classmethod
    def in_dir(cls, cache_dir: Path) -> EmbeddingCache:
        return cls(cache_dir / CACHE_FILE)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            self._conn = conn
        return self._conn

    def get_many(self, keys: Iterable[Key]) -> dict[Key, np.ndarray]:
        """The cached vectors among `keys`; absent keys are simply missing from the result."""
        by_embedder: dict[str, list[str]] = {}
        for embedder, digest in keys:
            by_embedder.setdefault(embedder, []).append(digest)
        found: dict[Key, np.ndarray] = {}
        with self._lock:
            conn = self._connect()
            for embedder, digests in by_embedder.items():
                unique = list(dict.fromkeys(digests))
                for start in range(0, len(unique), _CHUNK):
                    for digest, blob in _select(conn, embedder, unique[start : start + _CHUNK]):
                        found[(embedder, digest)] = np.frombuffer(blob, dtype="<f4")
        return found

    def put_many(self, items: Iterable[tuple[Key, np.ndarray]]) -> None:
        """Store vectors in one transaction, replacing any vector already under the same key."""
        rows = [
            (embedder, digest, np.asarray(vector, dtype="<f4").tobytes())
            for (embedder, digest), vector in items
        ]
        if not rows:
            return
        with self._lock:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR REPLACE INTO vectors (embedder, hash, vector) VALUES (?, ?, ?)", rows
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def count(self, embedder: str | None = None) -> int:
        with self._lock:
            conn = self._connect()
            if embedder is None:
                return conn.execute("SELECT count(*) FROM vectors").fetchone()[0]
            sql = "SELECT count(*) FROM vectors WHERE embedder = ?"
            return conn.execute(sql, (embedder,)).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class CachedEmbedder:
    """An Embedder that only runs the inner one on texts the cache has not seen under its id.

    A cache that cannot be read or written (full disk, corrupt file) costs speed, not results: the
    error is logged and the texts are embedded anyway.
    """

    def __init__(self, inner: Embedder, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache
        self.hits = 0
        self.misses = 0

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        dim = self.dim
        if not texts:
            return np.empty((0, dim), dtype=np.float32)
        digests = [text_hash(t) for t in texts]
        cached = self._lookup(digests, dim)
        todo = {d: t for d, t in zip(digests, texts, strict=True) if d not in cached}
        self.hits += sum(1 for d in digests if d in cached)
        self.misses += len(todo)
        if todo:
            computed = self.inner.embed_documents(list(todo.values()))
            fresh = dict(zip(todo, computed, strict=True))
            self._store(fresh)
            cached.update(fresh)
        return np.stack([cached[d] for d in digests]).astype(np.float32, copy=False)

    def load(self) -> None:
        """Load the inner model now, if it loads lazily."""
        load = getattr(self.inner, "load", None)
        if load is not None:
            load()

    def embed_query(self, text: str) -> np.ndarray:
        """Queries are not cached: they rarely repeat and some models embed them differently."""
        return self.inner.embed_query(text)

    def _lookup(self, digests: list[str], dim: int) -> dict[str, np.ndarray]:
        try:
            found = self.cache.get_many((self.id, d) for d in digests)
        except (sqlite3.Error, OSError) as exc:
            log.warning(
                "embedding cache %s unreadable, embedding without it: %s", self.cache.path, exc
            )
            return {}
        # A vector of another length under the same id (the remote model changed) is recomputed.
        return {digest: vec for (_, digest), vec in found.items() if vec.shape == (dim,)}

    def _store(self, vectors: dict[str, np.ndarray]) -> None:
        try:
            self.cache.put_many(((self.id, d), v) for d, v in vectors.items())
        except (sqlite3.Error, OSError) as exc:
            log.warning("embedding cache %s not written: %s", self.cache.path, exc)
