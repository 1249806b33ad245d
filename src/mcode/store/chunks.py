"""Archival memory of the code: the LanceDB chunk table.

This is the only module that uses lancedb (imported through `lancedb_import`). Replacing a file's rows
writes only the rows that differ, new and changed ones first and the leftovers deleted after, so a reader
never sees the file missing and sees old and new rows side by side only between two commits. Vectors are
optional per row: the lexical columns land first and are searchable at once, and vectors are filled in
afterwards by (id, hash), which cannot attach a vector to text that has changed meanwhile.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mcode.store.filters import in_filter, in_filters
from mcode.store.lancedb_import import import_lancedb
from mcode.store.schema import (
    LEXICAL_COLUMNS,
    META_COLUMNS,
    SCHEMA_VERSION,
    chunk_schema,
    first_lines,
)

lancedb = import_lancedb()
from lancedb.background_loop import LOOP  # noqa: E402 - after the import shim
from lancedb.index import IvfFlat  # noqa: E402
from lancedb.query import MultiMatchQuery  # noqa: E402

TABLE = "chunks"
# Brute-force vector search over 10k rows of 384 dims costs ~15 ms here; past that an index pays off.
VECTOR_INDEX_MIN_ROWS = 10_000
# The `head` column holds names (path parts, symbols split into words, signature, docstring): a match
# there says what the chunk *is*, a match in `text` only that it mentions the word.
HEAD_BOOST = 3.0
SCAN_BATCH_ROWS = 8_192
CONSOLIDATE_MAX_ROWS = 5_000
FULL_TEXT_COLUMNS = ("text", "head")
# Rows past the k asked for, fetched to see whether the k-th row's score is shared by rows further
# down (fetching 66 rows costs what fetching 50 does).
TIE_MARGIN = 16
MAX_PARTITIONS = 256  # of the vector index; a search probes them all

warnings.filterwarnings("ignore", module="lancedb")


class StoreFormatError(Exception):
    """The table on disk was written by another schema or embedder; the index must be rebuilt."""


# What decides whether a stored row already says what a new one would: every lexical column but the
# text, for which `hash` stands (the hash of path, symbol and text; vectors attach by it too).
_SAME_ROW_COLUMNS = [name for name in LEXICAL_COLUMNS if name != "text"]


def _same_row(stored: tuple[tuple, bool] | None, row: dict[str, Any], needs_vector: bool) -> bool:
    """Whether writing `row` would change nothing a reader sees. A stored vector for the same hash
    is the vector `row` would bring, so it is kept even when `row` comes without one."""
    if stored is None:
        return False
    values, has_vector = stored
    if values != tuple(row.get(name) for name in _SAME_ROW_COLUMNS):
        return False
    return has_vector or not (needs_vector or row.get("vector") is not None)


def _with_vectors(
    rows: Sequence[dict[str, Any]], embed: Callable[[Sequence[dict[str, Any]]], np.ndarray] | None
) -> list[dict[str, Any]]:
    rows = list(rows)
    if embed is not None and rows:
        for row, vector in zip(rows, embed(rows), strict=True):
            row["vector"] = vector
    return rows


class ChunkStore:
    """The chunk table of one repository, with its full-text and vector indexes."""

    def __init__(self, directory: Path, dim: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.dim = dim
        self.schema = chunk_schema(dim)
        # Check for newer versions on every read: a long-lived reader (the REPL) must see the
        # watcher's writes at once. On a local disk the check is a directory listing.
        self._db = lancedb.connect(str(directory), read_consistency_interval=timedelta(0))
        self._table: Any = None
        self.writes_since_optimize = 0
        # Ids of the rows `replace_files` wrote since the last optimize or consolidate: each
        # write left them in a small fragment of their own, outside the indexes.
        self._loose_ids: set[str] = set()
        self.writes_since_consolidate = 0
        if TABLE in self._db.table_names():
            try:
                table = self._db.open_table(TABLE)
            except Exception as exc:  # a table whose creation was killed half-way
                raise StoreFormatError(f"the index in {directory} is damaged ({exc})") from exc
            if not self._compatible(table.schema):
                raise StoreFormatError(f"the index in {directory} has an older format")
            self._table = table

    def _compatible(self, schema: pa.Schema) -> bool:
        meta = schema.metadata or {}
        return (
            meta.get(b"mcode_schema") == str(SCHEMA_VERSION).encode()
            and schema.names == (self.schema.names)
            and schema.equals(self.schema, check_metadata=False)
        )

    @staticmethod
    def stored_dim(directory: Path) -> int:
        """The length of the vectors the table in `directory` holds (0 for none): how a reader
        whose embedder cannot tell (a remote service that is down) opens it."""
        db = lancedb.connect(str(directory))
        if TABLE not in db.table_names():
            return 0
        schema = db.open_table(TABLE).schema
        if "vector" not in schema.names:
            return 0
        return schema.field("vector").type.list_size

    @staticmethod
    def destroy(directory: Path) -> None:
        """Remove the chunk table and everything beside it: it is rebuildable, and may be damaged."""
        shutil.rmtree(directory, ignore_errors=True)

    # -- writing ---------------------------------------------------------------------------------

    def _arrow(self, rows: Sequence[dict[str, Any]] | pa.Table) -> pa.Table:
        """The rows as a table of the store's schema; a table without vectors gets null ones."""
        if isinstance(rows, pa.Table):
            if self.dim > 0 and "vector" not in rows.column_names:
                vector = self.schema.field("vector").type
                rows = rows.append_column("vector", pa.nulls(rows.num_rows, vector))
            return rows.select(self.schema.names).cast(self.schema)
        if self.dim > 0:
            for row in rows:
                row.setdefault("vector", None)
        return pa.Table.from_pylist(list(rows), schema=self.schema)

    def _create(self, data: pa.Table, on_bad_vectors: str = "null") -> None:
        self._table = self._db.create_table(TABLE, schema=self.schema)
        self._table.add(data, on_bad_vectors=on_bad_vectors)

    def ensure_indexes(self) -> bool:
        """Build the scalar and full-text indexes if missing. A cold build adds every row first and
        indexes once; rows added later are searchable at once and folded in by `optimize`.

        Returns whether the full-text indexes were both built just now, over every row: then their
        statistics are exact (see `rebuild_full_text`)."""
        if self._table is None:
            return False
        present = {ix.name for ix in self._table.list_indices()}
        missing = [column for column in FULL_TEXT_COLUMNS if f"{column}_idx" not in present]
        scalar = [column for column in ("path", "id") if f"{column}_idx" not in present]
        self._build_indexes(missing, scalar)
        return len(missing) == len(FULL_TEXT_COLUMNS)

    def rebuild_full_text(self) -> None:
        """Build the full-text indexes again over the rows there are now.

        Lance scores BM25 with the statistics (row count, each term's row count, mean length) of
        the rows its index was built or last merged over: deleted and replaced rows still count,
        and rows written since are scored with statistics of their own. A search over an updated
        table then ranks differently from one over a fresh build of the same files; after this it
        ranks exactly alike (~1.3 s for the standard library's 66k rows).
        """
        if self._table is None:
            return
        self._build_indexes(list(FULL_TEXT_COLUMNS), [])
        # Those rows are inside the indexes now: rewriting them would take them out again.
        self._loose_ids.clear()
        self.writes_since_consolidate = 0

    def _build_indexes(self, full_text: Sequence[str], scalar: Sequence[str]) -> None:
        # A full-text build keeps the cores only partly busy (the `text` one: ~1.5 s of CPU in
        # ~1.1 s on two cores): it gets a thread of its own while this one builds the rest.
        with ThreadPoolExecutor(max_workers=1) as pool:
            text = pool.submit(self._create_fts_index, "text") if "text" in full_text else None
            if "head" in full_text:
                self._create_fts_index("head")
            for column in scalar:
                self._table.create_scalar_index(column, index_type="BTREE")
            if text is not None:
                text.result()

    def _create_fts_index(self, column: str) -> None:
        # No stemming: it made the index three times slower to build (1.0 s against 2.9 s for the
        # stdlib) and changed tools/eval_search.py's figures by less than their noise. For `text`
        # (code), no ASCII folding and no stop-word removal either: code is ASCII, queries drop
        # stop words themselves (retrieval.query.STOPWORDS), and the build is ~15% faster.
        code = column == "text"
        self._table.create_fts_index(
            column,
            use_tantivy=False,
            replace=True,
            stem=False,
            ascii_folding=not code,
            remove_stop_words=not code,
        )

    def replace_files(
        self,
        paths: Sequence[str],
        rows: Sequence[dict[str, Any]],
        embed: Callable[[Sequence[dict[str, Any]]], np.ndarray] | None = None,
    ) -> None:
        """Make `rows` the complete set of rows for `paths`, writing only what differs.

        New and changed rows land in one commit, then rows past a file's new end are deleted in a
        second, so a reader sees the old rows, for a moment the new ones beside a few stale ones, then
        the new ones: never a gap. A killed run leaves the file in the manifest's in-flight list and the
        next run writes it again. One merge that deletes by source would be a single commit, but it
        joins against the whole table (~150 ms at 66k rows, against ~25 ms for this with the read of
        the stored rows), and rewriting unchanged rows leaves them outside the full-text index, which
        every query then scans.

        With `embed` (rows -> their vectors), every row of `paths` ends up with a vector, and only
        the rows about to be written are embedded: an edit embeds its new chunks, not the whole file.
        """
        if not paths:
            return
        if self._table is None:
            rows = _with_vectors(rows, embed)
            if rows:
                self._create(self._arrow(rows))
            return
        stored = self._stored_rows(paths)
        if stored is None:  # an id stored twice: no merge can tell the copies apart
            self._table.delete(in_filter("path", paths))
            self.append(_with_vectors(rows, embed))
            return
        needs_vector = embed is not None
        changed = [r for r in rows if not _same_row(stored.get(r["id"]), r, needs_vector)]
        changed = _with_vectors(changed, embed)
        wanted = {row["id"] for row in rows}
        stale = [id_ for id_ in stored if id_ not in wanted]
        if changed:
            data = self._arrow(changed)
            if any(row["id"] in stored for row in changed):
                merge = self._table.merge_insert("id")
                merge = merge.when_matched_update_all().when_not_matched_insert_all()
                merge.execute(data, on_bad_vectors="null")
            else:  # only new ids: an append, no join at all
                self._table.add(data, on_bad_vectors="null")
            self._loose_ids.update(row["id"] for row in changed)
            self.writes_since_consolidate += 1
        for where in in_filters("id", stale):
            self._table.delete(where)
        if changed or stale:
            self.writes_since_optimize += 1

    def _stored_rows(self, paths: Sequence[str]) -> dict[str, tuple[tuple, bool]] | None:
        """What the table holds for `paths`: by id, the compared columns and whether a vector is
        attached; None when an id occurs twice (a damaged table: deleting the files' rows and
        adding them again is the only repair, and leaves the files missing for a moment)."""
        columns = {name: name for name in _SAME_ROW_COLUMNS}
        if self.dim > 0:
            columns["has_vector"] = "vector IS NOT NULL"
        stored: dict[str, tuple[tuple, bool]] = {}
        where = in_filter("path", paths)
        for row in self._read(lambda q: q.where(where).select(columns)).to_pylist():
            if row["id"] in stored:
                return None
            values = tuple(row[name] for name in _SAME_ROW_COLUMNS)
            stored[row["id"]] = (values, bool(row.get("has_vector")))
        return stored

    def append(self, rows: Sequence[dict[str, Any]] | pa.Table) -> None:
        """Add rows for files that have none yet (a cold build): cheaper than a merge. A cold build
        passes a table of the lexical columns, as its worker processes built them."""
        if len(rows) == 0:
            return
        # Null vectors of the right shape, added here to a table without any, need none of
        # lancedb's checks for malformed vectors (a pass over every batch, ~5 us a row).
        lexical = isinstance(rows, pa.Table) and "vector" not in rows.column_names
        on_bad_vectors = "error" if lexical else "null"
        data = self._arrow(rows)
        if self._table is None:
            self._create(data, on_bad_vectors)
        else:
            self._table.add(data, on_bad_vectors=on_bad_vectors)
            self.writes_since_optimize += 1

    def delete_files(self, paths: Sequence[str]) -> None:
        if self._table is None or not paths:
            return
        for where in in_filters("path", paths):
            self._table.delete(where)
        self.writes_since_optimize += 1

    def set_vectors(self, items: Sequence[tuple[str, str, np.ndarray]]) -> None:
        """Attach vectors to rows by (id, hash); rows whose text changed since are left alone."""
        if self._table is None or not items:
            return
        schema = pa.schema(
            [
                pa.field("id", pa.string(), nullable=False),
                pa.field("hash", pa.string()),
                pa.field("vector", pa.list_(pa.float32(), self.dim), nullable=True),
            ]
        )
        vectors = np.asarray([v for _, _, v in items], dtype=np.float32).reshape(-1)
        data = pa.Table.from_arrays(
            [
                pa.array([i for i, _, _ in items], pa.string()),
                pa.array([h for _, h, _ in items], pa.string()),
                pa.FixedSizeListArray.from_arrays(pa.array(vectors), self.dim),
            ],
            schema=schema,
        )
        self._table.merge_insert(["id", "hash"]).when_matched_update_all().execute(data)
        self.writes_since_optimize += 1

    # -- maintenance -----------------------------------------------------------------------------

    def optimize(self, keep_versions_for: timedelta = timedelta(seconds=30)) -> None:
        """Compact files, fold new rows into the indexes and drop old versions so disk stays flat."""
        if self._table is None:
            return
        self._table.optimize(cleanup_older_than=keep_versions_for)
        self.writes_since_optimize = 0
        self._loose_ids.clear()
        self.writes_since_consolidate = 0

    def consolidate(self) -> None:
        """Gather the rows `replace_files` wrote since the last optimize into one fragment.

        Each edit leaves its rows in a fragment of their own, and a full-text search scans every
        fragment its index does not cover, ~0.3 ms apiece: after 40 edits, a query takes twice as
        long as on an optimized table. Merging those rows onto themselves is one commit, which a
        reader sees as no change at all; it costs ~45 ms for 40 edits' rows, where an optimize,
        which also folds them into the indexes, costs ~2 s.
        """
        self.writes_since_consolidate = 0
        # Past a few thousand rows, they came in big batches (a checkout), whose fragments are few:
        # rewriting them would cost more than it saves.
        if self._table is None or not 0 < len(self._loose_ids) <= CONSOLIDATE_MAX_ROWS:
            return
        ids = in_filter("id", sorted(self._loose_ids))
        rows = self._read(lambda q: q.where(ids).select(self.schema.names))
        if rows.num_rows:
            merge = self._table.merge_insert("id").when_matched_update_all()
            merge.execute(rows, on_bad_vectors="null")

    def ensure_vector_index(self, min_rows: int = VECTOR_INDEX_MIN_ROWS) -> bool:
        """Build the ANN index once enough rows have vectors; returns whether one exists."""
        if self._table is None or self.dim <= 0:
            return False
        if any(ix.index_type.upper().startswith("IVF") for ix in self._table.list_indices()):
            return True
        with_vectors = self._table.count_rows("vector IS NOT NULL")
        if with_vectors < min_rows:
            return False
        # IVF_FLAT: measured here at 50k x 384, it builds in ~5 s against ~25 s for IVF_HNSW_SQ and
        # ~2 min for IVF_PQ, answers in ~10 ms (brute force: ~140 ms) and keeps exact distances.
        partitions = max(16, min(MAX_PARTITIONS, with_vectors // 800))
        self._table.create_index(
            "vector", config=IvfFlat(distance_type="cosine", num_partitions=partitions)
        )
        return True

    def count(self) -> int:
        return 0 if self._table is None else self._table.count_rows()

    def unindexed_rows(self) -> dict[str, int]:
        """By index name, the rows it does not cover yet, which every search scans one by one."""
        if self._table is None:
            return {}
        return {
            ix.name: self._table.index_stats(ix.name).num_unindexed_rows
            for ix in self._table.list_indices()
        }

    def version_count(self) -> int:
        return 0 if self._table is None else len(self._table.list_versions())

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.rglob("*") if p.is_file())

    # -- reading ---------------------------------------------------------------------------------

    def _read(self, build: Callable[[Any], Any]) -> pa.Table:
        """Run the query `build` makes of a plain query, in one trip to LanceDB's event loop.

        Through the table's asynchronous face, since the synchronous query builder costs ~3 ms more
        a query here (a search's full-text query took ~9 ms, ~5.5 ms this way): it fetches the
        schema twice, looks on disk for a legacy full-text index, and crosses to the loop once per
        batch. `_table` is lancedb's own handle on that face (lancedb is pinned).
        """

        async def run() -> pa.Table:
            reader = await build(self._table._table.query()).to_batches()
            return pa.Table.from_batches(await reader.read_all(), reader.schema)

        return LOOP.run(run())

    def full_text(
        self,
        query: str,
        k: int,
        where: str | None = None,
        columns: Sequence[str] = META_COLUMNS,
    ) -> list[dict[str, Any]]:
        """BM25 over names and code, best first; `_score` is higher for better matches.

        Rows of equal score come in id order, and the k-th row is the same whichever of its equals
        Lance meets first: the answer depends on the rows, not on where they lie on disk, so an
        updated table answers as a fresh one of the same rows does.
        """
        if self._table is None or not query.strip() or k <= 0:
            return []
        mm = MultiMatchQuery(query, ["head", "text"], boosts=[HEAD_BOOST, 1.0])
        selected = [*columns, "_score"] if "id" in columns else [*columns, "id", "_score"]

        def build(q: Any, limit: int) -> Any:
            q = q.nearest_to_text(mm).select(selected).limit(limit)
            return q.where(where) if where else q

        limit = k + TIE_MARGIN
        while True:
            try:
                rows = self._read(partial(build, limit=limit)).to_pylist()
            except (RuntimeError, ValueError):
                return []  # Lance refused the query: the search answers from its other signals
            rows.sort(key=lambda row: (-row["_score"], row["id"]))
            # Every row is in, or the k-th row's equals all are (a lower score came after them).
            if len(rows) < limit or rows[-1]["_score"] < rows[k - 1]["_score"]:
                return rows[:k]
            limit *= 4

    def nearest(self, vector: np.ndarray, k: int, where: str | None = None) -> list[dict[str, Any]]:
        """Cosine neighbours, exactly; `_distance` is lower for better matches.

        The vector index is probed in every partition: its partitions were drawn from the vectors
        there were when it was built, so probing a few would answer differently before and after
        the same edits. All of them (~10 ms at 66k x 384) is what a brute-force scan answers, which
        Lance takes ~120 ms for without the index.
        """
        if self._table is None or self.dim <= 0:
            return []

        def build(q: Any) -> Any:
            q = q.nearest_to(vector.astype(np.float32)).column("vector").distance_type("cosine")
            q = q.nprobes(MAX_PARTITIONS)
            q = q.select([*META_COLUMNS, "_distance"]).limit(k)
            return q.where(where) if where else q

        return self._read(build).to_pylist()

    def rows_for_paths(
        self,
        paths: Sequence[str],
        limit: int = 10_000,
        *,
        with_text: bool = False,
        with_vector: bool = False,
        symbols: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """The rows of these files; with `symbols`, only the chunks of those symbols."""
        if self._table is None or not paths:
            return []
        columns = [*META_COLUMNS, "text", "hash"] if with_text else list(META_COLUMNS)
        if with_vector and self.dim > 0:
            columns.append("vector")
        where = in_filter("path", paths)
        if symbols:
            where += " AND " + in_filter("symbol", symbols)
        return self._read(lambda q: q.where(where).select(columns).limit(limit)).to_pylist()

    def rows_by_id(
        self, ids: Sequence[str], columns: Sequence[str] = META_COLUMNS
    ) -> list[dict[str, Any]]:
        if self._table is None or not ids:
            return []
        where = in_filter("id", ids)
        return self._read(lambda q: q.where(where).select(list(columns))).to_pylist()

    def texts(self, ids: Sequence[str]) -> dict[str, str]:
        """The text of the given chunks, by id."""
        return {row["id"]: row["text"] for row in self.rows_by_id(ids, ["id", "text"])}

    def text_heads(self, ids: Sequence[str], lines: int) -> dict[str, str]:
        """The first `lines` lines of the given chunks' text (what a result shows), by id."""
        return {key: first_lines(text, lines) for key, text in self.texts(ids).items()}

    def scan(
        self, *, with_text: bool = False, with_vector: bool = False
    ) -> Iterator[pa.RecordBatch]:
        """Every row's metadata (text, vector) in batches, for a reader that keeps them in memory."""
        if self._table is None:
            return
        columns = [*META_COLUMNS, "text"] if with_text else list(META_COLUMNS)
        if with_vector and self.dim > 0:
            columns.append("vector")
        yield from self._table.search().select(columns).limit(None).to_batches(SCAN_BATCH_ROWS)
