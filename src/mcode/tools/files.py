"""The file tools: read with line numbers, list, create, and edit by exact string replacement.

Every change goes through `write_file`, which tells the context's recorder what the file held
before (for `/undo`) and writes atomically. An edit shows the user its diff when the mode asks, and
refuses an ambiguous or missing `old_string` with a message that points the model at the fix.

What a read shows the model is redacted (`mcode.secrets`): secret values become `[REDACTED:kind]`,
lines and line numbers stay. A file that is secret by name (`.env`) is shown whole, but only after
the user agreed to share it, and under a header that keeps it out of the transcript. Since the model never sees a redacted value, an edit may not put a
marker into a file: that would replace the user's secret with the marker.
"""

from __future__ import annotations

import difflib
from collections import Counter, deque
from pathlib import Path
from typing import Annotated, Any, NotRequired, TypedDict

from pathspec import GitIgnoreSpec

from mcode.index.discover import BINARY_EXTENSIONS
from mcode.secrets import REDACTED, find_secrets, is_secret_path, redact, share
from mcode.tools.access import RepoAccess
from mcode.tools.base import Doc, Range, ToolError, tool
from mcode.tools.memory import LINE_NUMBER_PREFIX
from mcode.tools.paths import RepoPath, atomic_write, read_bytes, repo_files, resolve

DEFAULT_READ_LIMIT = 2000
MAX_LINE_CHARS = 2000
MAX_READ_CHARS = 100_000
COUNT_LINES_BELOW = 20_000_000  # bytes: past this, a page does not count the whole file's lines
MAX_LISTED = 300
SNIPPET_CONTEXT = 3
MAX_SNIPPET_LINES = 30
_SNIFF = 8192
# Lines before a page that its redaction looks at: a page that starts inside a private key still
# sees the key's BEGIN line (an RSA-8192 key is ~100 lines).
_REDACTION_CONTEXT = 120
_UNCHECKED: Any = object()

FilePath = Annotated[str, Doc("File path relative to the repository root.")]


# Shared helpers -------------------------------------------------------------------------------------


def number_lines(lines: list[str], first: int) -> str:
    """Lines as read_file shows them: `    12→text`."""
    return "\n".join(f"{n:>6}→{line}" for n, line in enumerate(lines, first))


def is_binary(rel: str, head: bytes) -> bool:
    dot = rel.rfind(".")
    return (dot > rel.rfind("/") + 1 and rel[dot:].lower() in BINARY_EXTENSIONS) or b"\0" in head


def unified_diff(rel: str, before: bytes | None, after: bytes) -> str:
    """The change as a unified diff, for the user to approve."""
    old = [] if before is None else before.decode("utf-8", "replace").splitlines(keepends=True)
    new = after.decode("utf-8", "replace").splitlines(keepends=True)
    lines = difflib.unified_diff(
        old, new, "/dev/null" if before is None else f"a/{rel}", f"b/{rel}", n=3
    )
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def write_file(
    ctx: RepoAccess, path: Path, data: bytes, expected: bytes | None = _UNCHECKED
) -> None:
    """The one way the tools change a file: tell the recorder what it held, then write it atomically.

    With `expected`, a file that changed since the tool read it (say, while the user looked at the
    diff) is not overwritten.
    """
    previous = read_bytes(path)
    if expected is not _UNCHECKED and previous != expected:
        raise ToolError(
            f"{path.name} changed on disk while the edit was prepared; nothing was written. "
            "Read it again and redo the edit."
        )
    if ctx.recorder is not None:
        ctx.recorder.before_write(path, previous)
    atomic_write(path, data)


def authorize_read(ctx: RepoAccess, tool: str, target: RepoPath) -> bool:
    """Check a read: allowed unless a rule says otherwise, but a secret file asks the user. True
    when the target is a secret file the user agreed to share: its text goes unredacted."""
    secret = is_secret_path(target.rel) or is_secret_path(target.real_rel)
    what = f"the secret file {target.rel}" if secret else target.rel
    ctx.authorize(
        tool,
        {"path": target.rel, "real_path": target.real_rel},
        kind="secret" if secret else "read",
        action=f"reading {what}",
        summary=f"Read {what}? Its contents would be sent to the model.",
        detail=target.rel,
    )
    return secret


