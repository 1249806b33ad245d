"""Which files of a repository the index reads, and their text.

Two stages, so that an incremental re-index costs one stat per unchanged file: `discover` judges
files by name and stat alone; `read_source` reads a file that changed and judges it by content.

Symlinks are never followed into directories, so a loop cannot hang discovery. A symlink to a file
inside the repository is indexed under the link's own path only when its target is not itself
indexed; otherwise it is skipped as "symlink-duplicate" (so is a directory symlink inside the
repository, whose files are indexed under their real paths). Outside git, a vendored directory is
not entered: it is counted once, as its path with a trailing "/", because walking it could cost
more than the whole index.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import re
import stat
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

from mcode.fsio import has_reserved_part
from mcode.index.ignore import (
    MCODEIGNORE,
    VENDORED_DIRS,
    IgnoreRules,
    has_excluded_dir,
    read_spec,
    walk,
)
from mcode.secrets import is_secret_path
from mcode.vcs import work_tree_files

SKIP_REASONS: tuple[str, ...] = (
    "oversized",
    "vendored",
    "generated",
    "minified",
    "binary",
    "symlink-outside",
    "symlink-loop",
    "broken-symlink",
    "symlink-duplicate",
    "unreadable",
    "secret",
)

DEFAULT_MAX_FILE_BYTES = 1_000_000

GENERATED_NAMES: frozenset[str] = frozenset(
    {
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "cargo.lock",
        "poetry.lock",
        "uv.lock",
        "composer.lock",
        "gemfile.lock",
        "go.sum",
    }
)
_GENERATED_NAME_RE = re.compile(
    r"(?:\.min\.js|\.min\.css|\.map|_pb2\.py|_pb2_grpc\.py|\.pb\.go)$|\.generated\."
)
# Markers that code generators write near the top of their output.
_GENERATED_MARKERS = ("@generated", "DO NOT EDIT", "Code generated")
_GENERATED_HEAD_LINES = 5

_BINARY_EXTENSIONS_TEXT = """
    .png .jpg .jpeg .gif .bmp .tif .tiff .webp .ico .icns .psd .pdf .zip .gz .tgz .bz2 .xz .zst
    .7z .rar .tar .so .o .a .dylib .lib .obj .pyc .pyo .pyd .class .jar .war .whl .egg .woff
    .woff2 .ttf .otf .eot .exe .dll .bin .db .sqlite .sqlite3 .lance .npy .npz .pkl .onnx .pt
    .mp3 .mp4 .wav .ogg .flac .mov .avi .mkv .webm .dmg .iso
"""
BINARY_EXTENSIONS: frozenset[str] = frozenset(_BINARY_EXTENSIONS_TEXT.split())
_BINARY_SNIFF_BYTES = 8192

# Minified: long lines on average in a file big enough to matter, or a giant line in a sparse file.
_MINIFIED_MIN_BYTES = 2048
_MINIFIED_MEAN_LINE = 300
_MINIFIED_LONG_LINE = 10_000
_MINIFIED_LINES_PER_10KB = 5


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file discovery kept, with the stat facts an incremental re-index compares."""

    path: str  # repo-relative, POSIX separators
    abspath: Path
    size: int
    mtime_ns: int


@dataclass(slots=True)
class Discovery:
    """The files to index and, per reason, the files left out."""

    files: list[SourceFile]  # sorted by path
    skipped: dict[str, list[str]]  # reason -> sorted repo-relative paths

    def skip_counts(self) -> dict[str, int]:
        """Counts per reason, in SKIP_REASONS order, only for reasons that occurred."""
        return {r: len(self.skipped[r]) for r in SKIP_REASONS if self.skipped.get(r)}


@dataclass(frozen=True, slots=True)
class SourceText:
    """A file's decoded text, or why it is not indexed."""

    text: str | None  # None when skipped
    skip_reason: str | None
    invalid_utf8: bool
    content_hash: str  # sha256 hex of the raw bytes ("" when unreadable or oversized)


