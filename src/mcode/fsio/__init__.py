"""File I/O that survives crashes and concurrent writers: atomic replaces, durable appends, locks;
and `clock`, the one format of the time stamps mcode writes into its files.

Everything mcode writes to disk that a person or another process may read at the same moment goes
through here, so that the guarantees (old or new content, never half; a dead holder never wedges a
lock; nothing in a repository's `.agentmemory/` read or written through a symlink) are written
once.
"""

from mcode.fsio.atomic import (
    append_line,
    atomic_write_bytes,
    atomic_write_text,
    create_file,
    fsync_dir,
    read_json_lines,
    remove_file,
)
from mcode.fsio.confine import (
    MEMORY_DIRNAME,
    UnsafePathError,
    check,
    check_tree,
    confined,
    has_reserved_part,
    inside,
    is_reserved,
    make_parents,
    open_fd,
    read_bytes,
)
from mcode.fsio.lock import (
    DEFAULT_LOCK_TIMEOUT,
    LockTimeoutError,
    ReentrantFileLock,
    file_lock,
    open_lock_file,
    release_lock,
    try_lock,
)

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "MEMORY_DIRNAME",
    "LockTimeoutError",
    "ReentrantFileLock",
    "UnsafePathError",
    "append_line",
    "atomic_write_bytes",
    "atomic_write_text",
    "check",
    "check_tree",
    "confined",
    "create_file",
    "file_lock",
    "fsync_dir",
    "has_reserved_part",
    "inside",
    "is_reserved",
    "make_parents",
    "open_fd",
    "open_lock_file",
    "read_bytes",
    "read_json_lines",
    "release_lock",
    "remove_file",
    "try_lock",
]
