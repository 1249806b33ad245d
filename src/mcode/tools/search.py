"""Searching the repository: `grep` by regular expression over the files git does not ignore, and
`code_search` by meaning over archival memory (the index), when there is one.

Secret files are left out of both unless the model names one as the path to grep, which asks the
user first; files a `Read(...)` deny rule covers are left out too. Lines are matched and shown with
secret values redacted (`mcode.secrets`), so a pattern cannot probe a key; a secret file the user
agreed to share is searched as it is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pathspec import GitIgnoreSpec

from mcode.retrieval.hits import SearchUnavailable
from mcode.secrets import is_secret_path, redact, share
from mcode.tools.access import RepoAccess
from mcode.tools.base import Range, ToolError, tool
from mcode.tools.files import authorize_read, is_binary, missing_path, number_lines
from mcode.tools.paths import RepoPath, repo_files, resolve

DEFAULT_MAX_RESULTS = 100
MAX_GREP_FILE_BYTES = 5_000_000
MAX_MATCH_CHARS = 300
_SNIFF = 8192


class _Found:
    """Matches as they are found: the first `limit` lines kept, everything counted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lines: list[str] = []
        self.per_file: dict[str, int] = {}
        self.skipped: dict[str, list[str]] = {}

    def skip(self, why: str, rel: str) -> None:
        self.skipped.setdefault(why, []).append(rel)

    @property
    def total(self) -> int:
        return sum(self.per_file.values())


def _grep_file(
    path: Path,
    rel: str,
    regex: re.Pattern[str],
    anywhere: re.Pattern[str],
    found: _Found,
    redacting: bool = True,
) -> None:
    """Add a file's matching lines; `anywhere` is the pattern in MULTILINE mode, which rules
    out most files with one search over the whole text (before redaction: it only saves work)."""
    try:
        if path.stat().st_size > MAX_GREP_FILE_BYTES:
            found.skip("larger than 5 MB", rel)
            return
        raw = path.read_bytes()
    except OSError:
        return
    if is_binary(rel, raw[:_SNIFF]):
        return
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n")
    if anywhere.search(text) is None:
        return
    if redacting:
        text = redact(text)
    for number, line in enumerate(text.split("\n"), 1):
        if regex.search(line) is None:
            continue
        found.per_file[rel] = found.per_file.get(rel, 0) + 1
        if len(found.lines) < found.limit:
            shown = line if len(line) <= MAX_MATCH_CHARS else line[:MAX_MATCH_CHARS] + "…"
            found.lines.append(f"{rel}:{number}:{shown}")


def _candidates(
    ctx: RepoAccess, base: RepoPath, glob: str | None, found: _Found
) -> list[tuple[Path, str]]:
    """The files under `base` to search, with secret and deny-ruled ones set aside."""
    prefix = "" if base.rel == "." else base.rel + "/"
    spec = GitIgnoreSpec.from_lines([glob]) if glob else None
    chosen = []
    for rel in repo_files(ctx.root):
        if not rel.startswith(prefix) or (spec and not spec.match_file(rel[len(prefix) :])):
            continue
        try:
            target = resolve(ctx.root, rel)
        except ToolError:
            continue  # a symlink leading out of the repository
        if is_secret_path(rel) or is_secret_path(target.real_rel):
            found.skip("secret", rel)
        elif ctx.permissions.denies_read(rel) or ctx.permissions.denies_read(target.real_rel):
            found.skip("denied by a Read rule", rel)
        elif target.path.is_file():
            chosen.append((target.path, rel))
    return chosen


