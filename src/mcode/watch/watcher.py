"""Keep the code index live: watch a repository and hand debounced batches of changed paths on.

Why it is built this way:

- inotify watches are a per-user budget (`max_user_watches`), so one recursive watch on the root,
  which would also cover `.git`, `.venv` and `node_modules`, is out. Each kept directory gets its
  own non-recursive watch; new directories are watched as they appear, and the files already in
  them are reported, because they may have been written before the watch existed.
- Three threads, so no slow step delays another: watchdog's observer only hands raw events over,
  the watch thread keeps the set of watched directories in step and queues paths, and the flush
  thread calls `on_batch` once the repository has been quiet for `quiet_seconds` (or a burst has
  lasted `max_wait_seconds`). A `git checkout` of a thousand files is therefore one batch.
- Cost: watchdog shares one inotify descriptor but runs one (idle, blocked) emitter thread per
  watched directory; 3,000 directories take about 0.7 s to watch and 80 MB of resident memory.

What a batch holds: sorted, de-duplicated repo-relative POSIX paths of files created, modified,
deleted or moved (both ends of a move). Directory events are not reported as such, with one
exception: a directory that is deleted or moved away is reported as its path with a trailing "/"
("src/old/"), and the receiver must drop everything it knows under that prefix. inotify reports
the files of a deleted directory one by one as well, but a directory moved out of a watched
directory produces no per-file events. A directory moved or created inside the repository is
reported as the files found in it.

Files outside the watched tree can matter too (git's `info/exclude` decides what is ignored):
`also_watch` names them, and a change to one is reported under the name given for it. After the
ignore rules change, `rescan()` brings the watched directories in step with them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from mcode.fsio import has_reserved_part

# Only these reach us; the inotify mask is derived from them, so reads by the indexer itself
# (open, close-without-write, access) never wake the watcher.
_EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]

_VANISHED = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM})

IgnoreFn = Callable[[str, bool], bool]


class Debouncer:
    """Collects paths and says when they form a batch; the clock is injected so tests need no time.

    A batch is due once nothing was added for `quiet_seconds`, or, for a burst that keeps going,
    `max_wait_seconds` after its first path. Not thread-safe: the owner holds a lock.
    """

    def __init__(
        self,
        quiet_seconds: float,
        max_wait_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quiet_seconds = quiet_seconds
        self.max_wait_seconds = max_wait_seconds
        self._clock = clock
        self._pending: set[str] = set()
        self._first = 0.0
        self._last = 0.0

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, path: str) -> None:
        now = self._clock()
        if not self._pending:
            self._first = now
        self._pending.add(path)
        self._last = now

    def deadline(self) -> float | None:
        """When the pending paths become due (clock time); None when nothing is pending."""
        if not self._pending:
            return None
        return min(self._last + self.quiet_seconds, self._first + self.max_wait_seconds)

    def due(self, now: float | None = None) -> list[str] | None:
        """Take the pending batch if it is due, sorted; None if nothing is due yet."""
        deadline = self.deadline()
        if deadline is None or (self._clock() if now is None else now) < deadline:
            return None
        batch = sorted(self._pending)
        self._pending.clear()
        return batch

    def clear(self) -> None:
        self._pending.clear()


def default_on_error(exc: BaseException) -> None:
    print("mcode watch: error while handling changes:", file=sys.stderr)
    traceback.print_exception(exc, file=sys.stderr)


@dataclass(frozen=True, slots=True)
class _Change:
    """One filesystem event, reduced to what the watch thread needs."""

    kind: str  # watchdog's event_type: created, modified, closed, deleted, moved
    src: str
    dest: str
    is_dir: bool


_RESCAN = _Change("rescan", "", "", True)  # queued by rescan(): handled in turn with events


class _Forwarder(FileSystemEventHandler):
    """Runs on watchdog's observer thread: it must not block, so it only hands events over."""

    def __init__(self, sink: queue.SimpleQueue[_Change | None]) -> None:
        self._sink = sink

    def dispatch(self, event: FileSystemEvent) -> None:
        self._sink.put(
            _Change(
                event.event_type,
                os.fsdecode(event.src_path),
                os.fsdecode(event.dest_path),
                event.is_directory,
            )
        )


@dataclass(frozen=True, slots=True)
class _Watched:
    watch: ObservedWatch
    inode: tuple[int, int]  # (st_dev, st_ino): tells a re-created directory from the watched one