def missing_path(ctx: RepoAccess, rel: str) -> ToolError:
    """The error for a path that does not exist, naming files the model may have meant."""
    names = repo_files(ctx.root)
    close = difflib.get_close_matches(rel, names, n=3, cutoff=0.6)
    if not close:
        base = rel.rsplit("/", 1)[-1]
        close = [n for n in names if n.rsplit("/", 1)[-1] == base][:3]
    hint = f" Did you mean {', '.join(close)}?" if close else " Use list_files to find it."
    return ToolError(f"{rel} does not exist.{hint}")


SHOWN_DIFF_LINES = 80  # of an edit made without asking: enough to see it, not a whole new file
_GERUNDS = {"Create": "creating", "Overwrite": "overwriting", "Edit": "editing"}


def _change(
    ctx: RepoAccess,
    tool: str,
    target: RepoPath,
    before: bytes | None,
    after: bytes,
    verb: str,
) -> None:
    """Ask for the change when the rules say so (showing its diff), then write it; when nobody
    was asked (accept-edits, auto, an allow rule), the diff goes to the user as output."""
    _refuse_markers_over_secrets(target.rel, before, after)
    diff = unified_diff(target.rel, before, after)
    asked = ctx.authorize(
        tool,
        {"path": target.rel, "real_path": target.real_rel},
        kind="edit",
        action=f"{_GERUNDS[verb]} {target.rel}",
        summary=f"{verb} {target.rel}?",
        detail=diff,
    )
    write_file(ctx, target.path, after, before)
    if not asked:
        lines = diff.splitlines()
        for line in lines[:SHOWN_DIFF_LINES]:
            ctx.on_output(line)
        if len(lines) > SHOWN_DIFF_LINES:
            ctx.on_output(f"… {len(lines) - SHOWN_DIFF_LINES} more lines of the diff")


def _refuse_markers_over_secrets(rel: str, before: bytes | None, after: bytes) -> None:
    """A change that adds `[REDACTED:…]` markers to a file holding secrets would most likely
    write back what read_file showed, replacing the user's secret values with the markers."""
    marker = REDACTED.encode()
    if before is None or after.count(marker) <= before.count(marker):
        return
    if find_secrets(before.decode("utf-8", "replace")):
        raise ToolError(
            f"the change to {rel} adds a {REDACTED}:…] marker; nothing was written. A marker "
            "stands for a secret value you were not shown, and writing it would destroy the "
            "value: leave those lines out of old_string and new_string, or ask the user."
        )


# read_file --------------------------------------------------------------------------------------


@tool("read", parallel=True, path_arg="path")
def read_file(
    ctx: RepoAccess,
    path: FilePath,
    offset: Annotated[int, Range(1)] = 1,
    limit: Annotated[int, Range(1, 5000)] = DEFAULT_READ_LIMIT,
) -> str:
    """Read a text file of the repository, with line numbers.

    Lines come back as `    12→text`; the number and arrow are not part of the file, so never copy
    them into edit_file. A long file comes back in pages: continue with the offset the note at the
    end gives. Read a file before editing it.

    Args:
        offset: First line to show (1-based, default 1).
        limit: How many lines to show (default 2000).
    """
    target = resolve(ctx.root, path)
    if target.path.is_dir():
        raise ToolError(f"{target.rel} is a directory; use list_files to see what it holds")
    if not target.path.exists():
        raise missing_path(ctx, target.rel)
    if not target.path.is_file():
        raise ToolError(f"{target.rel} is not a regular file")
    shared = authorize_read(ctx, "read_file", target)
    try:
        with open(target.path, "rb") as handle:
            if is_binary(target.rel, handle.read(_SNIFF)):
                raise ToolError(f"{target.rel} is a binary file; read_file shows text files only")
            handle.seek(0)
            size = target.path.stat().st_size
            page = _page(handle, target.rel, offset, limit, size, redacting=not shared)
            return share(target.rel, page) if shared else page
    except OSError as exc:
        raise ToolError(f"cannot read {target.rel}: {exc.strerror}") from exc


