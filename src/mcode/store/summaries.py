"""Module summaries in archival memory: one LanceDB row per file and per directory.

A row says which content it was made from (`source_hash`: the file's text without comments and
whitespace, or for a directory its children's summaries), so that a summary is current exactly
when that hash still holds, whoever wrote it. `file_hash` is the raw content hash last seen for
the same `source_hash`: while it matches the index's, nothing needs reading. Rows are written one
summary at a time or in small batches, each a commit: a pass killed at any point keeps every
summary it finished. Vectors are optional and attach later by (id, source_hash).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcode.store.filters import in_filter
from mcode.store.journals import TextTable, _compatible, _schema

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

TABLE = "summaries"
LEVELS = ("file", "dir")
STRUCTURAL = "structural"
MODEL_PREFIX = "model:"  # a model summary's generator: "model:openai/gpt-4.1-mini"
SEPARATOR = " — "  # a summary's first line: `PATH — what it is for`
PURPOSE_MAX_CHARS = 300  # a structural one has at most 240
_STATE_COLUMNS = ["id", "path", "level", "source_hash", "file_hash", "generator", "time", "tokens"]


def summary_schema(dim: int = 0, embedder_id: str = "") -> pa.Schema:
    import pyarrow as pa

    fields = [
        pa.field("id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("level", pa.string(), nullable=False),
        pa.field("source_hash", pa.string(), nullable=False),
        pa.field("file_hash", pa.string()),
        pa.field("generator", pa.string(), nullable=False),
        pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("tokens", pa.int64(), nullable=False),
        pa.field("text", pa.string()),
    ]
    return _schema(fields, dim, embedder_id)


def purpose_line(text: str, limit: int = PURPOSE_MAX_CHARS) -> str:
    """What a summary's first line says a module is for, without the path before it, and cut at
    `limit` characters: a model may write its whole summary on one line."""
    line = text.split("\n", 1)[0]
    line = line.split(SEPARATOR, 1)[1] if SEPARATOR in line else line
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def summary_id(level: str, path: str) -> str:
    return f"{level}:{path}"


def is_model(generator: str) -> bool:
    return generator.startswith(MODEL_PREFIX)


@dataclass(frozen=True, slots=True)
class Summary:
    """One module's summary. `path` is repo-relative; a directory's has no trailing slash and the
    repository's own is "."."""

    path: str
    level: str  # "file" or "dir"
    source_hash: str
    text: str
    generator: str  # "structural" or "model:<litellm name>"
    time: datetime
    tokens: int = 0  # spent on it (0 for a structural one)
    file_hash: str = ""

    @property
    def id(self) -> str:
        return summary_id(self.level, self.path)

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "level": self.level,
            "source_hash": self.source_hash,
            "file_hash": self.file_hash,
            "generator": self.generator,
            "time": self.time,
            "tokens": self.tokens,
            "text": self.text,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Summary:
        return cls(
            path=row["path"],
            level=row["level"],
            source_hash=row["source_hash"],
            text=row.get("text") or "",
            generator=row["generator"],
            time=row["time"],
            tokens=int(row["tokens"]),
            file_hash=row.get("file_hash") or "",
        )


