"""The per-file work of indexing: read, check, redact, parse, chunk. Runs in worker processes on big
jobs, so it imports nothing heavy beyond tree-sitter (and pyarrow, only when asked for columns) and
returns plain picklable data.

Secret values are redacted before parsing, so that no chunk, signature, docstring, reference or
vector holds one; redaction keeps every line, so line numbers stay those of the file.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcode.index.chunker import parse_file
from mcode.index.discover import read_source
from mcode.index.languages import language_for_path
from mcode.index.model import Chunk
from mcode.index.rows import chunk_rows, row_values, rows_batch
from mcode.secrets import redact
from mcode.store.manifest import FileRecord, encode_refs

if TYPE_CHECKING:
    import pyarrow as pa


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
    # The references as the manifest stores them, encoded here: a list of hundreds of names costs
    # more to pickle and unpickle than to encode, and the encoding is off the main process.
    refs_json: str | None = None


@dataclass(slots=True)
class BatchResult:
    """Several files' results; with `columns`, their rows (record.chunks each, in the order of
    `results`) travel as one Arrow batch and each result's `rows` is empty."""

    results: list[FileResult]
    columns: pa.RecordBatch | None = None


def exit_with_parent() -> None:
    """A pool worker's initializer: end this worker as soon as the process that asked for it dies.

    Otherwise the workers of a killed `mcode index` (~230 MB each) finish their batches and then wait
    on the task queue for good, since its writing end lives on in every sibling. The parent's
    sentinel is a pipe only the asking process (mcode, not the fork server) holds open, so it is at
    its end once mcode is gone. With the workers gone, the fork server and the resource tracker see
    their last client leave and exit too.
    """
    # Ctrl-C reaches the whole process group, but it is the parent's to handle: in the REPL it
    # cancels a turn, and must not break the indexing the session runs in the background.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    sentinel = parent.sentinel

    def wait_for_parent() -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(1)

    threading.Thread(target=wait_for_parent, name="mcode-exit-with-parent", daemon=True).start()


def process_file(task: FileTask) -> FileResult:
    record, refs, chunks = _process(task)
    if chunks is None:
        return FileResult(record, unchanged=True)
    return FileResult(record, chunk_rows(chunks), refs_json=refs)


def process_batch(tasks: Sequence[FileTask], columnar: bool) -> BatchResult:
    if not columnar:
        return BatchResult([process_file(task) for task in tasks])
    results: list[FileResult] = []
    rows: list[tuple[Any, ...]] = []
    for task in tasks:
        record, refs, chunks = _process(task)
        results.append(FileResult(record, unchanged=chunks is None, refs_json=refs))
        if chunks:
            rows.extend(row_values(chunks))
    return BatchResult(results, rows_batch(rows))


def _process(task: FileTask) -> tuple[FileRecord, str | None, list[Chunk] | None]:
    """A file's record (its references left out), the references encoded for the manifest, and
    its chunks; None for chunks when its bytes are the same as last time."""
    source = read_source(Path(task.abspath), task.path, task.max_file_bytes)
    if source.content_hash and source.content_hash == task.previous_hash:
        record = FileRecord(task.path, task.mtime_ns, task.size, source.content_hash, "", None, 0)
        return record, None, None
    if source.text is None:
        reason = source.skip_reason or "unreadable"
        record = FileRecord(task.path, task.mtime_ns, task.size, source.content_hash, "", reason, 0)
        return record, None, []
    text = redact(source.text)
    head = text[:200].split("\n", 1)[0]
    parsed = parse_file(task.path, text, language_for_path(task.path, head))
    record = FileRecord(
        path=task.path,
        mtime_ns=task.mtime_ns,
        size=task.size,
        hash=source.content_hash,
        language=parsed.language,
        skip_reason=None,
        chunks=len(parsed.chunks),
        syntax_errors=parsed.syntax_errors,
        invalid_utf8=source.invalid_utf8,
        defs=[(d.name, d.symbol, d.kind, d.line, d.signature) for d in parsed.definitions],
    )
    return record, encode_refs(parsed.references), parsed.chunks
