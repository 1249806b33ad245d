"""Crash-safe writes.

A block file is never written in place: a reader (another mcode, the user's editor, git) sees
either the old file or the new one, never half of each; writers serialise on a `mcode.fsio.lock`.
Every path goes through `confine`: under a repository's `.agentmemory/`, nothing is written through
a symlink.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from mcode.fsio.confine import check, make_parents, open_fd, read_bytes


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink inside `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text`: temp file beside it, fsync, rename, fsync the directory.

    A symlinked file of the user's is written through its link, so blocks kept in a dotfiles repo
    stay linked; one in a repository's `.agentmemory/` is refused. An existing file keeps its
    permissions; a new one gets the usual umask-derived mode.
    """
    if check(path).is_symlink():
        path = path.resolve()
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` durably; readers see the old bytes or the new, never a mix."""
    make_parents(path)
    tmp = _temp_path(path)
    fd = open_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def remove_file(path: Path) -> None:
    """Delete `path` durably; a file that is already gone is not an error."""
    with contextlib.suppress(FileNotFoundError):
        check(path).unlink()
        fsync_dir(path.parent)


def append_line(path: Path, line: str) -> None:
    """Append one line durably; a torn last line left by a crash is closed off, not extended."""
    make_parents(path)
    created = not path.exists()
    with os.fdopen(open_fd(path, os.O_RDWR | os.O_APPEND | os.O_CREAT), "a+b") as handle:
        handle.seek(0, os.SEEK_END)
        prefix = b""
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                prefix = b"\n"
        handle.write(prefix + line.rstrip("\n").encode("utf-8") + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    if created:
        fsync_dir(path.parent)


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a file that `append_line` writes, in order: a torn last line, a merge
    marker or any line that is not an object is skipped, not fatal. [] when the file is absent."""
    try:
        text = read_bytes(path).decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def create_file(path: Path, text: str) -> bool:
    """Write `text` to a new file `path`; False, writing nothing, when something is already there."""
    make_parents(path)
    try:
        fd = open_fd(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(text.encode("utf-8"))
    return True
