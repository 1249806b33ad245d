"""One writer at a time for a repository's index.

Two `mcode index` runs (or an index run beside `mcode watch`) would otherwise interleave table versions
and manifest rows. The lock is a `mcode.fsio.lock`: released by the kernel when a holder dies, even by
`kill -9`, so the next run simply proceeds; a committed `write.lock -> ~/anything` is refused, never
truncated. Unlike the memory locks it never waits: a second writer is told at once who holds it.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from mcode.fsio import open_lock_file, release_lock, try_lock


class IndexLockedError(Exception):
    """Another process is writing this index; `holder` is what it wrote into the lock file
    ("mcode watch (pid 4242)")."""

    def __init__(self, holder: str) -> None:
        super().__init__(
            f"the index is being written by {holder}; wait for it to finish or stop it"
        )
        self.holder = holder


class IndexLock:
    def __init__(self, path: Path, purpose: str = "mcode index") -> None:
        self.path = path
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = open_lock_file(self.path)
        if not try_lock(fd):
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise IndexLockedError(holder)
        os.ftruncate(fd, 0)
        os.write(fd, f"{self.purpose} (pid {os.getpid()})".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            release_lock(fd)

    def __enter__(self) -> IndexLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
