"""The composition root: one repository's settings, stores and embedder, opened together.

The CLI, the REPL and the agent all start here instead of wiring the pieces themselves, so there is one
place that decides how a reader or a writer of archival memory is put together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcode.config import Settings
from mcode.store import Manifest, check_index_dir

if TYPE_CHECKING:
    from mcode.embed import Embedder
    from mcode.index.pipeline import Indexer, Progress
    from mcode.retrieval.search import ChunkReads, Searcher
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

        index_dir = settings.paths.index
        if not (index_dir / "manifest.db").exists():
            raise IndexMissingError(f"{settings.paths.repo} is not indexed yet: run `mcode index`")
        check_index_dir(index_dir)
        embedder = build_embedder(settings)
        manifest = Manifest(index_dir / "manifest.db")
        if manifest.get_meta("identity") != index_identity(embedder):
            raise IndexMissingError(
                "the index was built with another embedding model or format: run `mcode index`"
            )
        try:
            store = ChunkStore(index_dir / "lance", embedder.dim if embedder else 0)
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
    path = settings.paths.index / "manifest.db"
    if not path.exists():
        raise IndexMissingError(f"{settings.paths.repo} is not indexed yet: run `mcode index`")
    check_index_dir(settings.paths.index)
    return Manifest(path)


def open_writer(
    settings: Settings, progress: Progress | None = None, purpose: str = "mcode index"
) -> tuple[Indexer, IndexLock]:
    """Take the writer's lock (naming `purpose` to anyone who finds it held) and open the index."""
    from mcode.index.pipeline import open_index

    return open_index(settings, build_embedder(settings), progress, purpose)
