"""Locks between mcode processes: an `flock` on a file.

The kernel releases an `flock` when its holder dies, even by `kill -9`, so a crashed process never
wedges the next. Lock files are opened as everything in a repository's `.agentmemory/` is: a
committed `write.lock -> ~/anything` is refused, never created or truncated. Every lock in mcode is
built from the three primitives here (`open_lock_file`, `try_lock`, `release_lock`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from mcode.fsio.confine import make_parents, open_fd

# Memory writes take milliseconds; a holder that keeps the lock this long is stuck, not busy.
DEFAULT_LOCK_TIMEOUT = 30.0
_POLL_SECONDS = 0.005


class LockTimeoutError(TimeoutError):
    """Another process held the lock for longer than the timeout."""


def open_lock_file(path: Path) -> int:
    """A read-write descriptor of the lock file `path`, created (with its directories) if missing."""
    return open_fd(make_parents(path), os.O_RDWR | os.O_CREAT, 0o644)


def try_lock(fd: int) -> bool:
    """Take the exclusive lock on `fd` if no one holds it; never waits."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def release_lock(fd: int) -> None:
    """Give the lock up and close its descriptor."""
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_lock(path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the duration of the block.

    Polls rather than blocking so that a stuck holder becomes a clear error instead of a hang.
    """
    fd = open_lock_file(path)
    try:
        deadline = time.monotonic() + timeout
        while not try_lock(fd):
            if time.monotonic() >= deadline:
                raise LockTimeoutError(
                    f"another mcode process has held {path} for over {timeout:g} s"
                )
            time.sleep(_POLL_SECONDS)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield
    finally:
        release_lock(fd)


class ReentrantFileLock:
    """A `file_lock` that its holder may take again.

    Threads of one process queue on a mutex first, so they serialise too; nesting lets a caller
    hold the lock around a sequence of writes that each take it.
    """

    def __init__(self, path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._mutex = threading.RLock()
        self._depth = 0
        self._held: contextlib.ExitStack | None = None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._mutex:
            if self._depth == 0:
                held = contextlib.ExitStack()
                held.enter_context(file_lock(self.path, self.timeout))
                self._held = held
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._held is not None:
                    self._held.close()
                    self._held = None
