"""An index a repository brought along is never opened.

`.agentmemory/index/` is git-ignored, but a stranger's repository can force-add files there:
`manifest.db -> ~/x`, or a symlink inside the LanceDB dataset. SQLite and LanceDB open their own
files and follow links, so the whole directory is checked before either library sees it: one
directory listing per folder, a few milliseconds for a large index.
"""

from __future__ import annotations

from pathlib import Path

from mcode.fsio import check_tree


def check_index_dir(index_dir: Path) -> None:
    """Refuse (UnsafePathError, one line saying how to rebuild) an index directory that is,
    passes through, or contains a symlink."""
    check_tree(
        index_dir,
        f"mcode does not open an index holding symlinks: delete {index_dir} and run "
        "`mcode index` to rebuild it",
    )