@tool("read", parallel=True)
def grep(
    ctx: RepoAccess,
    pattern: str,
    path: str = ".",
    glob: str | None = None,
    ignore_case: bool = False,
    files_only: bool = False,
    max_results: Annotated[int, Range(1, 1000)] = DEFAULT_MAX_RESULTS,
) -> str:
    """Search file contents with a regular expression; git-ignored files are skipped.

    Results come back as `path:line:text`. Use it to find exact identifiers, strings and usages;
    to find code by what it does, use code_search.

    Args:
        pattern: A Python regular expression, matched against each line.
        path: File or directory to search, relative to the repository root (default: the whole
            repository).
        glob: Only files matching this gitignore-style glob, e.g. `*.py` or `src/**/*.ts`
            (relative to `path`).
        ignore_case: Match case-insensitively.
        files_only: List the matching files with their match counts, not the lines.
        max_results: How many matching lines to show (default 100).
    """
    flags = re.IGNORECASE if ignore_case else 0
    try:
        regex = re.compile(pattern, flags)
        anywhere = re.compile(pattern, flags | re.MULTILINE)
    except re.error as exc:
        raise ToolError(
            f"invalid regular expression {pattern!r}: {exc}. It is Python `re` syntax; escape "
            "literal characters such as ( [ . * with a backslash."
        ) from None
    base = resolve(ctx.root, path)
    found = _Found(max_results)
    if base.path.is_file():
        shared = authorize_read(ctx, "grep", base)  # naming a secret file asks the user
        _grep_file(base.path, base.rel, regex, anywhere, found, redacting=not shared)
        if shared:
            return share(base.rel, _report(found, pattern, base.rel, files_only))
    elif base.path.is_dir():
        authorize_read(ctx, "grep", base)
        for file_path, rel in _candidates(ctx, base, glob, found):
            _grep_file(file_path, rel, regex, anywhere, found)
    else:
        raise missing_path(ctx, base.rel)
    return _report(found, pattern, base.rel, files_only)


def _report(found: _Found, pattern: str, where: str, files_only: bool) -> str:
    place = "the repository" if where == "." else where
    notes = [
        f"Skipped {len(rels)} {why} file{'s' * (len(rels) > 1)}: {', '.join(rels[:5])}"
        + ("…" if len(rels) > 5 else "")
        + (". Pass one as path to search it; the user is asked first." if why == "secret" else ".")
        for why, rels in found.skipped.items()
    ]
    if not found.per_file:
        return "\n".join([f"No matches for {pattern!r} in {place}.", *notes])
    files = len(found.per_file)
    summary = f"{found.total} matches in {files} file{'s' * (files > 1)}"
    if files_only:
        body = [f"{rel} ({n})" for rel, n in found.per_file.items()]
    else:
        body = found.lines
        if found.total > len(body):
            summary += (
                f"; showing the first {len(body)}. Narrow the pattern, path or glob, or use "
                "files_only to see every file"
            )
    return "\n".join([*body, f"({summary}.)", *notes])


@tool("read", parallel=True)
def code_search(
    ctx: RepoAccess,
    query: str,
    k: Annotated[int, Range(1, 50)] = 10,
    level: Literal["symbol", "file"] = "symbol",
) -> str:
    """Search the indexed codebase by meaning and by the names it mentions, best match first.

    Use it to find where something is implemented when you do not know the exact identifier, or to
    locate the code a bug report is about. For exact text, grep is better. A file's first result
    carries its module summary (what the file is for), when the index has one.

    Args:
        query: What you are looking for, in words or code: a behaviour, an error message,
            identifiers, a traceback.
        k: How many results (default 10).
        level: `symbol` (default) for functions and classes, `file` for one result per file.
    """
    if ctx.searcher is None:
        raise ToolError(
            "code search is not available: this repository has no archival index (the user can "
            "build one with `mcode index`). Use grep to search by pattern, or list_files."
        )
    if not query.strip():
        raise ToolError("query must not be empty")
    try:
        found = ctx.searcher.search(query, k, level)
    except SearchUnavailable as exc:
        raise ToolError(
            f"code search is not available yet: {exc}. Use grep to search by pattern meanwhile, "
            "or list_files."
        ) from None
    hits = [
        hit
        for hit in found
        if not is_secret_path(hit.path) and not ctx.permissions.denies_read(hit.path)
    ]
    if not hits:
        return f"No results for {query!r}. Try other words, or grep for an exact identifier."
    blocks = []
    described: set[str] = set()
    for rank, hit in enumerate(hits, 1):
        name = f" {hit.kind} {hit.symbol}".rstrip() if hit.symbol else ""
        lines = redact(hit.snippet).split("\n")  # an index built before redaction may hold keys
        more = lines[-1] == "…"
        body = number_lines(lines[:-1] if more else lines, hit.start_line)
        about = ""
        if hit.summary and hit.path not in described:  # once per file, with its first hit
            described.add(hit.path)
            about = f"   module summary: {redact(hit.summary)}\n"
        blocks.append(
            f"{rank}. {hit.path}:{hit.start_line}-{hit.end_line}{name}\n{about}{body}"
            + ("\n      …" if more else "")
        )
    return "\n\n".join(blocks)
