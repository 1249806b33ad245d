"""File I/O that survives crashes and concurrent writers: atomic replaces, durable appends, locks.

Everything mcode writes to disk that a person or another process may read at the same moment goes
through here, so that the guarantees (old or new content, never half; a dead holder never wedges a
lock) are written once.
"""

from mcode.fsio.atomic import (
    DEFAULT_LOCK_TIMEOUT,
    LockTimeoutError,
    append_line,
    atomic_write_bytes,
    atomic_write_text,
    file_lock,
    fsync_dir,
    remove_file,
)

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "LockTimeoutError",
    "append_line",
    "atomic_write_bytes",
    "atomic_write_text",
    "file_lock",
    "fsync_dir",
    "remove_file",
]
