"""The index's bookkeeping: what was indexed from which file, and each file's definitions and references.

SQLite (in the standard library) suits this small, update-heavy table: a per-file upsert is one
transaction, a name lookup is an index probe, and the repo map reads every file's symbols in one query
without touching the chunk table. Rows here are written only after the file's chunks are in the chunk
store, so a crash leaves at worst a stale row, which makes the next run redo that file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    hash TEXT NOT NULL,
    language TEXT NOT NULL,
    skip_reason TEXT,
    chunks INTEGER NOT NULL,
    syntax_errors INTEGER NOT NULL DEFAULT 0,
    invalid_utf8 INTEGER NOT NULL DEFAULT 0,
    refs TEXT NOT NULL DEFAULT '[]',
    embedded INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS defs (
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    symbol TEXT NOT NULL,
    kind TEXT NOT NULL,
    line INTEGER NOT NULL,
    signature TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS defs_name ON defs(name);
CREATE INDEX IF NOT EXISTS defs_path ON defs(path);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_IN_LIST_PARAMETERS = 900  # per query: SQLite allows 999 on older builds
# Inside every transaction that changes what a file's rows are (see `Manifest.generation`).
_BUMP_GENERATION = """
INSERT INTO meta VALUES ('generation', '1')
ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1
"""


@dataclass(frozen=True, slots=True)
class FileState:
    """What the last successful index of a file saw; equal stat means the file need not be read."""

    mtime_ns: int
    size: int
    hash: str
    skip_reason: str | None


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str
    mtime_ns: int
    size: int
    hash: str
    language: str
    skip_reason: str | None
    chunks: int
    syntax_errors: bool = False
    invalid_utf8: bool = False
    refs: Sequence[str] = ()
    # (name, symbol, kind, line, signature) for each definition
    defs: Sequence[tuple[str, str, str, int, str]] = ()


class DefRow(NamedTuple):
    """One definition as stored; a tuple, because the repo map reads tens of thousands at once."""

    path: str
    name: str
    symbol: str
    kind: str
    line: int
    signature: str


def encode_refs(refs: Sequence[str]) -> str:
    """A file's references as the JSON array the `refs` column holds.

    References are identifiers, which JSON needs no escape for: joined, they give json.dumps's
    text in a tenth of its time. Anything else goes through json.dumps.
    """
    if not refs:
        return "[]"
    names = "".join(refs)
    if names.isascii() and names.isprintable() and '"' not in names and "\\" not in names:
        return '["' + '", "'.join(refs) + '"]'
    return json.dumps(list(refs))


class Manifest:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def states(self) -> dict[str, FileState]:
        rows = self._db.execute("SELECT path, mtime_ns, size, hash, skip_reason FROM files")
        return {p: FileState(m, s, h, r) for p, m, s, h, r in rows}

    def upsert(
        self,
        records: Iterable[FileRecord],
        *,
        embedded: bool = False,
        refs_json: Sequence[str | None] | None = None,
    ) -> None:
        """Record files as indexed; `embedded` says their rows were written with their vectors.

        `refs_json`, per record, is its references already encoded by `encode_refs` (a worker
        process does it, off this process), or None to encode the record's `refs` here.
        """
        records = list(records)
        if not records:
            return
        encoded = refs_json if refs_json is not None else [None] * len(records)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            paths = [(r.path,) for r in records]
            db.executemany("DELETE FROM defs WHERE path = ?", paths)
            db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        r.path,
                        r.mtime_ns,
                        r.size,
                        r.hash,
                        r.language,
                        r.skip_reason,
                        r.chunks,
                        int(r.syntax_errors),
                        int(r.invalid_utf8),
                        refs if refs is not None else encode_refs(r.refs),
                        int(embedded or r.chunks == 0),
                    )
                    for r, refs in zip(records, encoded, strict=True)
                ],
            )
            db.executemany(
                "INSERT INTO defs VALUES (?,?,?,?,?,?)",
                [(r.path, *d) for r in records for d in r.defs],
            )
            db.execute(_BUMP_GENERATION)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def touch(self, stats: Iterable[tuple[str, int, int]]) -> None:
        """Record a new stat for files whose bytes did not change (a checkout that restored them)."""
        self._db.executemany(
            "UPDATE files SET mtime_ns = ?, size = ? WHERE path = ?",
            [(mtime, size, path) for path, mtime, size in stats],
        )

    def delete(self, paths: Iterable[str]) -> None:
        keys = [(p,) for p in paths]
        if not keys:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("DELETE FROM files WHERE path = ?", keys)
            self._db.executemany("DELETE FROM defs WHERE path = ?", keys)
            self._db.execute(_BUMP_GENERATION)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def unembedded(self, limit: int | None = None) -> list[tuple[str, int]]:
        """Files whose chunks still lack vectors, with their chunk counts; all of them by default."""
        rows = self._db.execute(
            "SELECT path, chunks FROM files WHERE embedded = 0 AND skip_reason IS NULL LIMIT ?",
            (-1 if limit is None else limit,),
        )
        return rows.fetchall()

    def mark_embedded(self, paths: Iterable[str]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("UPDATE files SET embedded = 1 WHERE path = ?", [(p,) for p in paths])
            db.execute(_BUMP_GENERATION)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def generation(self) -> int:
        """A number that changes whenever files' rows or vectors change: a long-lived reader
        compares it to know, in one probe, whether anything it holds is stale."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return 0 if row is None else int(row[0])

    def versions(self) -> dict[str, tuple[str, int]]:
        """Each indexed file's content hash and whether its vectors are stored."""
        rows = self._db.execute("SELECT path, hash, embedded FROM files WHERE skip_reason IS NULL")
        return {path: (digest, embedded) for path, digest, embedded in rows}

    def pending_chunks(self) -> int:
        """How many chunks wait for a vector: tracked here so that nobody scans the vectors."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(chunks), 0) FROM files WHERE embedded = 0 AND skip_reason IS NULL"
        ).fetchone()
        return int(row[0])

    def chunk_count(self) -> int:
        row = self._db.execute(
            "SELECT COALESCE(SUM(chunks), 0) FROM files WHERE skip_reason IS NULL"
        ).fetchone()
        return int(row[0])

    def paths(self) -> list[str]:
        return [p for (p,) in self._db.execute("SELECT path FROM files WHERE skip_reason IS NULL")]

    def references(self) -> list[tuple[str, str]]:
        """Each indexed file's path and distinct references, as the JSON text the `refs` column
        holds."""
        rows = self._db.execute("SELECT path, refs FROM files WHERE skip_reason IS NULL")
        return [(path, refs or "[]") for path, refs in rows]

    def file_count(self) -> int:
        return self._db.execute("SELECT count(*) FROM files WHERE skip_reason IS NULL").fetchone()[
            0
        ]

    def skipped(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        rows = self._db.execute(
            "SELECT skip_reason, path FROM files WHERE skip_reason IS NOT NULL ORDER BY path"
        )
        for reason, path in rows:
            out.setdefault(reason, []).append(path)
        return out

    def flagged(self, column: str) -> list[str]:
        if column not in ("syntax_errors", "invalid_utf8"):
            raise ValueError(column)
        rows = self._db.execute(f"SELECT path FROM files WHERE {column} = 1 ORDER BY path")
        return [p for (p,) in rows]

    def _select_in(self, sql: str, values: Iterable[Any], width: int = 1) -> Iterator[tuple]:
        """Rows of `sql`, whose `{marks}` stands for the placeholders of a list of the distinct
        `values` (tuples of `width` values each when `width` > 1), queried in parts that stay
        within SQLite's limit on parameters."""
        values = list(dict.fromkeys(values))
        mark = "?" if width == 1 else "(" + ",".join("?" * width) + ")"
        size = _IN_LIST_PARAMETERS // width
        for start in range(0, len(values), size):
            part = values[start : start + size]
            parameters = part if width == 1 else [value for key in part for value in key]
            yield from self._db.execute(sql.format(marks=",".join([mark] * len(part))), parameters)

    def definitions_named(self, names: Iterable[str]) -> list[DefRow]:
        sql = "SELECT path, name, symbol, kind, line, signature FROM defs WHERE name IN ({marks})"
        return [DefRow(*row) for row in self._select_in(sql, names)]

    def definition_counts(self, names: Iterable[str]) -> dict[str, int]:
        """How many files define each name: a name defined in one place is strong evidence."""
        sql = "SELECT name, COUNT(DISTINCT path) FROM defs WHERE name IN ({marks}) GROUP BY name"
        return dict(self._select_in(sql, names))

    def symbols(self) -> Iterator[tuple[str, list[DefRow], list[str]]]:
        """Every indexed file with its definitions and references, a row per definition: for
        tools that want them all (tools/bench_index.py). The repo map reads `symbol_columns`."""
        defs: dict[str, list[DefRow]] = {}
        make = DefRow._make
        for row in self._db.execute(
            "SELECT path, name, symbol, kind, line, signature FROM defs ORDER BY path, line"
        ):
            defs.setdefault(row[0], []).append(make(row))
        for path, refs in self._db.execute(
            "SELECT path, refs FROM files WHERE skip_reason IS NULL ORDER BY path"
        ):
            yield path, defs.get(path, []), json.loads(refs)

    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value, sort_keys=True))
        )

    def symbol_columns(self) -> SymbolColumns:
        """Every indexed file's references and every definition's file, name and line, for the map.

        A row per definition, as `symbols()` reads them, costs most of a map of a large repository.
        Here SQLite joins each file's names and lines into one string each, which Python splits in
        C; the rest of a definition is read for the few the map shows (`definitions_at`). A name
        holding the separator, NUL, would make too many names; then the rows are read one by one.
        """
        files = self._db.execute(
            "SELECT path, refs FROM files WHERE skip_reason IS NULL ORDER BY path"
        ).fetchall()
        groups = self._db.execute(
            "SELECT path, count(*), group_concat(name, char(0)), group_concat(line, ',')"
            " FROM defs GROUP BY path ORDER BY path"
        ).fetchall()
        defining = [path for path, _, _, _ in groups]
        counts = [count for _, count, _, _ in groups]
        names = "\0".join(names for _, _, names, _ in groups).split("\0") if groups else []
        lines = ",".join(lines for _, _, _, lines in groups).split(",") if groups else []
        if len(names) != sum(counts):
            rows = self._db.execute("SELECT path, name, line FROM defs ORDER BY path").fetchall()
            per_path: dict[str, int] = {}
            for path, _, _ in rows:
                per_path[path] = per_path.get(path, 0) + 1
            defining, counts = list(per_path), list(per_path.values())
            names = [name for _, name, _ in rows]
            lines = [line for _, _, line in rows]
        return SymbolColumns(
            paths=[path for path, _ in files],
            references=[refs for _, refs in files],
            defining=defining,
            counts=counts,
            names=names,
            lines=list(map(int, lines)),
        )

    def definitions_at(self, keys: Iterable[tuple[str, str, int]]) -> list[DefRow]:
        """The definitions with these (path, name, line): the few a repo map shows."""
        sql = (
            "SELECT d.path, d.name, d.symbol, d.kind, d.line, d.signature FROM (VALUES {marks}) AS k"
            " JOIN defs AS d ON d.name = k.column2 AND d.path = k.column1 AND d.line = k.column3"
        )
        return list(map(DefRow._make, self._select_in(sql, keys, width=3)))

    def states_for(self, paths: Iterable[str], dirs: Iterable[str] = ()) -> dict[str, FileState]:
        """`states()` of just these files and of the files under these directories (ending '/'):
        a watcher's batch of one file costs a lookup, not a read of every file's state."""
        query = "SELECT path, mtime_ns, size, hash, skip_reason FROM files WHERE "
        rows = self._select_in(query + "path IN ({marks})", paths)
        out = {p: FileState(m, s, h, r) for p, m, s, h, r in rows}
        for prefix in dirs:
            # Every path starting 'd/' sorts from 'd/' up to, not including, 'd0' ('0' follows '/').
            bounds = (prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1))
            rows = self._db.execute(query + "path >= ? AND path < ?", bounds)
            out.update((p, FileState(m, s, h, r)) for p, m, s, h, r in rows)
        return out


class SymbolColumns(NamedTuple):
    """What `Manifest.symbol_columns` reads: files in path order, definitions file by file."""

    paths: list[str]  # every indexed file
    references: list[str]  # per file: the distinct identifiers it uses, as a JSON array
    defining: list[str]  # the files with definitions (one may no longer be indexed), in path order
    counts: list[int]  # per file of `defining`: how many definitions it has
    names: list[str]  # per definition
    lines: list[int]
