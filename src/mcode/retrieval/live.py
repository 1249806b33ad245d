"""A session's archival memory of the code, kept current by the session itself.

On start in a git repository the session takes the index's writer lock if it is free. Holding it,
a background thread brings the index up to date, lexical first (seconds), then vectors (minutes on
a large repository), while a watcher (`IndexFollower`, the same code as `mcode watch`) keeps it
current; the agent's own edits are indexed the moment its tools make them (`sync`). Searches go to
what is ready: nothing until the first lexical pass has written the table, then everything, vectors
joining as they are stored.

Exactly one process writes. When `mcode watch`, `mcode index` or another session holds the lock,
this one only reads and follows the other's writes (the resident copy follows the manifest's
generation counter), and takes the lock over once the other lets it go. With `auto_index = false`,
or outside git (a home directory is no repository to index unasked), it only reads.

Threads: the writer's indexer, manifest and chunk table are used on whichever thread holds the
follower's turn (`Turns`); the searches go through a reader of their own (`CodeIndex`, with its own
SQLite connection and LanceDB handle). Stopping is cooperative: the indexer reports progress here
after every batch, and the report raises `_Stopped` when the session closes (for vectors, also
when urgent work waits for the turn); what was written is kept, as after a killed run, and the
next run goes on from there.
"""

from __future__ import annotations

import contextlib
import posixpath
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mcode.config import Settings
from mcode.retrieval.hits import SearchHit, SearchUnavailable
from mcode.retrieval.workspace import (
    CodeIndex,
    IndexMissingError,
    Workspace,
    build_embedder,
    index_freshness,
)
from mcode.vcs import git_dir

if TYPE_CHECKING:
    from mcode.embed import Embedder
    from mcode.index.pipeline import Indexer, IndexReport
    from mcode.watch import IndexFollower

SESSION_PURPOSE = "mcode session"  # how a session names itself in the index's lock
RETRY_SECONDS = 2.0  # a reader looks this often for an index to open and a lock to take over
SYNC_WAIT_SECONDS = 30.0  # an edit waits at most this long for the writer's turn
EMBED_BATCH = 32  # chunks between two chances to stop or step aside (~1 s on 2 busy cores)
# Past this many vectors in one stretch they are folded into the indexes at once (seconds of work
# on a large table); fewer wait for the fold the watcher makes once edits pause.
FOLD_AFTER_VECTORS = 1_000
CHANGE_EVERY_SECONDS = 0.5  # progress is announced at most this often
JOIN_SECONDS = 10.0  # closing waits this long for the background work to stop
FIRST_PASS_ATTEMPTS = 3

NoticeFn = Callable[[str], None]


class _Stopped(Exception):
    """Raised from the indexer's progress report to end the pass it is in."""


class _Progress:
    """The indexer's `Progress`, reporting to the live index."""

    def __init__(self, live: LiveIndex) -> None:
        self.live = live

    def start(self, stage: str, total: int) -> None:
        self.live._progress_start(stage, total)

    def advance(self, count: int = 1) -> None:
        self.live._progress_advance(count)

    def finish(self) -> None:
        pass