class RepoWatcher:
    """Watches the kept directories of a repository and calls `on_batch` with changed paths.

    `ignore(path, is_dir)` gets repo-relative POSIX paths and returns True to skip one; ignored
    directories are not watched at all. `also_watch` maps files outside the watched tree (absolute
    paths; their directory must exist at start) to the name a batch reports them under.
    Exceptions from `on_batch` (and from keeping watches) go to `on_error`, never ending the
    watcher. Start watching before a full index, so that nothing changed in between is missed.
    """

    def __init__(
        self,
        root: Path,
        on_batch: Callable[[list[str]], None],
        *,
        ignore: IgnoreFn | None = None,
        quiet_seconds: float = 0.15,
        max_wait_seconds: float = 5.0,
        on_error: Callable[[BaseException], None] | None = None,
        also_watch: Mapping[str, str] | None = None,
    ) -> None:
        # inotify does not follow a symlinked root (IN_DONT_FOLLOW), so watch what it points to.
        self._root = os.fspath(Path(root).resolve())
        self._on_batch = on_batch
        self._ignore = ignore
        self._on_error = on_error or default_on_error
        self._debouncer = Debouncer(quiet_seconds, max_wait_seconds)
        self._cond = threading.Condition()
        self._changes: queue.SimpleQueue[_Change | None] = queue.SimpleQueue()
        self._forwarder = _Forwarder(self._changes)
        self._watches: dict[str, _Watched] = {}  # repo-relative dir ("" = root) -> its watch
        self._observer: BaseObserver | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._limit_reported = False
        # A watched directory's real path + file name -> the name a batch reports it under.
        self._also = {
            os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path)): name
            for path, name in (also_watch or {}).items()
        }

    @property
    def watched_dirs(self) -> int:
        return len(self._watches)

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

    def start(self) -> None:
        """Watch every kept directory; when this returns, changes are being recorded."""
        if self._observer is not None:
            raise RuntimeError("RepoWatcher already started")
        self._observer = Observer()
        self._observer.start()
        self._watch_tree("", report_files=False)
        for directory in {os.path.dirname(path) for path in self._also}:
            with contextlib.suppress(OSError):  # gone: nothing there to report
                self._observer.schedule(
                    self._forwarder, directory, recursive=False, event_filter=_EVENT_FILTER
                )
        self._threads = [
            threading.Thread(target=self._watch_loop, name="mcode-watch", daemon=True),
            threading.Thread(target=self._flush_loop, name="mcode-watch-flush", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def rescan(self) -> None:
        """Judge every directory again, once what `ignore` says has changed: directories it now
        keeps are watched and their files reported (nothing has seen them), directories it now
        ignores are no longer watched. Returns at once; the watch thread does it in turn."""
        self._changes.put(_RESCAN)

    def stop(self) -> None:
        """Stop watching; pending paths are dropped, a batch being handled is waited for."""
        self._stopping.set()
        self._changes.put(None)
        with self._cond:
            self._debouncer.clear()
            self._cond.notify_all()
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join()
        if self._observer is not None and self._observer.is_alive():
            self._observer.stop()
            self._observer.join()
        self._watches.clear()

    # -- the watch thread ------------------------------------------------------------------

    def _watch_loop(self) -> None:
        while not self._stopping.is_set():
            change = self._changes.get()
            if change is None or self._stopping.is_set():
                return
            try:
                self._apply(change)
            except Exception as exc:
                self._report(exc)

    def _apply(self, change: _Change) -> None:
        if change is _RESCAN:
            self._rewatch()
            return
        for path in (change.src, change.dest):
            if path in self._also:
                self._queue(self._also[path])
        src = self._relative(change.src)
        dest = self._relative(change.dest) if change.kind == "moved" else None
        if change.is_dir:
            if src is not None and change.kind in ("deleted", "moved"):
                self._dir_gone(src)
            if change.kind == "created" and src is not None:
                self._dir_appeared(src)
            if dest is not None:
                self._dir_appeared(dest)
            return
        for path in (src, dest):
            if path is not None and not self._ignored(path, False):
                self._queue(path)

    def _dir_gone(self, rel: str) -> None:
        if not rel:
            return  # the root itself: nothing left to watch or report
        self._unwatch_tree(rel)
        if not self._ignored(rel, True):
            self._queue(rel + "/")

    def _dir_appeared(self, rel: str) -> None:
        if rel and not self._ignored(rel, True):
            self._watch_tree(rel, report_files=True)

    def _rewatch(self) -> None:
        for rel in [k for k in self._watches if k and self._ignored(k, True)]:
            if rel in self._watches:  # not dropped already with an ignored parent
                self._unwatch_tree(rel)
        self._watch_tree("", report_files=True)

    # -- watches ---------------------------------------------------------------------------

    def _watch_tree(self, top: str, *, report_files: bool) -> None:
        """Watch `top` and the kept directories below it (symlinks not followed); with
        `report_files`, queue the files of each directory that was not watched before."""
        stack = [top]
        while stack:
            rel = stack.pop()
            known = self._watches.get(rel)
            if not self._watch_dir(rel):
                continue
            fresh = report_files and self._watches.get(rel) is not known
            try:
                with os.scandir(self._absolute(rel)) as entries:
                    for entry in entries:
                        child = f"{rel}/{entry.name}" if rel else entry.name
                        is_dir = entry.is_dir(follow_symlinks=False)
                        if self._ignored(child, is_dir):
                            continue
                        if is_dir:
                            stack.append(child)
                        elif fresh:
                            self._queue(child)
            except OSError:
                continue  # vanished or unreadable meanwhile; its own events will tell

    def _watch_dir(self, rel: str) -> bool:
        """Make sure `rel` is watched; False if it cannot be (gone, unreadable, over the limit)."""
        path = self._absolute(rel)
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return False
        inode = (st.st_dev, st.st_ino)
        known = self._watches.get(rel)
        if known is not None and known.inode == inode:
            return True
        if known is not None:
            self._unwatch_tree(rel)  # a new directory at an old path: the old watches are stale
        assert self._observer is not None
        try:
            watch = self._observer.schedule(
                self._forwarder, path, recursive=False, event_filter=_EVENT_FILTER
            )
        except OSError as exc:
            if exc.errno not in _VANISHED:
                self._report_watch_failure(exc, rel)
            return False
        self._watches[rel] = _Watched(watch, inode)
        return True

    def _unwatch_tree(self, rel: str) -> None:
        prefix = rel + "/"
        for key in [k for k in self._watches if k == rel or k.startswith(prefix)]:
            watched = self._watches.pop(key)
            if self._observer is not None:
                with contextlib.suppress(KeyError):
                    self._observer.unschedule(watched.watch)

    def _report_watch_failure(self, exc: OSError, rel: str) -> None:
        if exc.errno == errno.ENOSPC:
            if self._limit_reported:
                return
            self._limit_reported = True
            exc = OSError(
                exc.errno,
                f"inotify watch limit reached at {rel or '.'!r} "
                f"({len(self._watches)} directories watched); changes below it go unseen. "
                "Raise fs.inotify.max_user_watches or ignore more directories.",
            )
        self._report(exc)

    # -- the flush thread ------------------------------------------------------------------

    def _queue(self, path: str) -> None:
        with self._cond:
            was_empty = not self._debouncer
            self._debouncer.add(path)
            if was_empty:  # later paths only move the deadline later: no need to wake
                self._cond.notify()

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                batch = self._debouncer.due()
                while batch is None and not self._stopping.is_set():
                    deadline = self._debouncer.deadline()
                    timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                    self._cond.wait(timeout)
                    batch = self._debouncer.due()
                if self._stopping.is_set():
                    return
            try:
                self._on_batch(batch)
            except Exception as exc:
                self._report(exc)

    # -- paths -----------------------------------------------------------------------------

    def _relative(self, path: str) -> str | None:
        """Repo-relative POSIX path ("" for the root); None outside the root or always ignored."""
        if path == self._root:
            return ""
        if not path.startswith(self._root + os.sep):
            return None
        rel = path[len(self._root) + 1 :].replace(os.sep, "/")
        if has_reserved_part(rel):
            return None
        return rel

    def _absolute(self, rel: str) -> str:
        return os.path.join(self._root, rel) if rel else self._root

    def _ignored(self, rel: str, is_dir: bool) -> bool:
        # Never watched or reported, whatever the ignore callable says: git's database and
        # mcode's store, in any letter case.
        if has_reserved_part(rel):
            return True
        return self._ignore is not None and self._ignore(rel, is_dir)

    def _report(self, exc: BaseException) -> None:
        try:
            self._on_error(exc)
        except Exception as inner:
            default_on_error(inner)