def _page(handle: Any, rel: str, offset: int, limit: int, size: int, *, redacting: bool) -> str:
    before: deque[str] = deque(maxlen=_REDACTION_CONTEXT if redacting else 0)
    shown: list[str] = []
    chars = 0
    total = 0
    counted = True
    for total, raw in enumerate(handle, 1):
        if total < offset:
            if redacting and total >= offset - _REDACTION_CONTEXT:
                before.append(_decoded(raw))
            continue
        if len(shown) < limit and chars < MAX_READ_CHARS:
            line = _decoded(raw)
            shown.append(line)
            chars += min(len(line), MAX_LINE_CHARS) + 8
        elif size > COUNT_LINES_BELOW:
            counted = False
            break
    if redacting and shown:  # before cutting long lines, so that no key is cut in half
        shown = redact("\n".join([*before, *shown])).split("\n")[len(before) :]
    shown = [
        f"{line[:MAX_LINE_CHARS]}… [line truncated, {len(line)} chars]"
        if len(line) > MAX_LINE_CHARS
        else line
        for line in shown
    ]
    if total == 0:
        return f"{rel} is empty."
    if not shown:
        raise ToolError(f"offset {offset} is past the end of {rel}, which has {total} lines")
    text = number_lines(shown, offset)
    last = offset + len(shown) - 1
    if counted and last >= total:
        return text
    of = f" of {total}" if counted else ""
    return (
        f"{text}\n[Showing lines {offset}-{last}{of}. Call read_file with offset={last + 1} "
        "to read more, or grep to find a specific part.]"
    )


def _decoded(raw: bytes) -> str:
    return raw.rstrip(b"\n").rstrip(b"\r").decode("utf-8", "replace")


# list_files -----------------------------------------------------------------------------------------


@tool("read", parallel=True)
def list_files(ctx: RepoAccess, path: str = ".", pattern: str | None = None) -> str:
    """List the repository's files (git-ignored files left out), optionally matching a glob.

    Use it to find files by name or to see how a directory is laid out. A large listing comes back
    as a summary per directory; narrow it with `path` or `pattern`.

    Args:
        path: Directory to list, relative to the repository root (default: all).
        pattern: Optional gitignore-style glob relative to `path`: `*.py` matches at any depth,
            `src/*.ts` only directly in src, `**/test_*.py` anywhere.
    """
    base = resolve(ctx.root, path)
    if base.path.is_file():
        return base.rel
    if not base.path.is_dir():
        raise missing_path(ctx, base.rel)
    authorize_read(ctx, "list_files", base)
    prefix = "" if base.rel == "." else base.rel + "/"
    names = [n[len(prefix) :] for n in repo_files(ctx.root) if n.startswith(prefix)]
    if pattern:
        spec = GitIgnoreSpec.from_lines([pattern])
        names = [n for n in names if spec.match_file(n)]
    where = "the repository" if not prefix else base.rel
    if not names:
        return f"No files{f' match {pattern}' if pattern else ''} in {where}."
    if len(names) <= MAX_LISTED:
        listed = [prefix + n + (" (secret)" if is_secret_path(prefix + n) else "") for n in names]
        return "\n".join(listed) + f"\n({len(names)} files)"
    return _overview(names, prefix, where)


def _overview(names: list[str], prefix: str, where: str) -> str:
    """One line per first-level directory (with its file count) and per file directly inside."""
    dirs = Counter(n.split("/", 1)[0] for n in names if "/" in n)
    files = [n for n in names if "/" not in n]
    lines = [f"{prefix}{d}/ ({c} files)" for d, c in sorted(dirs.items())]
    lines += [prefix + f for f in files]
    more = len(lines) - MAX_LISTED
    lines = lines[:MAX_LISTED] + ([f"… and {more} more entries"] if more > 0 else [])
    head = (
        f"{len(names)} files in {where}, too many to list; here is the first level. "
        "Narrow it with path or pattern."
    )
    return head + "\n" + "\n".join(lines)


# create_file ----------------------------------------------------------------------------------------


