"""The watcher wired to an indexer: what `mcode watch` runs, and what a session runs beside its turns.

Batches of changed paths go to `Indexer.process_changes`. A changed ignore file reloads the rules
the watcher judges paths by (so the watched directories follow them) and the indexer judges the
whole tree again. Once edits pause, the rows written meanwhile are folded into the indexes
(`Indexer.settle`), because full-text search slows down with every row outside them.

The indexer is not thread-safe, and its user may have work of its own besides the watcher's
batches (the first full pass, vectors, the agent's edits): everyone takes turns (`Turns`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Self

from mcode.index.ignore import GIT_EXCLUDE, IgnoreRules, git_exclude_file, is_ignore_file
from mcode.watch.watcher import RepoWatcher, default_on_error

if TYPE_CHECKING:
    from mcode.index.pipeline import Indexer, IndexReport

# Once edits pause this long, the rows written since the last fold go into the indexes.
SETTLE_AFTER_SECONDS = 5.0

UpdateCallback = Callable[[list[str], "IndexReport", float], None]


class Turns:
    """One user of the indexer at a time. Urgent work (a batch of changes, an edit the agent just
    made) goes first; polite work (vectors, which take minutes) waits until nobody else does, and
    asks `wanted()` between steps whether to step aside."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._waiting = 0

    def acquire(self, *, polite: bool = False, timeout: float | None = None) -> bool:
        """Wait for the turn (at most `timeout` seconds); whether it was taken."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if not polite:
                self._waiting += 1
            try:
                while self._busy or (polite and self._waiting):
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._cond.wait(left)
                self._busy = True
                return True
            finally:
                if not polite:
                    self._waiting -= 1

    def release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    @contextmanager
    def turn(self, *, polite: bool = False) -> Iterator[None]:
        self.acquire(polite=polite)
        try:
            yield
        finally:
            self.release()

    def wanted(self) -> bool:
        """Whether urgent work waits for the turn."""
        return self._waiting > 0


class IndexFollower:
    """Keeps an indexer's repository indexed as files change, until stopped.

    `on_update(paths, report, milliseconds)` hears of each batch handled; `on_error` of anything
    that went wrong (the watcher goes on). Without `embed`, changed rows wait for vectors like any
    pending ones, for the owner to compute in its own (polite) turns. Start it before a full pass
    of the indexer, so nothing changed during the pass is missed, and run that pass in a turn.
    """

    def __init__(
        self,
        indexer: Indexer,
        *,
        on_update: UpdateCallback | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        embed: bool = True,
        settle_after: float = SETTLE_AFTER_SECONDS,
    ) -> None:
        self.indexer = indexer
        self.embed = embed
        self.turns = Turns()
        self._on_update = on_update
        self._on_error = on_error or default_on_error
        self._settle_after = settle_after
        self._idle: threading.Timer | None = None
        self._timer_lock = threading.Lock()
        self._stopped = False
        root = indexer.root
        self._rules = IgnoreRules.load(root)
        exclude = git_exclude_file(root)
        self.watcher = RepoWatcher(
            root,
            self._on_batch,
            ignore=self._ignored,
            on_error=self._on_error,
            also_watch={str(exclude): GIT_EXCLUDE} if exclude is not None else None,
        )

    @property
    def watched_dirs(self) -> int:
        return self.watcher.watched_dirs

    def start(self) -> None:
        self.watcher.start()

    def stop(self) -> None:
        """Stop watching; a batch or fold under way is waited for, nothing runs after."""
        self.watcher.stop()
        with self.turns.turn(), self._timer_lock:
            self._stopped = True
            if self._idle is not None:
                self._idle.cancel()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def process(self, paths: Collection[str], timeout: float | None = None) -> IndexReport | None:
        """Re-index these repo-relative paths now, in an urgent turn; None if the turn did not come
        within `timeout` seconds (the watcher will see the same changes) or the follower stopped."""
        if not self.turns.acquire(timeout=timeout):
            return None
        try:
            if self._stopped:
                return None
            report = self.indexer.process_changes(paths, embed=self.embed)
        finally:
            self.turns.release()
        if self.indexer.upkeep_due:
            # The rebuild at the equality bound, the periodic optimize: after the update that
            # made them due, not inside it, so that update is searchable at once; a batch
            # arriving meanwhile goes first (the turn is polite).
            self._later(0.0, self.indexer.catch_up)
        self._settle_later()
        return report

    def _on_batch(self, paths: list[str]) -> None:
        if any(is_ignore_file(p) for p in paths):
            self._rules = IgnoreRules.load(self.indexer.root)
            self.watcher.rescan()
        started = time.perf_counter()
        report = self.process(paths)
        if report is not None and self._on_update is not None:
            self._on_update(paths, report, (time.perf_counter() - started) * 1000)

    def _ignored(self, path: str, is_dir: bool) -> bool:
        return self._rules.ignored(path, is_dir)

    def _settle_later(self) -> None:
        with self._timer_lock:
            if self._idle is not None:
                self._idle.cancel()
            if self._stopped:
                return
            self._idle = self._later(self._settle_after, self.indexer.settle)

    def _later(self, seconds: float, work: Callable[[], object]) -> threading.Timer:
        """Run `work` in a polite turn after `seconds`, on a timer thread; errors go to on_error."""

        def polite() -> None:
            try:
                with self.turns.turn(polite=True):
                    if not self._stopped:
                        work()
            except Exception as exc:
                self._on_error(exc)

        timer = threading.Timer(seconds, polite)
        timer.daemon = True
        timer.start()
        return timer
