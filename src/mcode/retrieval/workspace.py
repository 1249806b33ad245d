"""Archival memory of the code, opened: one repository's index for reading or writing, and the live
view a session keeps of it.

`mcode index`, `mcode search`, `mcode map`, the watcher and the agent all open the index here instead
of wiring the store, the manifest and the embedder themselves. The agent does it through
`retrieval.live`, which builds the index in the background and opens a `CodeIndex` once there is one
to search: until then the agent works without code search, retrieved snippets and the repo map.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mcode.config import Settings
from mcode.store import Manifest, check_index_dir

if TYPE_CHECKING:
    from mcode.embed import Embedder
    from mcode.index.pipeline import Indexer, Progress
    from mcode.retrieval.repomap import RepoGraph
    from mcode.retrieval.search import ChunkReads, Searcher, SearchResult
    from mcode.store import IndexLock
    from mcode.store.chunks import ChunkStore


class IndexMissingError(Exception):
    """There is no usable index yet; the message says which command builds it."""


def build_embedder(settings: Settings) -> Embedder | None:
    from mcode.embed import make_embedder

    return make_embedder(
        settings.embedding_model, settings.paths.cache, api_base=settings.api_base or None
    )


@dataclass(slots=True)
class Workspace:
    settings: Settings
    store: ChunkStore
    manifest: Manifest
    embedder: Embedder | None
    # Why this reader has no vectors although the index has some: its embedder failed when asked
    # for its dimension (a remote service that is down). Searches then rank by words alone.
    vectors_failed: str | None = None

    @classmethod
    def open_reader(cls, settings: Settings) -> Workspace:
        """Open the index for reading; no lock is taken (LanceDB readers see committed versions)."""
        return cls._open(settings, lambda: build_embedder(settings))

    @classmethod
    def open_shared(cls, settings: Settings, embedder: Embedder | None) -> Workspace:
        """`open_reader` with the embedder the caller has already built: a session shares one
        between its writer, its reader and its memory stores."""
        return cls._open(settings, lambda: embedder)

    @classmethod
    def _open(cls, settings: Settings, embedder_for: Callable[[], Embedder | None]) -> Workspace:
        paths = settings.paths
        if not paths.manifest.exists():  # said before the chunk table's library loads (~1 s)
            raise IndexMissingError(f"{paths.repo} is not indexed yet: run `mcode index`")
        check_index_dir(paths.index)
        from mcode.embed import EmbedderUnavailable
        from mcode.index.pipeline import index_identity
        from mcode.store.chunks import ChunkStore, StoreFormatError

        embedder = embedder_for()
        manifest = Manifest(paths.manifest)
        try:
            if manifest.get_meta("identity") != index_identity(embedder):
                raise IndexMissingError(
                    "the index was built with another embedding model or format: run `mcode index`"
                )
            failed = None
            try:
                dim = embedder.dim if embedder else 0
            except EmbedderUnavailable as exc:
                failed, embedder, dim = str(exc), None, ChunkStore.stored_dim(paths.chunks)
            try:
                store = ChunkStore(paths.chunks, dim)
            except StoreFormatError as exc:
                raise IndexMissingError(f"{exc}: run `mcode index`") from exc
        except BaseException:
            manifest.close()
            raise
        return cls(settings, store, manifest, embedder, failed)

    def searcher(
        self, *, resident: bool = False, chunks: ChunkReads | None = None, summaries: bool = True
    ) -> Searcher:
        """`resident` keeps every chunk's metadata and vector in memory (~1 s and ~250 MB at
        66k chunks, then a search is several times faster): for processes that search often.
        `chunks` reuses such a copy. With `summaries`, results carry their file's module summary
        line, and summary hits count for their files (as far as `Weights.summary` says)."""
        from mcode.retrieval.search import Searcher
        from mcode.store.summaries import SummaryStore

        vectors = self.embedder if self.embedder is not None and self.has_vectors() else None
        if chunks is None:
            chunks = self.store
            if resident:
                from mcode.retrieval.resident import ResidentChunks

                chunks = ResidentChunks(self.store, self.manifest)
        modules = None
        if summaries:
            # Opened whether or not a pass has run yet: it finds the table once one has.
            with contextlib.suppress(OSError):  # no summaries is no reason to fail a search
                modules = SummaryStore(self.settings.paths.summaries)
        return Searcher(self.settings.paths.repo, chunks, self.manifest, vectors, summaries=modules)

    def has_vectors(self) -> bool:
        return self.manifest.pending_chunks() < self.manifest.chunk_count()


def open_manifest(settings: Settings) -> Manifest:
    """The index's bookkeeping alone, for readers that need no chunk table (the repo map): it opens
    in milliseconds, where the chunk table's library takes a second to import."""
    paths = settings.paths
    if not paths.manifest.exists():
        raise IndexMissingError(f"{paths.repo} is not indexed yet: run `mcode index`")
    check_index_dir(paths.index)
    return Manifest(paths.manifest)