@tool("edit", path_arg="path")
def create_file(ctx: RepoAccess, path: FilePath, content: str, overwrite: bool = False) -> str:
    """Create a new file with the given content (missing directories are created).

    To change part of an existing file, use edit_file. Replacing a whole existing file needs
    overwrite=true; read it first so nothing is lost.

    Args:
        content: The complete content of the file.
        overwrite: Replace the file if it exists (default false).
    """
    target = resolve(ctx.root, path, write=True)
    if target.path.is_dir():
        raise ToolError(f"{target.rel} is a directory")
    before = read_bytes(target.path)
    if before is not None and not overwrite:
        lines = before.count(b"\n")
        raise ToolError(
            f"{target.rel} already exists ({lines} lines); nothing was written. Use edit_file to "
            "change part of it, or pass overwrite=true to replace all of it."
        )
    after = content.encode("utf-8")
    if before == after:
        return f"{target.rel} already has exactly this content; nothing to do."
    verb = "Create" if before is None else "Overwrite"
    _change(ctx, "create_file", target, before, after, verb)
    lines = content.count("\n") + (not content.endswith("\n") and bool(content))
    done = "Created" if before is None else "Overwrote"
    return f"{done} {target.rel} ({lines} line{'s' * (lines != 1)})."


# edit_file and multi_edit ---------------------------------------------------------------------------


def _text_of(ctx: RepoAccess, target: RepoPath) -> tuple[bytes, str]:
    before = read_bytes(target.path)
    if before is None:
        if target.path.is_dir():
            raise ToolError(f"{target.rel} is a directory")
        raise ToolError(f"{target.rel} does not exist; use create_file to make a new file")
    if is_binary(target.rel, before[:_SNIFF]):
        raise ToolError(f"{target.rel} is a binary file; only text files can be edited")
    return before, before.decode("utf-8", "surrogateescape")


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _closest_line(text: str, old: str) -> tuple[int, str] | None:
    key = next((line.strip() for line in old.splitlines() if line.strip()), "")[:500]
    if not key:
        return None
    best: tuple[float, int, str] = (0.0, 0, "")
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(key)
    for number, line in enumerate(text.split("\n"), 1):
        matcher.set_seq1(line.strip()[:500])
        if matcher.real_quick_ratio() > best[0] and matcher.quick_ratio() > best[0]:
            ratio = matcher.ratio()
            if ratio > best[0]:
                best = (ratio, number, line)
    return (best[1], best[2]) if best[0] >= 0.4 else None


def _not_found(rel: str, text: str, old: str) -> ToolError:
    message = f"old_string not found in {rel}; nothing was changed."
    if LINE_NUMBER_PREFIX.search(old):
        message += (
            " It contains line-number prefixes such as '12→' from read_file; they are not part "
            "of the file, so leave them out."
        )
    elif " ".join(old.split()) in " ".join(text.split()):
        message += " It matches only if whitespace is ignored: copy indentation and line breaks."
    closest = _closest_line(text, old)
    if closest is not None:
        number, line = closest
        shown = line.strip()
        shown = shown if len(shown) <= 160 else shown[:160] + "…"
        message += f" The closest line is {number}: `{shown}`."
    return ToolError(
        message + " Copy the text exactly as the file has it now (read it again if unsure)."
    )


def _numbered(text: str) -> bool:
    """Whether most lines carry read_file's `12→` prefix, pasted by mistake."""
    lines = [line for line in text.split("\n") if line.strip()]
    hits = sum(1 for line in lines if LINE_NUMBER_PREFIX.match(line))
    return bool(lines) and hits * 2 >= len(lines)


