"""One writer at a time for a repository's index.

Two `mcode index` runs (or an index run beside `mcode watch`) would otherwise interleave table versions
and manifest rows. The lock is an `flock` on a file, so it is released by the kernel when a holder dies,
even by `kill -9`, and the next run simply proceeds. The lock file is opened as `mcode.fsio` opens
anything in `.agentmemory/`: a committed `write.lock -> ~/anything` is refused, never truncated.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from mcode.fsio import make_parents, open_fd


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
        fd = open_fd(make_parents(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise IndexLockedError(holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{self.purpose} (pid {os.getpid()})".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

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
