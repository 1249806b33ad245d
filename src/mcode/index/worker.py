"""The per-file work of indexing: read, check, parse, chunk. Runs in worker processes on big jobs, so it
imports nothing heavy beyond tree-sitter and returns plain picklable data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcode.index.chunker import parse_file
from mcode.index.discover import read_source
from mcode.index.languages import language_for_path
from mcode.index.rows import chunk_rows
from mcode.store.manifest import FileRecord


@dataclass(frozen=True, slots=True)
class FileTask:
    path: str
    abspath: str
    size: int
    mtime_ns: int
    max_file_bytes: int
    previous_hash: str | None


@dataclass(slots=True)
class FileResult:
    record: FileRecord
    rows: list[dict[str, Any]] = field(default_factory=list)
    unchanged: bool = False  # same bytes as last time: only the stat needs recording


def process_file(task: FileTask) -> FileResult:
    source = read_source(Path(task.abspath), task.path, task.max_file_bytes)
    if source.content_hash and source.content_hash == task.previous_hash:
        record = FileRecord(task.path, task.mtime_ns, task.size, source.content_hash, "", None, 0)
        return FileResult(record, unchanged=True)
    if source.text is None:
        reason = source.skip_reason or "unreadable"
        record = FileRecord(task.path, task.mtime_ns, task.size, source.content_hash, "", reason, 0)
        return FileResult(record)
    head = source.text[:200].split("\n", 1)[0]
    parsed = parse_file(task.path, source.text, language_for_path(task.path, head))
    rows = chunk_rows(parsed.chunks)
    record = FileRecord(
        path=task.path,
        mtime_ns=task.mtime_ns,
        size=task.size,
        hash=source.content_hash,
        language=parsed.language,
        skip_reason=None,
        chunks=len(rows),
        syntax_errors=parsed.syntax_errors,
        invalid_utf8=source.invalid_utf8,
        refs=parsed.references,
        defs=[(d.name, d.symbol, d.kind, d.line, d.signature) for d in parsed.definitions],
    )
    return FileResult(record, rows)
