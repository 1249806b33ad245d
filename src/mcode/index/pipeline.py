"""Keeping archival memory in step with the files: discover → read/parse → write → embed.

An unchanged file costs one stat (its mtime and size match the manifest). Changed files are parsed in
worker processes when there are many. Rows reach the chunk store before the manifest records them, so a
run killed at any point leaves work that the next run redoes, never rows the manifest has forgotten.
Vectors come last: the lexical index is complete and searchable before the first vector is computed.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mcode.config import Settings, ensure_private_dir
from mcode.index.discover import Discovery, SourceFile, discover, discover_paths
from mcode.index.ignore import is_ignore_file
from mcode.index.priority import embedding_order
from mcode.index.rows import DEFAULT_EMBEDDING_STYLE, EMBEDDING_STYLES
from mcode.index.worker import (
    BatchResult,
    FileResult,
    FileTask,
    exit_with_parent,
    process_batch,
)
from mcode.store import IndexLock, Manifest, check_index_dir
from mcode.store.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from mcode.embed import Embedder
    from mcode.store.chunks import ChunkStore

POOL_MIN_FILES = 48
BATCHES_PER_WORKER = 24
MAX_BATCH_FILES = 64
WRITE_BATCH_ROWS = 8_000
MERGE_BATCH_FILES = 200
EMBED_BATCH = 256
EMBED_FILES_PER_ROUND = 64
EMBED_BEFORE_WRITE_ROWS = 2_000
OPTIMIZE_EVERY_WRITES = 64
CONSOLIDATE_EVERY_WRITES = 8  # see ChunkStore.consolidate: ~45 ms, where an optimize takes ~2 s
# Updates (watcher batches) after which the full-text statistics are due to be made exact again even
# if edits never pause (see ChunkStore.rebuild_full_text: ~1.3 s for the standard library). The
# update that reaches it does not pay for that: it is searchable first, and `catch_up` rebuilds next.
EXACT_WITHIN_UPDATES = 32
# Manifest key naming the files whose rows are being written: if the run dies there, the next one
# knows which rows may have no manifest entry.
IN_FLIGHT = "in_flight"
# What the fork server imports before forking workers: the main module first, as multiprocessing
# does by default (a worker must find what the main module defines), then the worker's code. Not
# pyarrow: its import starts threads, and a process with threads must not fork.
_WORKER_PRELOAD = ["__main__", "mcode.index.worker"]
# Manifest key: true while the full-text indexes cover exactly the rows there are, so that a search
# ranks as over a fresh build. Set false before any write that changes rows, true after a rebuild.
FULL_TEXT_EXACT = "full_text_exact"


class Progress(Protocol):
    """How long work reports itself; the CLI draws it on a TTY, tests and scripts pass nothing.

    `advance` may raise to stop the work there (a session closing, or wanting the indexer for
    something urgent): what was written is kept, as after a killed run, and the next run goes on.
    """

    def start(self, stage: str, total: int) -> None: ...
    def advance(self, count: int = 1) -> None: ...
    def finish(self) -> None: ...


class _NoProgress:
    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass(slots=True)
class IndexReport:
    files: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks_written: int = 0
    vectors_written: int = 0
    vectors_pending: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)
    syntax_errors: list[str] = field(default_factory=list)
    invalid_utf8: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    embedder: str = "none"
    total_chunks: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "chunks_written": self.chunks_written,
            "total_chunks": self.total_chunks,
            "vectors_written": self.vectors_written,
            "vectors_pending": self.vectors_pending,
            "embedder": self.embedder,
            "skipped": {
                reason: {"count": len(paths), "paths": paths}
                for reason, paths in sorted(self.skipped.items())
            },
            "syntax_errors": self.syntax_errors,
            "invalid_utf8": self.invalid_utf8,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


class _Timer:
    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings

    def stage(self, name: str) -> _Stage:
        return _Stage(self.timings, name)


class _Stage:
    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.t0
        self.timings[self.name] = self.timings.get(self.name, 0.0) + elapsed


def _worker_count() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _run_tasks(
    tasks: Sequence[FileTask], columnar: bool, progress: Progress
) -> Iterator[BatchResult]:
    """Results in task order, a batch of files at a time; worker processes when the job is big
    enough to repay starting them. With `columnar`, each batch's rows come as one Arrow batch."""
    workers = _worker_count()
    if len(tasks) < POOL_MIN_FILES or workers == 1:
        for batch in _batches(tasks, 1):
            yield process_batch(batch, columnar)
            progress.advance(len(batch))
        return
    # forkserver: LanceDB's runtime threads must not be forked into the workers. The server imports
    # the worker's modules once, before it forks them, instead of each worker importing its own.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_WORKER_PRELOAD)
    batches = _batches(tasks, workers)
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=exit_with_parent
    ) as pool:
        futures = [pool.submit(process_batch, batch, columnar) for batch in batches]
        try:
            # The workers take a while to start (the fork server first imports the main module
            # and the worker's). Meanwhile this process, idle otherwise, takes batches from the
            # end; they are handed on in their turn, so the order holds.
            done_here: dict[int, BatchResult] = {}
            last = len(batches) - 1
            while last > 0 and not futures[0].done() and futures[last].cancel():
                done_here[last] = process_batch(batches[last], columnar)
                progress.advance(len(batches[last]))
                last -= 1
            for index, future in enumerate(futures):
                if index in done_here:
                    yield done_here.pop(index)
                    continue
                result = future.result()
                progress.advance(len(result.results))
                yield result
        except BaseException:
            # Stopped: wait only for the batches being parsed, not for every one queued.
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _batches(tasks: Sequence[FileTask], workers: int) -> list[Sequence[FileTask]]:
    """Runs of tasks with about equal bytes: enough per worker that the last ones finish close
    together, few enough that a batch's fixed costs (pickling, an Arrow batch) stay small."""
    target = max(1, sum(t.size for t in tasks) // (workers * BATCHES_PER_WORKER))
    batches: list[Sequence[FileTask]] = []
    start, size = 0, 0
    for end, task in enumerate(tasks, 1):
        size += task.size
        if size >= target or end - start >= MAX_BATCH_FILES:
            batches.append(tasks[start:end])
            start, size = end, 0
    if start < len(tasks):
        batches.append(tasks[start:])
    return batches


class Indexer:
    """Brings one repository's archival memory up to date. Holds the writer's lock while open."""

    def __init__(
        self,
        settings: Settings,
        store: ChunkStore,
        manifest: Manifest,
        embedder: Embedder | None,
        progress: Progress | None = None,
        embedding_style: str = DEFAULT_EMBEDDING_STYLE,
    ) -> None:
        self.settings = settings
        self.root = settings.paths.repo
        self.store = store
        self.manifest = manifest
        self.embedder = embedder
        self.progress: Progress = progress or _NoProgress()
        self.embedding_style = embedding_style  # one of rows.EMBEDDING_STYLES
        self._embed_now = False
        # Files a killed run left in flight that this run has not rewritten yet.
        self._redo: set[str] = set()
        self._indexed = self._vector_indexed = False
        self._exact = bool(manifest.get_meta(FULL_TEXT_EXACT))
        self._updates_since_exact = 0
        self._wrote = False  # during an update: whether it changed any rows

    # -- the whole run -------------------------------------------------------------------------

    def update(self, *, embed: bool = True, only: Collection[str] | None = None) -> IndexReport:
        """Index what changed; with `only`, look at just those paths (the watcher's batches)."""
        report = IndexReport(embedder=self.embedder.id if self.embedder else "none")
        timer = _Timer(report.timings)
        self._wrote = False
        with timer.stage("discover"):
            self._redo = set(self.manifest.get_meta(IN_FLIGHT) or ())
            if only is None:
                states = self.manifest.states()
                found = discover(self.root, self.settings.max_file_bytes)
            else:
                # A batch looks up its own files (and what a killed run left in flight), not the
                # state of every file in the repository.
                only = [*only, *sorted(self._redo)]
                dirs = [p for p in only if p.endswith("/")]
                states = self.manifest.states_for([p for p in only if not p.endswith("/")], dirs)
                found = discover_paths(
                    self.root, _expand_dirs(only, states), self.settings.max_file_bytes
                )
        report.files = len(found.files) if only is None else self.manifest.file_count()
        tasks, deleted = self._plan(found, states, only)
        report.unchanged = len(found.files) - len(tasks) if only is None else 0
        cold = self.store.count() == 0
        self._embed_now = embed and self.embedder is not None
        self._delete(deleted, report)
        self._parse_and_write(tasks, cold, report, timer)
        embedding = embed and self.embedder is not None
        embedded = 0
        if embedding:
            # The full-text indexes first: embedding a large repository takes long enough that
            # searches meanwhile, or after an interrupted run, must not scan every row.
            with timer.stage("optimize"):
                self._ensure_lexical_indexes()
            with timer.stage("embed"):
                embedded = self.embed_pending(report)
        if self._wrote:
            self._updates_since_exact += 1
        with timer.stage("optimize"):
            # Attaching vectors rewrote those rows, outside the indexes just built: fold them in.
            self._maintain(fold=embedded > 0, whole=only is None)
        # embed_pending returns only once no file waits for its vectors.
        waiting = self.embedder is not None and not embedding
        report.vectors_pending = self.manifest.pending_chunks() if waiting else 0
        report.total_chunks = self.store.count()
        report.skipped = _merge_skips(found.skipped, self.manifest.skipped())
        report.syntax_errors = self.manifest.flagged("syntax_errors")
        report.invalid_utf8 = self.manifest.flagged("invalid_utf8")
        return report

    def _plan(
        self, found: Discovery, states: dict, only: Collection[str] | None
    ) -> tuple[list[FileTask], list[str]]:
        wanted = None if only is None else _expand(only)
        current: dict[str, SourceFile] = {f.path: f for f in found.files}
        tasks = []
        for path, source in current.items():
            if wanted is not None and not wanted(path):
                continue
            state = states.get(path)
            # A file a killed run left in flight may hold rows the manifest does not describe (a
            # mix of old and new ones, or rows for bytes it has since gone back to): rewrite it
            # whatever its stat and hash say.
            redo = path in self._redo
            stat = (source.mtime_ns, source.size)
            if state is not None and not redo and (state.mtime_ns, state.size) == stat:
                continue
            tasks.append(
                FileTask(
                    path,
                    str(source.abspath),
                    source.size,
                    source.mtime_ns,
                    self.settings.max_file_bytes,
                    state.hash if state and not redo else None,
                )
            )
        deleted = [p for p in states if p not in current and (wanted is None or wanted(p))]
        # Files whose rows a killed run wrote before the manifest could record them.
        for path in self._redo:
            if path not in current and path not in states:
                deleted.append(path)
        return tasks, deleted

    def _delete(self, deleted: list[str], report: IndexReport) -> None:
        if not deleted:
            return
        self._changing()
        self.store.delete_files(deleted)
        self.manifest.delete(deleted)
        self._redo.difference_update(deleted)
        self.manifest.set_meta(IN_FLIGHT, sorted(self._redo))
        report.deleted = len(deleted)

    def _parse_and_write(
        self, tasks: list[FileTask], cold: bool, report: IndexReport, timer: _Timer
    ) -> None:
        self.progress.start("parse", len(tasks))
        pending: list[FileResult] = []
        columns: list[pa.RecordBatch] = []  # a cold build's rows, as the workers sent them
        pending_rows = 0
        started = time.perf_counter()
        write_time = 0.0
        for batch in _run_tasks(tasks, cold, self.progress):
            for result in batch.results:
                if result.unchanged:
                    self.manifest.touch(
                        [(result.record.path, result.record.mtime_ns, result.record.size)]
                    )
                    continue
                report.changed += 1
                pending.append(result)
                pending_rows += result.record.chunks
            if batch.columns is not None:
                columns.append(batch.columns)
            if pending_rows >= WRITE_BATCH_ROWS or (not cold and len(pending) >= MERGE_BATCH_FILES):
                t0 = time.perf_counter()
                report.chunks_written += self._write(pending, cold, columns)
                write_time += time.perf_counter() - t0
                pending, columns, pending_rows = [], [], 0
        t0 = time.perf_counter()
        report.chunks_written += self._write(pending, cold, columns)
        write_time += time.perf_counter() - t0
        self.progress.finish()
        total = time.perf_counter() - started
        report.timings["parse"] = report.timings.get("parse", 0.0) + total - write_time
        report.timings["write"] = report.timings.get("write", 0.0) + write_time

    def _write(
        self, results: list[FileResult], cold: bool, columns: Sequence[pa.RecordBatch]
    ) -> int:
        """Store the results' rows and record the files. A cold build's rows come as `columns`
        (every row of `results`, in order), anything else's as each result's `rows`."""
        if not results:
            return 0
        paths = [r.record.path for r in results]
        # The store commits new rows before it deletes a file's leftover ones, and both before the
        # manifest records the file: until then the file is in flight, and a run killed meanwhile
        # leaves it for the next run to rewrite.
        self.manifest.set_meta(IN_FLIGHT, sorted(self._redo.union(paths)))
        self._changing()
        if cold:
            import pyarrow as pa

            written = sum(batch.num_rows for batch in columns)
            if written:
                self.store.append(pa.Table.from_batches(columns))
            embedded = False
        else:
            rows = [row for result in results for row in result.rows]
            written = len(rows)
            # A small batch (an edit, a watcher's batch) is embedded as it is written, so its
            # rows land with their vectors; the store asks only for the rows it writes (an edit's
            # new chunks), and keeps the vectors of the rows it leaves alone.
            embedder = self.embedder if self._embed_now else None
            embedded = embedder is not None and len(rows) <= EMBED_BEFORE_WRITE_ROWS
            embed = self._row_vectors(embedder) if embedder is not None and embedded else None
            self.store.replace_files(paths, rows, embed=embed)
        self.manifest.upsert(
            [r.record for r in results],
            embedded=embedded,
            refs_json=[r.refs_json for r in results],
        )
        self._redo.difference_update(paths)
        self.manifest.set_meta(IN_FLIGHT, sorted(self._redo))
        return written

    # -- vectors --------------------------------------------------------------------------------

    def embed_pending(self, report: IndexReport | None = None, batch: int = EMBED_BATCH) -> int:
        """Compute vectors for files whose chunks lack them; safe to stop at any point and resume.

        The manifest says which files wait, so nothing scans the vector column; they go in
        `embedding_order`, so the files a search most likely wants are the first to have vectors. A
        file is marked done only after its vectors are stored, and the vectors attach by (id, hash),
        so a file that changed meanwhile keeps waiting for its own vectors.
        """
        if self.embedder is None:
            return 0
        total = self.manifest.pending_chunks()
        if total == 0:
            return 0
        self.progress.start("embed", total)
        vectors = self._row_vectors(self.embedder)
        written = 0
        try:
            while files := self.manifest.unembedded(None):
                order = embedding_order(self.manifest, [path for path, _ in files])
                for start in range(0, len(order), EMBED_FILES_PER_ROUND):
                    paths = order[start : start + EMBED_FILES_PER_ROUND]
                    rank = {path: i for i, path in enumerate(paths)}
                    rows = self.store.rows_for_paths(paths, with_text=True)
                    rows.sort(key=lambda row: rank[row["path"]])
                    for first in range(0, len(rows), batch):
                        part = rows[first : first + batch]
                        found = vectors(part)
                        self._changing()  # Lance rewrites a row to attach its vector
                        self.store.set_vectors(
                            [(r["id"], r["hash"], found[i]) for i, r in enumerate(part)]
                        )
                        written += len(part)
                        self.progress.advance(len(part))
                    self.manifest.mark_embedded(paths)
        finally:
            self.progress.finish()
        if report is not None:
            report.vectors_written += written
        return written

    def _row_vectors(self, embedder: Embedder) -> Callable[[Sequence[dict[str, Any]]], np.ndarray]:
        """Vectors for store rows, from the text of this index's embedding style."""
        text = EMBEDDING_STYLES[self.embedding_style]

        def vectors(rows: Sequence[dict[str, Any]]) -> np.ndarray:
            return embedder.embed_documents([text(r["path"], r["symbol"], r["text"]) for r in rows])

        return vectors

    # -- upkeep --------------------------------------------------------------------------------

    def _ensure_lexical_indexes(self) -> None:
        # Built indexes stay built: listing them again would cost every watcher update ~2 ms.
        if not self._indexed:
            if self.store.ensure_indexes():
                self._exact_now()
            self._indexed = self.store.count() > 0

    def _changing(self) -> None:
        """Called before every write that changes rows: the statistics are no longer exact, and
        the manifest says so before the store changes, so a run killed meanwhile leaves it said."""
        self._wrote = True
        if self._exact:
            self.manifest.set_meta(FULL_TEXT_EXACT, False)
            self._exact = False

    def _make_exact(self) -> None:
        self.store.rebuild_full_text()
        self._exact_now()

    def _exact_now(self) -> None:
        self.manifest.set_meta(FULL_TEXT_EXACT, True)
        self._exact = True
        self._updates_since_exact = 0

    @property
    def upkeep_due(self) -> bool:
        """Whether `catch_up` has work: updates in a row reached the bound, or enough writes wait
        to be folded into the indexes."""
        return self._exact_due or self.store.writes_since_optimize >= OPTIMIZE_EVERY_WRITES

    @property
    def _exact_due(self) -> bool:
        return not self._exact and self._updates_since_exact >= EXACT_WITHIN_UPDATES

    def catch_up(self) -> bool:
        """The upkeep an update leaves due, done after it: the full-text rebuild at the bound
        (~1.3 s) and the optimize every OPTIMIZE_EVERY_WRITES writes (~2 s). Callers run it
        right after the update (the follower, in its own turn), so that update is searchable
        without waiting for either. Whether it did work."""
        if not self.upkeep_due:
            return False
        if self._exact_due:
            self._make_exact()
        if self.store.writes_since_optimize >= OPTIMIZE_EVERY_WRITES:
            self.store.optimize(keep_versions_for=timedelta(seconds=30))
        return True

    def _maintain(self, fold: bool = False, whole: bool = False) -> None:
        self._ensure_lexical_indexes()
        # A whole pass (`mcode index`) leaves the index answering as a fresh build would.
        rebuilt = whole and not self._exact
        if rebuilt:
            self._make_exact()
        # The indexes a rebuild replaced stay on disk (~12 MB for the standard library) until an
        # optimize drops old versions: a whole pass drops them at once, a watcher when it settles.
        # A batch of the watcher leaves its optimize to `catch_up`.
        many = self.store.writes_since_optimize >= OPTIMIZE_EVERY_WRITES
        if fold or rebuilt or (whole and many):
            self.store.optimize(keep_versions_for=timedelta(seconds=30))
        elif self.store.writes_since_consolidate >= CONSOLIDATE_EVERY_WRITES:
            self.store.consolidate()
        if not self._vector_indexed:
            self._vector_indexed = self.store.ensure_vector_index()

    def settle(self) -> bool:
        """Make the full-text statistics exact and fold rows written since the last optimize into
        the indexes; the watcher calls this once edits go quiet, so that searches rank as over a
        fresh build and do not slow down with every unindexed row. Returns whether it did work."""
        if self._exact and self.store.writes_since_optimize == 0:
            return False
        if not self._exact:
            self._make_exact()
        self.store.optimize(keep_versions_for=timedelta(seconds=30))
        return True

    def process_changes(self, paths: Collection[str], *, embed: bool = True) -> IndexReport:
        """The watcher's entry point: re-index exactly these repo-relative paths (or dirs ending '/').

        A changed ignore file (`is_ignore_file`) can change what belongs in the index anywhere, so
        then the whole tree is judged again: rows of newly ignored files go, newly kept files are
        indexed. Unchanged files cost a stat, as in any `update`. Without `embed`, the rows wait
        for their vectors like any pending ones (a session computes those on its own schedule).
        """
        if any(is_ignore_file(path) for path in paths):
            return self.update(embed=embed)
        return self.update(embed=embed, only=paths)


def _expand_dirs(only: Collection[str], states: dict) -> list[str]:
    """The files a watcher's batch names: its files, plus indexed files under a directory that went."""
    dirs = tuple(p for p in only if p.endswith("/"))
    files = [p for p in only if not p.endswith("/")]
    return files + [p for p in states if dirs and p.startswith(dirs)]


def _expand(only: Collection[str]) -> Callable[[str], bool]:
    files = {p for p in only if not p.endswith("/")}
    dirs = tuple(p for p in only if p.endswith("/"))
    return lambda path: path in files or path.startswith(dirs)


def _merge_skips(*sources: dict[str, list[str]]) -> dict[str, list[str]]:
    merged: dict[str, set[str]] = {}
    for source in sources:
        for reason, paths in source.items():
            merged.setdefault(reason, set()).update(paths)
    return {reason: sorted(paths) for reason, paths in merged.items()}


def index_identity(
    embedder: Embedder | None, embedding_style: str = DEFAULT_EMBEDDING_STYLE
) -> dict[str, object]:
    """What the stored rows and vectors depend on: a change of any means a rebuild, not a crash.

    Without an embedder there are no vectors, so the embedding style does not matter then."""
    if embedder is None:
        return {"schema": SCHEMA_VERSION, "embedder": "none"}
    return {"schema": SCHEMA_VERSION, "embedder": embedder.id, "text": embedding_style}


def open_index(
    settings: Settings,
    embedder: Embedder | None,
    progress: Progress | None = None,
    purpose: str = "mcode index",
    embedding_style: str = DEFAULT_EMBEDDING_STYLE,
) -> tuple[Indexer, IndexLock]:
    """Take the writer's lock and open the store, rebuilding it when its format, embedder or
    embedding style changed."""
    from mcode.store.chunks import ChunkStore, StoreFormatError

    check_index_dir(settings.paths.index)
    ensure_private_dir(settings.paths.index)
    lock = IndexLock(settings.paths.index_lock, purpose)
    lock.acquire()
    try:
        manifest = Manifest(settings.paths.manifest)
        identity = index_identity(embedder, embedding_style)
        dim = embedder.dim if embedder else 0
        lance_dir = settings.paths.chunks
        try:
            if manifest.get_meta("identity") != identity:
                raise StoreFormatError("identity changed")
            store = ChunkStore(lance_dir, dim)
        except StoreFormatError:
            ChunkStore.destroy(lance_dir)
            manifest.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{manifest.path}{suffix}").unlink(missing_ok=True)
            manifest = Manifest(settings.paths.manifest)
            manifest.set_meta("identity", identity)
            store = ChunkStore(lance_dir, dim)
        return Indexer(settings, store, manifest, embedder, progress, embedding_style), lock
    except BaseException:
        lock.release()
        raise
