"""Every chunk's metadata and vector held in memory, for a process that searches many times.

LanceDB answers one vector query in ~20 ms here whatever the index (IVF_FLAT with one probe, HNSW),
and each metadata lookup is a query of its own; an exact dot product over 66k x 384 floats in numpy
takes ~7 ms and a dict lookup nothing. So the REPL, the agent and the watcher's readers keep this
copy, and the one-shot `mcode search` reads the store directly (loading the copy costs ~1 s).

The copy follows the index through the manifest's generation counter, which every change of a file's
rows or vectors bumps in the same transaction that records it. Rows reach the chunk table before the
manifest, so when the counter moves, the rows it announces are already readable; only the files whose
(hash, embedded) changed are fetched again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mcode.retrieval.vectors import VectorMatrix
from mcode.store.schema import META_COLUMNS, first_lines

if TYPE_CHECKING:
    from mcode.store import Manifest
    from mcode.store.chunks import ChunkStore

# Past this share of files changed, reading the whole table is cheaper than a filter per file.
RELOAD_SHARE = 0.3
PATHS_PER_QUERY = 400
# Dropped rows are only marked; past this many (and a quarter of the copy) the copy is rebuilt.
COMPACT_MIN_DEAD = 1_000
# The head of each chunk's text is kept for the snippets of results (a store query of ~5 ms each
# search otherwise); ~25 MB for the standard library's 66k chunks.
HEAD_LINES = 16


class ResidentChunks:
    """The chunk table's rows (with the head of their text) and vectors, kept current with the
    manifest.

    Columns are plain lists and the vectors one matrix; a row becomes a dict only when a search
    returns it. It answers the reads ranking makes, like `ChunkStore`, so a `Searcher` takes either.
    """

    def __init__(self, store: ChunkStore, manifest: Manifest) -> None:
        self.store = store
        self.manifest = manifest
        self.dim = store.dim
        # Searches may come from several threads (the REPL, the agent's tools); each read holds it.
        self._lock = threading.RLock()
        self._generation: int | None = None
        self._files: dict[str, tuple[str, int]] = {}
        self._columns: dict[str, list[Any]] = {name: [] for name in META_COLUMNS}
        self._heads: list[str] = []
        self._by_id: dict[str, int] = {}
        self._by_path: dict[str, list[int]] = {}
        self._vectors = VectorMatrix(max(self.dim, 1))
        self._size = 0
        self._dead = 0

    # -- keeping current ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Catch up with the index if it changed since the last call: one SQLite probe if not."""
        with self._lock:
            generation = self.manifest.generation()
            if generation == self._generation:
                return
            versions = self.manifest.versions()
            changed = [p for p, v in versions.items() if self._files.get(p) != v]
            gone = [p for p in self._files if p not in versions]
            if self._generation is None or len(changed) > RELOAD_SHARE * max(len(versions), 1):
                self._reset(self.store.count())
                for batch in self.store.scan(with_text=True, with_vector=True):
                    self._append(pa.Table.from_batches([batch]))
            else:
                self._drop([*changed, *gone])
                for start in range(0, len(changed), PATHS_PER_QUERY):
                    part = changed[start : start + PATHS_PER_QUERY]
                    rows = self.store.rows_for_paths(
                        part, 1_000_000, with_text=True, with_vector=True
                    )
                    self._append(pa.Table.from_pylist(rows))
                if self._dead > max(COMPACT_MIN_DEAD, self._size // 4):
                    self._compact()
            self._files = versions
            self._generation = generation

    def _reset(self, capacity: int = 0) -> None:
        self._columns = {name: [] for name in META_COLUMNS}
        self._heads = []
        self._by_id, self._by_path = {}, {}
        self._vectors = VectorMatrix(max(self.dim, 1), capacity)
        self._size = self._dead = 0

    def _append(self, table: pa.Table) -> None:
        """Add rows; vectors go to numpy in one piece, never as Python lists (66k x 384 floats as
        lists would cost seconds and a gigabyte)."""
        n = table.num_rows
        if n == 0:
            return
        first = self._size
        for old in table.column("id").to_pylist():
            if old in self._by_id:  # written again while we read: the newest wins
                self._drop_index(self._by_id[old])
        for name in META_COLUMNS:
            self._columns[name].extend(table.column(name).to_pylist())
        self._heads.extend(
            first_lines(t or "", HEAD_LINES) for t in table.column("text").to_pylist()
        )
        ids, paths = self._columns["id"], self._columns["path"]
        for index in range(first, first + n):
            self._by_id[ids[index]] = index
            self._by_path.setdefault(paths[index], []).append(index)
        if "vector" in table.column_names and self.dim > 0:
            column = table.column("vector").combine_chunks()
            present = np.flatnonzero(column.is_valid().to_numpy(zero_copy_only=False))
            if len(present):  # rows without any vector come as a column of type null
                # flatten() skips null entries: its rows are the present ones, in order.
                values = column.flatten().to_numpy(zero_copy_only=False).reshape(-1, self.dim)
                keep = np.linalg.norm(values, axis=1) > 0
                self._vectors.set(first + present[keep], values[keep])
        self._size += n

    def _drop(self, paths: Iterable[str]) -> None:
        for path in paths:
            for index in list(self._by_path.get(path, ())):
                self._drop_index(index)

    def _drop_index(self, index: int) -> None:
        key, path = self._columns["id"][index], self._columns["path"][index]
        if self._by_id.get(key) != index:
            return
        del self._by_id[key]
        self._vectors.kill(index)
        self._dead += 1
        indexes = self._by_path[path]
        indexes.remove(index)
        if not indexes:
            del self._by_path[path]

    def _compact(self) -> None:
        keep = np.array(sorted(self._by_id.values()), dtype=np.int64)
        columns = {name: [values[i] for i in keep] for name, values in self._columns.items()}
        heads = [self._heads[i] for i in keep]
        vectors = self._vectors
        vectors.compact(keep)
        self._reset()
        self._columns, self._heads, self._vectors = columns, heads, vectors
        self._size = len(keep)
        for index, (key, path) in enumerate(zip(columns["id"], columns["path"], strict=True)):
            self._by_id[key] = index
            self._by_path.setdefault(path, []).append(index)

    def _row(self, index: int) -> dict[str, Any]:
        return {name: values[index] for name, values in self._columns.items()}

    # -- the reads a search makes ----------------------------------------------------------------------

    def full_text(self, query: str, k: int) -> list[dict[str, Any]]:
        """The store's BM25 ranking, fetching only ids from it; rows come from memory."""
        hits = self.store.full_text(query, k, columns=["id"])
        with self._lock:
            self.refresh()
            rows = self._rows_by_id([hit["id"] for hit in hits])
        return [{**rows[h["id"]], "_score": h["_score"]} for h in hits if h["id"] in rows]

    def nearest(self, vector: np.ndarray, k: int) -> list[dict[str, Any]]:
        """Cosine neighbours over every stored vector, exactly."""
        if self.dim <= 0:
            return []
        with self._lock:
            self.refresh()
            found = self._vectors.nearest(vector, k, self._size)
            return [{**self._row(i), "_distance": 1.0 - similarity} for i, similarity in found]

    def rows_for_paths(
        self, paths: Sequence[str], limit: int = 10_000, *, symbols: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        wanted = set(symbols)
        with self._lock:
            self.refresh()
            symbol = self._columns["symbol"]
            found = [
                i
                for path in paths
                for i in self._by_path.get(path, ())
                if not wanted or symbol[i] in wanted
            ]
            return [self._row(i) for i in found[:limit]]

    def text_heads(self, ids: Sequence[str], lines: int) -> dict[str, str]:
        if lines > HEAD_LINES:
            return self.store.text_heads(ids, lines)
        with self._lock:
            self.refresh()
            found = {
                i: first_lines(self._heads[self._by_id[i]], lines) for i in ids if i in self._by_id
            }
        missing = [i for i in ids if i not in found]
        if missing:
            found.update(self.store.text_heads(missing, lines))
        return found

    def _rows_by_id(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Rows by id; ids the copy does not know yet (written, not yet in the manifest) are read."""
        found = {i: self._row(self._by_id[i]) for i in ids if i in self._by_id}
        missing = [i for i in ids if i not in found]
        if missing:
            found.update((row["id"], row) for row in self.store.rows_by_id(missing))
        return found
