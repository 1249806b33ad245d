"""Completion at the prompt (slash commands, `@path` mentions) and what a mention sends.

A mention `@src/a.py` in a submitted message attaches the file's text (its first lines, when
long) to the message the agent receives, so the model sees the file without a tool call.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from mcode.index.discover import discover
from mcode.secrets import is_secret_path, redact

REFRESH_SECONDS = 5.0
MAX_COMPLETIONS = 50
ATTACH_MAX_LINES = 400
ATTACH_MAX_CHARS = 40_000
# A mention starts a word: `a@b.c` (an address) is not one.
_MENTION = re.compile(r"(?<![^\s(\[{\"'`])@([^\s@]+)")
_MENTION_BEFORE_CURSOR = re.compile(r"(?:^|\s)@([^\s@]*)$")
_TRAILING_PUNCTUATION = ".,;:!?)]}'\"`"
_FILE_NAME = re.compile(r"\.[A-Za-z0-9]{1,8}$")  # an extension: name.py, Makefile.am


class RepoFiles:
    """The repository's files for `@` completion: listed by `discover` (git's list when there is
    one), cached, and listed again at most every few seconds, only when asked."""

    def __init__(
        self,
        root: Path,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._paths: list[str] = []
        self._listed_at: float | None = None

    def paths(self) -> list[str]:
        now = self._clock()
        if self._listed_at is None or now - self._listed_at >= self.refresh_seconds:
            # On failure the last list stays: completion must never break the prompt.
            with contextlib.suppress(OSError):
                self._paths = [f.path for f in discover(self.root).files]
            self._listed_at = now
        return self._paths


class ReplCompleter(Completer):
    """Slash commands at the start of the line; repository paths after `@` anywhere."""

    def __init__(self, commands: Mapping[str, str], files: RepoFiles) -> None:
        self.commands = commands  # name (without "/") -> one-line help
        self.files = files

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        before = document.text_before_cursor
        if before.startswith("/") and not any(c.isspace() for c in before):
            yield from self._commands(before[1:])
            return
        mention = _MENTION_BEFORE_CURSOR.search(before)
        if mention is not None:
            yield from self._paths(mention.group(1))

    def _commands(self, typed: str) -> Iterable[Completion]:
        for name, help_text in self.commands.items():
            if name.startswith(typed):
                yield Completion(f"/{name}", start_position=-len(typed) - 1, display_meta=help_text)

    def _paths(self, typed: str) -> Iterable[Completion]:
        for path in rank_paths(self.files.paths(), typed)[:MAX_COMPLETIONS]:
            yield Completion(f"@{path}", start_position=-len(typed) - 1, display=path)


def rank_paths(paths: Sequence[str], typed: str) -> list[str]:
    """Paths that start with what was typed, then those whose file name does, then those that
    contain it anywhere; each group in the listing's order."""
    if not typed:
        return list(paths)
    lowered = typed.lower()
    starts, names, contains = [], [], []
    for path in paths:
        low = path.lower()
        if low.startswith(lowered):
            starts.append(path)
        elif low.rsplit("/", 1)[-1].startswith(lowered):
            names.append(path)
        elif lowered in low:
            contains.append(path)
    return starts + names + contains


@dataclass
class Attachments:
    """The message for the agent, and what was attached or left out, to tell the user."""

    text: str
    attached: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "path: why"


def mentioned_paths(text: str) -> list[str]:
    """Every `@path` in the text, in order, once each, trailing punctuation kept (the caller
    tries it with and without)."""
    return list(dict.fromkeys(m.group(1) for m in _MENTION.finditer(text)))


def attach_mentions(
    text: str,
    root: Path,
    *,
    max_lines: int = ATTACH_MAX_LINES,
    max_chars: int = ATTACH_MAX_CHARS,
) -> Attachments:
    """Append the text of every mentioned file of the repository to the message.

    A mention that names no file is left as it is, and the user told when it looks like a path
    (`@nope/missing.py`: a typo, most likely) rather than a directory or a word (`@property`);
    secret files (`.env`, keys) are never attached, and secret values in the others are redacted.
    """
    result = Attachments(text)
    blocks = []
    root = root.resolve()
    for mention in mentioned_paths(text):
        rel = _existing(root, mention)
        if rel is None:
            if _looks_like_a_file(root, mention):
                name = mention.rstrip(_TRAILING_PUNCTUATION)
                result.skipped.append(f"{name}: not found in the repository; not attached")
            continue
        if is_secret_path(rel):
            result.skipped.append(f"{rel}: looks like a secret; not attached")
            continue
        block = _file_block(root / rel, rel, max_lines, max_chars)
        if block is None:
            result.skipped.append(f"{rel}: not a text file; not attached")
            continue
        blocks.append(block)
        result.attached.append(rel)
    if blocks:
        result.text = "\n\n".join([text, *blocks])
    return result


def _looks_like_a_file(root: Path, mention: str) -> bool:
    name = mention.rstrip(_TRAILING_PUNCTUATION)
    if not name or (root / name).exists():
        return False  # a directory
    return "/" in name or _FILE_NAME.search(name) is not None


def _existing(root: Path, mention: str) -> str | None:
    """The repo-relative path a mention names, trying it without trailing punctuation too."""
    candidates = [mention]
    stripped = mention.rstrip(_TRAILING_PUNCTUATION)
    if stripped and stripped != mention:
        candidates.append(stripped)
    for candidate in candidates:
        path = (root / candidate).resolve()
        if path.is_file() and path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return None


def _file_block(path: Path, rel: str, max_lines: int, max_chars: int) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    text = redact(data.decode("utf-8", errors="replace"))
    lines = text.splitlines()
    shown = "\n".join(lines[:max_lines])
    cut = len(lines) > max_lines
    if len(shown) > max_chars:
        shown, cut = shown[:max_chars], True
    shown_lines = shown.count("\n") + 1 if shown else 0
    note = f" (the first {shown_lines} of {len(lines)} lines)" if cut else ""
    return f'<file path="{rel}"{note}>\n{shown}\n</file>'