def apply_edit(
    rel: str, text: str, old: str, new: str, replace_all: bool = False
) -> tuple[str, list[int]]:
    """The text after one exact replacement, and the lines where `old` began; a ToolError when
    `old` is missing or, without replace_all, not unique."""
    if not old:
        raise ToolError(
            "old_string is empty; to add text, quote the neighbouring line in old_string and "
            "repeat it in new_string. To make a new file, use create_file."
        )
    if old == new:
        raise ToolError("old_string and new_string are the same; there is nothing to change")
    if _numbered(new):
        raise ToolError(
            "new_string has line-number prefixes such as '12→' on its lines; they are only "
            "read_file's display. Pass the code itself. Nothing was changed."
        )
    if "\r\n" in text and "\r" not in old:  # the model writes \n; keep the file's line endings
        old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
    starts: list[int] = []
    at = text.find(old)
    while at != -1:
        starts.append(at)
        at = text.find(old, at + len(old))
    if not starts:
        raise _not_found(rel, text, old)
    lines = [_line_of(text, s) for s in starts]
    if len(starts) > 1 and not replace_all:
        raise ToolError(
            f"old_string occurs {len(starts)} times in {rel} (lines "
            f"{', '.join(map(str, dict.fromkeys(lines)))}); nothing was changed. Include more surrounding "
            "lines so it occurs once, or set replace_all to change every occurrence."
        )
    count = -1 if replace_all else 1
    return text.replace(old, new, count), lines


def _snippet(text: str, first: int, last: int) -> str:
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if lines and not lines[-1]:
        lines.pop()
    start = max(1, first - SNIPPET_CONTEXT)
    end = min(len(lines), last + SNIPPET_CONTEXT, start + MAX_SNIPPET_LINES - 1)
    return number_lines(lines[start - 1 : end], start)


OldString = Annotated[
    str,
    Doc(
        "The exact text to replace, copied from the file (whitespace too, no line numbers). It "
        "must occur exactly once unless replace_all is set."
    ),
]
NewString = Annotated[str, Doc("The text to put in its place.")]
ReplaceAll = Annotated[bool, Doc("Replace every occurrence instead of requiring exactly one.")]


class Edit(TypedDict):
    """One replacement of multi_edit, with edit_file's arguments."""

    old_string: OldString
    new_string: NewString
    replace_all: NotRequired[ReplaceAll]


@tool("edit", path_arg="path")
def edit_file(
    ctx: RepoAccess,
    path: FilePath,
    old_string: OldString,
    new_string: NewString,
    replace_all: ReplaceAll = False,
) -> str:
    """Replace an exact piece of text in a file.

    `old_string` must match the file exactly, including indentation, and occur exactly once;
    include a few surrounding lines to make it unique, or set replace_all. Read the file first.
    For several changes to one file, use multi_edit.
    """
    target = resolve(ctx.root, path, write=True)
    before, text = _text_of(ctx, target)
    after, lines = apply_edit(target.rel, text, old_string, new_string, replace_all)
    _change(ctx, "edit_file", target, before, after.encode("utf-8", "surrogateescape"), "Edit")
    if len(lines) > 1:
        where = ", ".join(map(str, dict.fromkeys(lines)))
        return f"Edited {target.rel}: replaced {len(lines)} occurrences (lines {where})."
    last = lines[0] + new_string.count("\n")
    return f"Edited {target.rel}. The changed part now reads:\n{_snippet(after, lines[0], last)}"


@tool("edit", path_arg="path")
def multi_edit(ctx: RepoAccess, path: FilePath, edits: Annotated[list[Edit], Range(1)]) -> str:
    """Make several exact replacements in one file at once: all of them, or none if any fails.

    Each edit works like edit_file's and sees the text left by the edits before it. Prefer it to
    a series of edit_file calls on the same file.

    Args:
        edits: Replacements applied in order, each to the result of the one before; all succeed
            or none is applied.
    """
    if not edits:
        raise ToolError("edits is empty; give at least one {old_string, new_string}")
    target = resolve(ctx.root, path, write=True)
    before, text = _text_of(ctx, target)
    for number, edit in enumerate(edits, 1):
        try:
            text, _ = apply_edit(
                target.rel,
                text,
                edit["old_string"],
                edit["new_string"],
                edit.get("replace_all", False),
            )
        except ToolError as exc:
            raise ToolError(
                f"edit {number} of {len(edits)} failed, so none was applied: {exc}"
            ) from exc
    after = text.encode("utf-8", "surrogateescape")
    _change(ctx, "multi_edit", target, before, after, "Edit")
    return f"Applied {len(edits)} edits to {target.rel}."