def path_skip_reason(path: str) -> str | None:
    """Judge a repo-relative path by its name alone: "vendored", "generated", "binary", "secret" or
    None. Secrets (`.env`, keys) never enter archival memory, where any search could surface them."""
    if is_secret_path(path):
        return "secret"
    slash = path.rfind("/")
    if slash != -1 and not VENDORED_DIRS.isdisjoint(path[:slash].split("/")):
        return "vendored"
    name = path[slash + 1 :].lower()
    if name in GENERATED_NAMES or _GENERATED_NAME_RE.search(name):
        return "generated"
    dot = name.rfind(".")
    if dot > 0 and name[dot:] in BINARY_EXTENSIONS:
        return "binary"
    return None


def discover(root: Path, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Discovery:
    """List the files of `root` worth indexing, using names and one lstat per file."""
    root_s = os.path.abspath(root)
    skipped: defaultdict[str, list[str]] = defaultdict(list)
    mcode = read_spec(os.path.join(root_s, MCODEIGNORE))
    listed = work_tree_files(root_s)
    if listed is None:
        listed = _walk_files(root_s, mcode, skipped)
    elif mcode is not None:
        excluded = _Excluder(mcode)
        listed = [p for p in listed if not excluded(p)]

    return _classify(root_s, listed, max_file_bytes, skipped)


def discover_paths(
    root: Path, paths: Iterable[str], max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> Discovery:
    """The same judgement for just these repo-relative paths (a watcher's batch): no listing of the
    tree, so an update costs a stat per changed file. Paths that no longer exist are left out; the
    caller has already dropped ignored ones."""
    root_s = os.path.abspath(root)
    mcode = read_spec(os.path.join(root_s, MCODEIGNORE))
    listed = list(dict.fromkeys(paths))
    if mcode is not None:
        excluded = _Excluder(mcode)
        listed = [p for p in listed if not excluded(p)]
    return _classify(root_s, listed, max_file_bytes, defaultdict(list))


def _classify(
    root_s: str, listed: Iterable[str], max_file_bytes: int, skipped: defaultdict[str, list[str]]
) -> Discovery:
    files: list[SourceFile] = []
    links: list[tuple[str, str]] = []  # (link path, target's repo-relative path)
    root_real = os.path.realpath(root_s)
    for path in listed:
        if has_reserved_part(path):
            continue
        reason = path_skip_reason(path)
        if reason is None:
            abspath = root_s + "/" + path
            try:
                st = os.lstat(abspath)
            except (FileNotFoundError, NotADirectoryError):
                continue  # tracked but deleted from the work tree
            except OSError:
                reason = "unreadable"
            else:
                if stat.S_ISREG(st.st_mode):
                    if st.st_size > max_file_bytes:
                        reason = "oversized"
                    else:
                        files.append(SourceFile(path, Path(abspath), st.st_size, st.st_mtime_ns))
                        continue
                elif stat.S_ISLNK(st.st_mode):
                    reason, target = _judge_symlink(abspath, root_real)
                    if target is not None:
                        links.append((path, target))
                        continue
                elif stat.S_ISDIR(st.st_mode):
                    continue  # a submodule or nested repository: not part of this tree
                else:
                    reason = "unreadable"  # FIFO, socket or device: reading could block or lie
        if reason:
            skipped[reason].append(path)

    _add_links(root_s, links, files, skipped, max_file_bytes)
    files.sort(key=lambda f: f.path)
    return Discovery(files, {r: sorted(skipped[r]) for r in SKIP_REASONS if skipped.get(r)})


def _walk_files(
    root_s: str, mcode: GitIgnoreSpec | None, skipped: defaultdict[str, list[str]]
) -> list[str]:
    """Outside git: walk the tree honouring the `.gitignore` files found in it."""
    listed: list[str] = []
    for found in walk(Path(root_s), IgnoreRules(mcodeignore=mcode)):
        if found.error is not None:
            skipped["unreadable"].append(found.path + "/")
        listed += found.files
        skipped["vendored"] += [d + "/" for d in found.vendored]
    return listed


class _Excluder:
    """`.mcodeignore` matching with a verdict cached per directory: one match per file."""

    def __init__(self, spec: GitIgnoreSpec) -> None:
        self._spec = spec
        self._dirs: dict[str, bool] = {"": False}

    def __call__(self, path: str) -> bool:
        slash = path.rfind("/")
        directory = path[:slash] if slash != -1 else ""
        return self._dir(directory) or bool(self._spec.check_file(path).include)

    def _dir(self, directory: str) -> bool:
        verdict = self._dirs.get(directory)
        if verdict is None:
            slash = directory.rfind("/")
            parent = directory[:slash] if slash != -1 else ""
            verdict = self._dir(parent) or bool(self._spec.check_file(directory + "/").include)
            self._dirs[directory] = verdict
        return verdict


def _judge_symlink(abspath: str, root_real: str) -> tuple[str | None, str | None]:
    """Return (skip reason, None), or (None, target's repo-relative path) for a file link inside."""
    try:
        st = os.stat(abspath)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink-loop", None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return "broken-symlink", None
        return "unreadable", None
    real = os.path.realpath(abspath)
    inside = root_real.rstrip(os.sep) + os.sep
    if real != root_real and not real.startswith(inside):
        return "symlink-outside", None
    if stat.S_ISDIR(st.st_mode):
        here = os.path.realpath(os.path.dirname(abspath))
        if here == real or here.startswith(real.rstrip(os.sep) + os.sep):
            return "symlink-loop", None  # points at a directory containing itself
        return "symlink-duplicate", None
    if not stat.S_ISREG(st.st_mode):
        return "unreadable", None
    return None, os.path.relpath(real, root_real).replace(os.sep, "/")


def _add_links(
    root_s: str,
    links: list[tuple[str, str]],
    files: list[SourceFile],
    skipped: defaultdict[str, list[str]],
    max_file_bytes: int,
) -> None:
    """Index each file symlink under its own path unless its target is already indexed."""
    indexed = {f.path for f in files}
    for path, target in links:
        if target in indexed:
            skipped["symlink-duplicate"].append(path)
            continue
        if has_excluded_dir(target):
            continue  # never read mcode's store or git's database, even through a link
        reason = path_skip_reason(target)
        if reason is None:
            abspath = root_s + "/" + path
            try:
                st = os.stat(abspath)
            except OSError:
                reason = "unreadable"
            else:
                if st.st_size > max_file_bytes:
                    reason = "oversized"
                else:
                    files.append(SourceFile(path, Path(abspath), st.st_size, st.st_mtime_ns))
                    continue
        skipped[reason].append(path)


def read_source(
    abspath: Path, path: str, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> SourceText:
    """Read a file that changed and judge it by content; `path` is its repo-relative name."""
    raw = _read_bytes(abspath, max_file_bytes)
    if raw is None:
        return SourceText(None, "unreadable", False, "")
    if len(raw) > max_file_bytes:  # grew since discovery
        return SourceText(None, "oversized", False, "")
    digest = hashlib.sha256(raw).hexdigest()
    if b"\0" in raw[:_BINARY_SNIFF_BYTES]:
        return SourceText(None, "binary", False, digest)
    body = raw[len(codecs.BOM_UTF8) :] if raw.startswith(codecs.BOM_UTF8) else raw
    try:
        text = body.decode("utf-8")
        invalid = False
    except UnicodeDecodeError:
        text = body.decode("utf-8", errors="replace")
        invalid = True
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    reason = content_skip_reason(text, len(raw))
    if reason is not None:
        return SourceText(None, reason, invalid, digest)
    return SourceText(text, None, invalid, digest)


def _read_bytes(abspath: Path, max_file_bytes: int) -> bytes | None:
    """Up to max_file_bytes + 1 bytes, or None; never blocks on a FIFO that sneaked in."""
    try:
        fd = os.open(abspath, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        left = max_file_bytes + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def content_skip_reason(text: str, size: int) -> str | None:
    """Judge decoded text: "generated" (a marker near the top), "minified" or None."""
    head = text.split("\n", _GENERATED_HEAD_LINES)[:_GENERATED_HEAD_LINES]
    if any(marker in line for line in head for marker in _GENERATED_MARKERS):
        return "generated"
    if size > _MINIFIED_MIN_BYTES or len(text) > _MINIFIED_LONG_LINE:
        lines = text.count("\n") + (not text.endswith("\n"))
        if size > _MINIFIED_MIN_BYTES and len(text) / max(lines, 1) > _MINIFIED_MEAN_LINE:
            return "minified"
        sparse = lines < _MINIFIED_LINES_PER_10KB * size / 10_240
        if sparse and max(map(len, text.split("\n"))) > _MINIFIED_LONG_LINE:
            return "minified"
    return None