class SummaryStore:
    """The summaries table of one repository. One process writes it (the sleep pass holds
    `Paths.sleep_lock`, and opens it with `writer`); any number read. Only the writer drops a
    table it cannot use (damaged, or made for another embedder) to rebuild it: a reader that
    met one being created would otherwise drop it under the writer."""

    def __init__(
        self, directory: Path, dim: int = 0, embedder_id: str = "", *, writer: bool = False
    ) -> None:
        self._table = _SummaryTable(directory, TABLE, summary_schema(dim, embedder_id), writer)
        self._purposes: dict[str, str] = {}
        self._purposes_version: int | None = None

    def put(self, summaries: Sequence[Summary]) -> None:
        """Write these summaries in one commit, replacing any of the same path and level."""
        self._table.upsert([s.row() for s in summaries])

    def set_file_hashes(self, items: Iterable[tuple[str, str]]) -> None:
        """Record, by id, the raw content hash a summary still holds for (an edit to comments or
        blank lines changes the file but not what its summary was made from)."""
        self._table.update_column("file_hash", list(items))

    def delete(self, ids: Sequence[str]) -> None:
        self._table.delete_ids(list(ids))

    def states(self) -> dict[str, Summary]:
        """Every summary by id, without its text: what a pass compares with the index."""
        rows = self._table.scan(None, _STATE_COLUMNS)
        return {row["id"]: Summary.from_row(row) for row in rows}

    def get(self, level: str, path: str) -> Summary | None:
        rows = self._table.scan(in_filter("id", [summary_id(level, path)]), limit=1)
        return Summary.from_row(rows[0]) if rows else None

    def texts(self, ids: Sequence[str]) -> dict[str, str]:
        if not ids:
            return {}
        rows = self._table.scan(in_filter("id", ids), ["id", "text"])
        return {row["id"]: row["text"] or "" for row in rows}

    def pending_vectors(self, limit: int) -> list[dict[str, Any]]:
        """Summaries without a vector yet: id and text."""
        return self._table.pending_vectors(limit)

    def set_vectors(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        self._table.set_vectors(ids, vectors)

    def count(self) -> int:
        return self._table.count()

    def search_files(self, query: str, k: int) -> list[str]:
        """The files whose summary matches `query` in full text, best first: what a summary
        says a module is for finds it even when its code words differ from the query's."""
        rows = self._table.reading().full_text(query, k, "level = 'file'")
        return [row["path"] for row in rows]

    def purposes(self, paths: Sequence[str]) -> dict[str, str]:
        """What each file's summary says it is for (its first line, without the path), for the
        files that have one. Every search asks: the lines are read once per table version (a
        query per search cost ~10 ms at 2,400 summaries, half a search's time)."""
        table = self._table.reading()
        version = table.version  # before the read: a commit meanwhile is read again next time
        if version != self._purposes_version:
            rows = table.scan("level = 'file'", ["path", "text"])
            self._purposes = {r["path"]: purpose_line(r["text"]) for r in rows if r["text"]}
            self._purposes_version = version
        return {path: self._purposes[path] for path in paths if path in self._purposes}

    def compact(self) -> None:
        """Fold a pass's many small commits together, so that readers stay fast."""
        self._table.compact_if_fragmented()


class _SummaryTable(TextTable):
    def __init__(self, directory: Path, name: str, schema: pa.Schema, writer: bool) -> None:
        self._writer = writer
        super().__init__(directory, name, schema)

    def _open(self) -> None:
        if self._writer:
            super()._open()
            return
        if not self._listed():
            return
        try:
            table = self._db.open_table(self.name)
            found = table.schema
            table.count_rows()
        except Exception:  # half-created or damaged: nothing to read yet
            return
        if not _compatible(found, self.wanted):  # an older format: nothing to read until the
            return  # next pass rebuilds it
        self._table = table

    @property
    def version(self) -> int | None:
        """The table's version as last committed by anyone; None while there is no table."""
        return None if self._table is None else self._table.version

    def reading(self) -> _SummaryTable:
        """Itself, after looking again for a table that was missing when it was opened: a
        long-lived reader (a session's searcher) sees the first pass's summaries."""
        if self._table is None and not self._writer:
            self._open()
        return self

    def upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        self._merge(rows, replace=True)

    def update_column(self, column: str, items: Sequence[tuple[str, str]]) -> None:
        """Set one string column by id; ids no longer present are skipped."""
        if self._table is None or not items:
            return
        import pyarrow as pa

        schema = pa.schema(
            [pa.field("id", pa.string(), nullable=False), pa.field(column, pa.string())]
        )
        keys, values = zip(*items, strict=True)
        data = pa.Table.from_arrays([pa.array(keys), pa.array(values)], schema=schema)
        self._table.merge_insert("id").when_matched_update_all().execute(data)
