"""The session's view of archival memory of the code: search, the repo map, counts and freshness.

The index is optional: a repository nobody has indexed still gets an agent, only without code
search, retrieved snippets and the repo map, and the user is told how to get them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcode.agent.events import Event, Notice
from mcode.config import Settings
from mcode.workspace import IndexMissingError, Workspace, build_embedder

if TYPE_CHECKING:
    from mcode.retrieval.repomap import RepoGraph
    from mcode.retrieval.search import SearchResult

MANIFEST = "manifest.db"


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

        stamp = _stamp(self.workspace.settings.paths.index)
        if self._graph is None or stamp != self._stamp:
            self._graph = RepoGraph.from_store(self.workspace.manifest)
            self._stamp = stamp
        return self._graph

    def close(self) -> None:
        self.workspace.manifest.close()


def open_code_index(
    settings: Settings, on_event: Callable[[Event], None]
) -> tuple[CodeIndex | None, Any]:
    """The index if there is a usable one, and the embedder the memory stores should share."""
    try:
        workspace = Workspace.open_reader(settings)
        return CodeIndex(workspace), workspace.embedder
    except IndexMissingError as exc:
        on_event(Notice(f"{exc} (code search and retrieved code are off until then)"))
    except Exception as exc:  # a damaged index must not keep the agent from starting
        on_event(Notice(f"cannot open the code index ({exc}); run `mcode index` to rebuild it"))
    try:
        return None, build_embedder(settings)
    except Exception as exc:
        on_event(Notice(f"recall memory searches by text only: {exc}"))
        return None, None


def _stamp(index_dir: Path) -> tuple[int, ...]:
    """Changes whenever the manifest is written (WAL mode writes the -wal file first)."""
    stamps = []
    for name in (MANIFEST, MANIFEST + "-wal"):
        try:
            stat = (index_dir / name).stat()
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
    from mcode.store import Manifest, check_index_dir

    index_dir = settings.paths.index
    stamp = _stamp(index_dir)
    if not (index_dir / MANIFEST).exists():
        return "not indexed"
    when = ago(time.time() - max(stamp[0], stamp[2]) / 1e9)
    try:
        check_index_dir(index_dir)
        manifest = Manifest(index_dir / MANIFEST)
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
