"""The recall index: LanceDB tables mirroring the session transcripts and the agent's notes.

The JSON Lines files are the source of truth and these tables can always be rebuilt from them, so
any doubt about a table (it fails to open, its schema or embedder differs) is settled by dropping
it. Vectors are nullable: rows are searchable by text the moment they land, and vectors are
attached afterwards by id. Other processes' writes are seen at once (read consistency zero).
Importing this module is cheap: lancedb, pyarrow and numpy load when a table is first opened.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcode.store.filters import in_filters
from mcode.store.lancedb_import import import_lancedb

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MESSAGES = "messages"
NOTES = "notes"
# Every write adds a fragment; past this many, queries slow down until they are compacted.
MAX_FRAGMENTS = 64
KEEP_VERSIONS_FOR = timedelta(seconds=30)


def _schema(fields: list[pa.Field], dim: int, embedder_id: str) -> pa.Schema:
    import pyarrow as pa

    if dim > 0:
        fields.append(pa.field("vector", pa.list_(pa.float32(), dim), nullable=True))
    meta = {"mcode_recall_schema": str(SCHEMA_VERSION), "mcode_embedder": embedder_id}
    return pa.schema(fields, metadata=meta)


def message_schema(dim: int = 0, embedder_id: str = "") -> pa.Schema:
    """One row per transcript message; `text` is the content plus any tool calls."""
    import pyarrow as pa

    fields = [
        pa.field("id", pa.string(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("role", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("text", pa.string()),
    ]
    return _schema(fields, dim, embedder_id)


def note_schema(dim: int = 0, embedder_id: str = "") -> pa.Schema:
    import pyarrow as pa

    fields = [
        pa.field("id", pa.string(), nullable=False),
        pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("text", pa.string()),
    ]
    return _schema(fields, dim, embedder_id)


# The table ----------------------------------------------------------------------------------------


def _compatible(found: pa.Schema, wanted: pa.Schema) -> bool:
    """Same columns; and the same embedder, unless the caller has none (it then ignores vectors)."""
    meta = found.metadata or {}
    if meta.get(b"mcode_recall_schema") != str(SCHEMA_VERSION).encode():
        return False
    plain = [f for f in found if f.name != "vector"]
    if plain != [f for f in wanted if f.name != "vector"]:
        return False
    if "vector" not in wanted.names:
        return True
    wanted_id = (wanted.metadata or {}).get(b"mcode_embedder")
    return (
        "vector" in found.names
        and found.field("vector").type == wanted.field("vector").type
        and meta.get(b"mcode_embedder") == wanted_id
    )


class TextTable:
    """One table of texts with metadata and an optional vector column."""

    def __init__(self, directory: Path, name: str, schema: pa.Schema) -> None:
        lancedb = import_lancedb()
        warnings.filterwarnings("ignore", module="lancedb")
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.name = name
        self.wanted = schema
        self._db = lancedb.connect(str(directory), read_consistency_interval=timedelta(0))
        self._table: Any = None
        self._open()

    def _open(self) -> None:
        """Adopt the table on disk if it is sound and matches; otherwise drop it for a rebuild."""
        if not self._listed():
            return
        try:
            table = self._db.open_table(self.name)
            found = table.schema
            table.count_rows()
        except Exception as exc:  # lance raises many kinds for a half-written or damaged table
            log.warning("recall index %s is damaged (%s); rebuilding it", self.name, exc)
            self.drop()
            return
        if not _compatible(found, self.wanted):
            log.info("recall index %s has another format or embedder; rebuilding it", self.name)
            self.drop()
            return
        self._table = table

    def _listed(self) -> bool:
        return self.name in self._db.list_tables().tables

    def drop(self) -> None:
        self._table = None
        try:
            self._db.drop_table(self.name)
        except Exception:  # too damaged for lance to drop: remove its directory
            shutil.rmtree(self.directory / f"{self.name}.lance", ignore_errors=True)

    @property
    def schema(self) -> pa.Schema:
        """What rows are written as: the table's own schema once it exists."""
        return self.wanted if self._table is None else self._table.schema

    @property
    def has_vectors(self) -> bool:
        return "vector" in self.wanted.names and "vector" in self.schema.names

    # -- writing ---------------------------------------------------------------------------------

    def _arrow(self, rows: Sequence[dict[str, Any]]) -> pa.Table:
        import pyarrow as pa

        schema = self.schema
        if "vector" in schema.names:
            rows = [{"vector": None, **row} for row in rows]
        return pa.Table.from_pylist(list(rows), schema=schema)

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append rows whose ids are new; creates the table with its indexes on first use."""
        if not rows:
            return
        if self._table is None and self._listed():  # another process created it meanwhile
            self._open()
        data = self._arrow(rows)
        if self._table is not None:
            self._table.add(data, on_bad_vectors="null")
            return
        table = self._db.create_table(
            self.name, data=data, schema=self.wanted, on_bad_vectors="null"
        )
        table.create_scalar_index("id", index_type="BTREE")
        table.create_fts_index("text", use_tantivy=False, replace=True)
        self._table = table

    def add_missing(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append the rows whose ids the table lacks; a repeated call changes nothing."""
        self._merge(rows, replace=False)

    def _merge(self, rows: Sequence[dict[str, Any]], *, replace: bool) -> None:
        """Insert the rows whose ids are new; with `replace`, overwrite the others too."""
        if not rows:
            return
        if self._table is None:
            self.add(rows)
            return
        merge = self._table.merge_insert("id")
        if replace:
            merge = merge.when_matched_update_all()
        merge.when_not_matched_insert_all().execute(self._arrow(rows), on_bad_vectors="null")

    def delete_ids(self, ids: Sequence[str]) -> None:
        if self._table is None:
            return
        for where in in_filters("id", ids):
            self._table.delete(where)

    def set_vectors(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Attach vectors by id; rows deleted meanwhile are simply skipped."""
        if self._table is None or not ids or not self.has_vectors:
            return
        import numpy as np
        import pyarrow as pa

        vector_type = self.schema.field("vector").type
        dim = vector_type.list_size
        flat = pa.array(np.asarray(vectors, dtype=np.float32).reshape(-1))
        data = pa.Table.from_arrays(
            [pa.array(list(ids), pa.string()), pa.FixedSizeListArray.from_arrays(flat, dim)],
            schema=pa.schema(
                [pa.field("id", pa.string(), nullable=False), pa.field("vector", vector_type)]
            ),
        )
        self._table.merge_insert("id").when_matched_update_all().execute(data)

    def compact_if_fragmented(self) -> bool:
        """Fold many small appends together and fold new rows into the indexes."""
        if self._table is None:
            return False
        if self._table.stats()["fragment_stats"]["num_fragments"] <= MAX_FRAGMENTS:
            return False
        self._table.optimize(cleanup_older_than=KEEP_VERSIONS_FOR)
        return True

    # -- reading ---------------------------------------------------------------------------------

    def count(self, where: str | None = None) -> int:
        if self._table is None:
            return 0
        return self._table.count_rows(where) if where else self._table.count_rows()

    def ids(self) -> list[str]:
        if self._table is None:
            return []
        found = self._table.search().select(["id"]).limit(None).to_arrow()
        return found.column("id").to_pylist()

    def pending_vectors(self, limit: int) -> list[dict[str, Any]]:
        """Rows whose vector has not been computed yet."""
        if self._table is None or not self.has_vectors:
            return []
        query = self._table.search().where("vector IS NULL").select(["id", "text"])
        return query.limit(limit).to_list()

    def _columns(self) -> list[str]:
        return [n for n in self.schema.names if n != "vector"]

    def full_text(self, query: str, k: int, where: str | None = None) -> list[dict[str, Any]]:
        """BM25 over `text`, best first."""
        if self._table is None or not query.strip():
            return []
        search = self._table.search(query, query_type="fts", fts_columns="text")
        if where:
            search = search.where(where, prefilter=True)
        return search.select([*self._columns(), "_score"]).limit(k).to_list()

    def nearest(self, vector: np.ndarray, k: int, where: str | None = None) -> list[dict[str, Any]]:
        """Cosine neighbours among rows that have a vector, best first."""
        if self._table is None or not self.has_vectors:
            return []
        import numpy as np

        search = self._table.search(
            np.asarray(vector, dtype=np.float32), vector_column_name="vector"
        ).metric("cosine")
        if where:
            search = search.where(where, prefilter=True)
        return search.select([*self._columns(), "_distance"]).limit(k).to_list()

    def scan(
        self, where: str | None, columns: Sequence[str] | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Rows matching `where`, in no particular order."""
        if self._table is None:
            return []
        search = self._table.search()
        if where:
            search = search.where(where)
        return search.select(list(columns or self._columns())).limit(limit).to_list()