def open_writer(
    settings: Settings, progress: Progress | None = None, purpose: str = "mcode index"
) -> tuple[Indexer, IndexLock]:
    """Take the writer's lock (naming `purpose` to anyone who finds it held) and open the index."""
    from mcode.index.pipeline import open_index

    return open_index(settings, build_embedder(settings), progress, purpose)


# The session's live view ---------------------------------------------------------------------------


class Count:
    """A `Countable` from a function."""

    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count


class CodeIndex:
    """A `CodeSearcher` over the index, plus the repo map (its graph rebuilt only when the index
    changed since the last map). Opened before any vector is stored, it searches by vectors too
    as soon as some are."""

    def __init__(self, workspace: Workspace) -> None:
        from mcode.retrieval.resident import ResidentChunks

        self.workspace = workspace
        self._chunks = ResidentChunks(workspace.store, workspace.manifest)
        self._vectors = workspace.embedder is None or workspace.has_vectors()
        self._vectors_checked = workspace.manifest.generation()
        self.searcher = workspace.searcher(chunks=self._chunks)
        # The resident rows take a second or two to load: do it while the user types.
        threading.Thread(target=self._warm_up, name="mcode-warm-up", daemon=True).start()
        self.chunks = Count(workspace.store.count)
        self.files = Count(workspace.manifest.file_count)
        self._graph: RepoGraph | None = None
        self._stamp: tuple[int, ...] | None = None

    def _warm_up(self) -> None:
        # An error here is met again, and reported, by the first search.
        with contextlib.suppress(Exception):
            self.searcher.warm_up()

    def search(self, query: str, k: int, level: str) -> Sequence[SearchResult]:
        return self._current_searcher().search(query, k, level)

    def _current_searcher(self) -> Searcher:
        """The searcher, rebuilt over the same resident rows once the first vectors are stored
        (looked for only when the index changed: one SQLite probe a search until then)."""
        if not self._vectors:
            generation = self.workspace.manifest.generation()
            if generation != self._vectors_checked:
                self._vectors_checked = generation
                if self.workspace.has_vectors():
                    self.searcher = self.workspace.searcher(chunks=self._chunks)
                    self._vectors = True
        return self.searcher

    def repo_map(self, tokens: int, *, focus: Collection[str] = (), query: str = "") -> str:
        return self._current_graph().map(tokens, focus_files=focus, query=query).text

    def _current_graph(self) -> RepoGraph:
        from mcode.retrieval.repomap import RepoGraph

        stamp = _stamp(self.workspace.settings.paths.manifest)
        if self._graph is None or stamp != self._stamp:
            self._graph = RepoGraph.from_store(self.workspace.manifest)
            self._stamp = stamp
        return self._graph

    def close(self) -> None:
        self.workspace.manifest.close()


def _stamp(manifest: Path) -> tuple[int, ...]:
    """Changes whenever the manifest is written (WAL mode writes the -wal file first)."""
    stamps = []
    for path in (manifest, manifest.with_name(manifest.name + "-wal")):
        try:
            stat = path.stat()
            stamps += [stat.st_mtime_ns, stat.st_size]
        except OSError:
            stamps += [0, 0]
    return tuple(stamps)


def ago(seconds: float) -> str:
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    return f"{days} day{'s' if days != 1 else ''} ago"


def index_freshness(settings: Settings) -> str:
    """ "indexed 3 min ago, 2 files changed", "indexed 1 h ago, up to date" or "not indexed"."""
    from mcode.index.discover import discover

    paths = settings.paths
    stamp = _stamp(paths.manifest)
    if not paths.manifest.exists():
        return "not indexed"
    when = ago(time.time() - max(stamp[0], stamp[2]) / 1e9)
    try:
        check_index_dir(paths.index)
        manifest = Manifest(paths.manifest)
        try:
            states = manifest.states()
        finally:
            manifest.close()
        found = discover(settings.paths.repo, settings.max_file_bytes)
    except Exception:
        return f"indexed {when}"
    current = {f.path: (f.mtime_ns, f.size) for f in found.files}
    changed = sum(
        1
        for path, stat in current.items()
        if path not in states or (states[path].mtime_ns, states[path].size) != stat
    )
    changed += sum(1 for path in states if path not in current)
    if not changed:
        return f"indexed {when}, up to date"
    return f"indexed {when}, {changed} file{'s' if changed != 1 else ''} changed"