class LiveIndex:
    """The code index as a session sees it: a `CodeSearcher` that is ready when the index is, the
    status line's words for it, and `sync` for the agent's edits. `code` is the `CodeIndex` once
    there is one to search, else None."""

    def __init__(
        self, settings: Settings, embedder: Embedder | None, *, write: bool, notice: NoticeFn
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.write = write
        self.notice = notice
        self.on_change: Callable[[], None] = lambda: None  # the status line redraws
        self.on_files_changed: Callable[[], None] = lambda: None  # a watcher batch was indexed
        self.code: CodeIndex | None = None
        self._stop = threading.Event()
        self._finish = False  # closing completes the lexical index first
        self._wake = threading.Event()  # rows may wait for vectors again
        self._role = threading.Event()  # it is known whether this process writes
        self._looked = threading.Event()  # an index already on disk had its chance to open
        if not write:
            self._role.set()
        self._open_lock = threading.Lock()
        self._status_lock = threading.Lock()
        self._state = "starting"  # indexing, vectors, current, reading, failed
        self._done = self._total = 0
        self._holder = ""  # the process that writes, when it is another one
        self._error = ""
        self._noticed: set[str] = set()
        self._follower: IndexFollower | None = None
        self._stoppable: str | None = None  # the pass the progress report may end: lexical, vectors
        self._announced = 0.0
        self._thread = threading.Thread(target=self._run, name="mcode-index", daemon=True)

    @classmethod
    def open(cls, settings: Settings, notice: NoticeFn) -> LiveIndex:
        """Start keeping the index of the settings' repository, in the background; never raises:
        what goes wrong is told through `notice`."""
        write = settings.auto_index and git_dir(settings.paths.repo) is not None
        try:
            embedder = build_embedder(settings)
        except Exception as exc:
            # Writing with another embedder would rebuild an index built with the configured one.
            notice(f"the embedding model is unavailable ({exc}): search and recall use words only")
            embedder, write = None, False
        live = cls(settings, embedder, write=write, notice=notice)
        if not settings.paths.manifest.exists():
            live._looked.set()  # no index on disk to wait for
            if not write:
                live._open_code()  # tells at once that there is none, and how to build one
        live._thread.start()
        return live

    # -- what the session reads ------------------------------------------------------------------

    def search(self, query: str, k: int, level: str) -> Sequence[SearchHit]:
        code = self.code
        if code is None:
            raise SearchUnavailable(self._why_unavailable())
        return code.search(query, k, level)

    def wait_opened(self, timeout: float) -> None:
        """Wait (at most `timeout` seconds) until an index already on disk is open for searching,
        so that a turn that starts at once still gets code retrieved from it (~1 s: the chunk
        table's library loads). Returns at once when there is none."""
        self._looked.wait(timeout)

    def status(self) -> str:
        """ "indexing 1,240/6,300 files", "vectors 12%", then the index's freshness."""
        with self._status_lock:
            state, done, total, holder = self._state, self._done, self._total, self._holder
        if state == "indexing" or (state == "starting" and self.write):
            return f"indexing {done:,}/{total:,} files" if total else "indexing…"
        if state == "vectors":
            return f"vectors {done * 100 // max(total, 1)}%"
        if state == "failed":
            return "index failed (see above)"
        freshness = index_freshness(self.settings)
        return f"{freshness}, kept by {holder}" if state == "reading" else freshness

    def _why_unavailable(self) -> str:
        with self._status_lock:
            state, done, total, holder = self._state, self._done, self._total, self._holder
        if state == "indexing":
            counts = f" ({done:,}/{total:,} files)" if total else ""
            return f"the repository is being indexed{counts}; this takes seconds"
        if state == "reading":
            return f"the index is being built by {holder}"
        if state == "failed":
            return f"indexing failed ({self._error}); the user can run `mcode index` to see why"
        if not self.write:
            return (
                "this repository has no archival index (the user can build one with `mcode index`)"
            )
        return "the index is being opened"

    # -- what the session writes -------------------------------------------------------------------

    def sync(self, paths: Iterable[str]) -> None:
        """Index these files now (the agent just changed them), so that the next search finds
        them. Only the writer can; another process that writes sees the change with its watcher."""
        wanted = [rel for path in paths if (rel := self._relative(path)) is not None]
        if not wanted or not self._role.wait(SYNC_WAIT_SECONDS):
            return
        follower = self._follower
        if follower is None:
            return
        try:
            follower.process(wanted, timeout=SYNC_WAIT_SECONDS)
        except Exception as exc:
            self._notice_once(f"could not index {', '.join(wanted)} ({exc}); will retry")
        self._open_code()
        self._wake.set()

    def _relative(self, path: str) -> str | None:
        """A tool's path argument as the index names it: repo-relative POSIX; None outside."""
        candidate = Path(path)
        if candidate.is_absolute():
            try:
                candidate = candidate.relative_to(self.settings.paths.repo)
            except ValueError:
                return None
        rel = posixpath.normpath(candidate.as_posix())
        return None if rel in ("", ".") or rel.startswith("../") else rel

    def close(self, *, finish: bool = False) -> None:
        """Stop the background work and let the lock go. With `finish` (a headless run), the
        lexical index is first made complete and current: the first pass runs to its end and one
        more catches what changed since. Vectors still pending wait for the next session or
        `mcode index`."""
        self._finish = finish
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(None if finish else JOIN_SECONDS)
        code, self.code = self.code, None
        if code is not None:
            code.close()

    # -- the background thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            # Closing at once still writes the lexical index when asked to finish it.
            while not self._stop.is_set() or self._finish:
                if self.write and self._write():
                    return
                self._open_code()
                if self.code is not None and not self.write:
                    return  # read only, and open: the resident copy follows the index by itself
                if self._stop.wait(RETRY_SECONDS):
                    return
        except Exception as exc:
            self._failed(exc)
        finally:
            self._role.set()
            self._looked.set()

    def _write(self) -> bool:
        """Write the index until stopped; False when another process holds the lock."""
        from mcode.index.pipeline import open_index
        from mcode.store import IndexLockedError
        from mcode.watch import IndexFollower

        try:
            indexer, lock = open_index(
                self.settings, self.embedder, _Progress(self), SESSION_PURPOSE
            )
        except IndexLockedError as exc:
            self._set("reading", holder=exc.holder)
            self._role.set()
            return False
        try:
            self._open_code()  # an index from an earlier run is searchable at once
            follower = IndexFollower(
                indexer, on_update=self._updated, on_error=self._watch_failed, embed=False
            )
            follower.start()  # before the first pass, so that nothing changed meanwhile is missed
            self._follower = follower
            self._role.set()
            try:
                if self._first_pass(indexer, follower):
                    self._open_code()
                    self._vectors(indexer, follower)
                    if self._finish:
                        with follower.turns.turn():
                            indexer.update(embed=False)
            finally:
                self._follower = None
                follower.stop()
        finally:
            indexer.manifest.close()
            lock.release()
        return True

    def _first_pass(self, indexer: Indexer, follower: IndexFollower) -> bool:
        """The lexical index brought up to date; False when stopped first."""
        for attempt in range(1, FIRST_PASS_ATTEMPTS + 1):
            self._set("indexing", done=0, total=0)
            try:
                with follower.turns.turn():
                    self._stoppable = "lexical"
                    try:
                        indexer.update(embed=False)
                    finally:
                        self._stoppable = None
                return True
            except _Stopped:
                return False
            except Exception:  # git killed by the user's Ctrl-C, a file vanishing …
                if attempt == FIRST_PASS_ATTEMPTS:
                    raise
                if self._stop.wait(RETRY_SECONDS):
                    return False
        return False

    def _vectors(self, indexer: Indexer, follower: IndexFollower) -> None:
        """Compute pending vectors whenever there are some, stepping aside for urgent work, until
        stopped."""
        while not self._stop.is_set():
            self._wake.clear()
            with follower.turns.turn(polite=True):
                if self._stop.is_set():
                    return
                try:
                    finished = self._embed(indexer)
                except Exception as exc:
                    self._notice_once(f"vectors stopped ({exc}); search goes on by words")
                    self._set("current")
                    self._stop.wait()
                    return
            if finished:
                self._set("current")
                self._wake.wait()

    def _embed(self, indexer: Indexer) -> bool:
        """One stretch of vectors; whether none is pending any more."""
        pending = indexer.manifest.pending_chunks() if indexer.embedder is not None else 0
        if not pending:
            return True
        total = indexer.manifest.chunk_count()
        self._set("vectors", done=total - pending, total=total)
        self._stoppable = "vectors"
        try:
            indexer.embed_pending(batch=EMBED_BATCH)
        except _Stopped:
            return False
        finally:
            self._stoppable = None
        if pending >= FOLD_AFTER_VECTORS:
            indexer.settle()  # rows that got vectors leave the indexes until they are folded in
        return True

    def _progress_start(self, stage: str, total: int) -> None:
        if self._stoppable == "lexical" and stage == "parse":
            self._set("indexing", done=0, total=total)

    def _progress_advance(self, count: int) -> None:
        stoppable = self._stoppable
        if stoppable is None:
            return  # a batch of changes: quick, never stopped half-way
        with self._status_lock:
            self._done += count
        self._announce()
        if self._stop.is_set() and not (stoppable == "lexical" and self._finish):
            raise _Stopped
        follower = self._follower
        if stoppable == "vectors" and follower is not None and follower.turns.wanted():
            raise _Stopped

    def _open_code(self) -> None:
        """Open the reader once there is a table to read (a reader opened before the writer made
        one would never see it)."""
        try:
            with self._open_lock:
                if self.code is not None or self._stop.is_set():
                    return
                try:
                    workspace = Workspace.open_shared(self.settings, self.embedder)
                except IndexMissingError as exc:
                    if not self.write:
                        self._notice_once(
                            f"{exc} (code search and retrieved code are off until then)"
                        )
                    return
                except Exception as exc:  # a damaged index must not keep the agent from working
                    self._notice_once(
                        f"cannot open the code index ({exc}); `mcode index` rebuilds it"
                    )
                    return
                if workspace.store.count() == 0:
                    workspace.manifest.close()
                    return
                self.code = CodeIndex(workspace)
            self._announce(force=True)
        finally:
            self._looked.set()

    # -- status --------------------------------------------------------------------------------------

    def _set(self, state: str, *, done: int = 0, total: int = 0, holder: str = "") -> None:
        with self._status_lock:
            changed = state != self._state
            self._state, self._done, self._total, self._holder = state, done, total, holder
        self._announce(force=changed)

    def _announce(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._announced < CHANGE_EVERY_SECONDS:
            return
        self._announced = now
        with contextlib.suppress(Exception):  # the status line is a courtesy
            self.on_change()

    def _updated(self, paths: list[str], report: IndexReport, milliseconds: float) -> None:
        self._open_code()
        self._wake.set()
        self._announce(force=True)
        with contextlib.suppress(Exception):  # the owner's follow-up work is not the index's
            self.on_files_changed()

    def _watch_failed(self, exc: BaseException) -> None:
        self._notice_once(f"watching the repository: {exc}")

    def _failed(self, exc: Exception) -> None:
        self._error = str(exc) or type(exc).__name__
        self._set("failed")
        self._notice_once(f"the code index could not be kept current: {self._error}")

    def _notice_once(self, text: str) -> None:
        if text not in self._noticed:
            self._noticed.add(text)
            self.notice(text)
