"""Storage of archival memory: the LanceDB chunk table, the SQLite manifest and the writer's lock.

The rest of mcode sees these three classes; only `store.chunks` imports lancedb.
"""

from mcode.store.guard import check_index_dir
from mcode.store.lock import IndexLock, IndexLockedError
from mcode.store.manifest import DefRow, FileRecord, FileState, Manifest

__all__ = [
    "DefRow",
    "FileRecord",
    "FileState",
    "IndexLock",
    "IndexLockedError",
    "Manifest",
    "check_index_dir",
]
