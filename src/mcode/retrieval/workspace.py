"""Archival memory of the code, opened: one repository's index for reading or writing, and the live
view a session keeps of it.

`mcode index`, `mcode search`, `mcode map`, the watcher and the agent all open the index here instead
of wiring the store, the manifest and the embedder themselves. The index is optional for the agent: a
repository nobody has indexed still gets one, only without code search, retrieved snippets and the repo
map, and the user is told how to get them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

    @classmethod
    def open_reader(cls, settings: Settings) -> Workspace:
        """Open the index for reading; no lock is taken (LanceDB readers see committed versions)."""
        from mcode.index.pipeline import index_identity
        from mcode.store.chunks import ChunkStore, StoreFormatError

        paths = settings.paths
        if not paths.manifest.exists():
            raise IndexMissingError(f"{paths.repo} is not indexed yet: run `mcode index`")
        check_index_dir(paths.index)
        embedder = build_embedder(settings)
        manifest = Manifest(paths.manifest)
        if manifest.get_meta("identity") != index_identity(embedder):
            raise IndexMissingError(
                "the index was built with another embedding model or format: run `mcode index`"
            )
        try:
            store = ChunkStore(paths.chunks, embedder.dim if embedder else 0)
        except StoreFormatError as exc:
            raise IndexMissingError(f"{exc}: run `mcode index`") from exc
        return cls(settings, store, manifest, embedder)

    def searcher(self, *, resident: bool = False) -> Searcher:
        """`resident` keeps every chunk's metadata and vector in memory (~1 s and ~250 MB at
        66k chunks, then a search is several times faster): for processes that search often."""
        from mcode.retrieval.search import Searcher

        vectors = self.embedder if self.embedder is not None and self._has_vectors() else None
        chunks: ChunkReads = self.store
        if resident:
            from mcode.retrieval.resident import ResidentChunks

            chunks = ResidentChunks(self.store, self.manifest)
        return Searcher(self.settings.paths.repo, chunks, self.manifest, vectors)

    def _has_vectors(self) -> bool:
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
    changed since the last map)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.searcher = workspace.searcher(resident=True)
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
        return self.searcher.search(query, k, level)

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


def open_code_index(
    settings: Settings, notice: Callable[[str], None]
) -> tuple[CodeIndex | None, Any]:
    """The index if there is a usable one, and the embedder the memory stores should share; what
    is missing or broken is told through `notice`, never raised, so the agent always starts."""
    try:
        workspace = Workspace.open_reader(settings)
        return CodeIndex(workspace), workspace.embedder
    except IndexMissingError as exc:
        notice(f"{exc} (code search and retrieved code are off until then)")
    except Exception as exc:  # a damaged index must not keep the agent from starting
        notice(f"cannot open the code index ({exc}); run `mcode index` to rebuild it")
    try:
        return None, build_embedder(settings)
    except Exception as exc:
        notice(f"recall memory searches by text only: {exc}")
        return None, None


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
