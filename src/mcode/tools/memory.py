"""The tools through which the agent edits and searches its own memory (Letta's semantics).

They work through a `MemoryAccess`: the block store, the archival and recall handles and the
actor's name. A refusal from the block store (a read-only block, a change past the limit, a block
file that is a symlink) reaches the model as a `ToolError` that says what to do instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from mcode.memory.blocks import BlockStoreError, LimitExceededError
from mcode.memory.frontmatter import BlockContent, normalize_value
from mcode.memory.history import HistoryEntry
from mcode.memory.rules import RuleError, make_rule, with_rule
from mcode.tools.access import MemoryAccess
from mcode.tools.base import Doc, Range, ToolError, tool

# What a model copies when it quotes a block shown with line numbers: "12→text" or "Line 3: text".
LINE_NUMBER_PREFIX = re.compile(r"^[ \t]*(?:\d+[ \t]*→|Line \d+:)", re.MULTILINE)
Role = Literal["user", "assistant", "tool"]
Severity = Literal["error", "warning", "note"]
MAX_RESULTS = 50
_H = TypeVar("_H")

Label = Annotated[str, Doc("The label of the memory block, e.g. `project`.")]
Reason = Annotated[
    str,
    Doc(
        "Optional: why you are making this change, recorded in the block's history for the "
        "user to review."
    ),
]


def _reject_line_numbers(name: str, text: str) -> None:
    if LINE_NUMBER_PREFIX.search(text):
        raise ToolError(
            f"{name} contains line-number prefixes such as '12→' or 'Line 3:'; they are only "
            "for display. Pass the block's text itself, without them. Nothing was changed."
        )


def _update(
    memory: MemoryAccess,
    label: str,
    change: Callable[[BlockContent | None], BlockContent],
    reason: str,
    op: str,
) -> HistoryEntry | None:
    """Change a block through the store, its refusals told to the model."""
    try:
        return memory.blocks.update(label, change, actor=memory.actor, reason=reason, op=op)
    except LimitExceededError as exc:
        raise ToolError(
            f"{exc}. Shorten the text, or condense the block with memory_rethink."
        ) from exc
    except BlockStoreError as exc:
        raise ToolError(str(exc)) from exc


def _edited(label: str, entry: HistoryEntry | None, verb: str = "Edited") -> str:
    if entry is None or entry.new is None:
        return f"Memory block `{label}` is unchanged: the new text is the same as the old."
    new = entry.new
    return (
        f"{verb} memory block `{label}` ({new.chars}/{new.limit} chars). "
        "Check that it reads as you intended; edit it again if not."
    )


# Core memory --------------------------------------------------------------------------------------


@tool("memory")
def memory_replace(
    memory: MemoryAccess, label: Label, old: str, new: str, reason: Reason | None = None
) -> str:
    """Replace one exact passage of a memory block with new text.

    Use it to correct or update a specific fact. `old` must appear exactly once in the block; if it
    appears several times, include more of the surrounding text. To delete a passage, pass an empty
    `new`. Memory blocks have a size limit; a change past it is refused.

    Args:
        old: Text to replace, copied exactly from the block (whitespace too), without line
            numbers. It must occur exactly once.
        new: The replacement text; an empty string deletes `old`.
    """
    if not old:
        raise ToolError("old must not be empty; to add text, use memory_insert")
    _reject_line_numbers("old", old)
    _reject_line_numbers("new", new)

    def change(current: BlockContent | None) -> BlockContent:
        if current is None:
            raise memory.blocks.not_found(label)
        count = current.value.count(old)
        if count == 0:
            raise ToolError(
                f"old text not found in memory block {label!r}; nothing was changed. "
                "Copy it exactly from the block, whitespace included."
            )
        if count > 1:
            lines = [i for i, line in enumerate(current.value.split("\n"), 1) if old in line]
            where = f" (lines {', '.join(map(str, lines))})" if lines else ""
            raise ToolError(
                f"old text occurs {count} times in memory block {label!r}{where}; nothing was "
                "changed. Include more surrounding text so that it occurs once."
            )
        return replace(current, value=current.value.replace(old, new, 1))

    entry = _update(memory, label, change, reason or "memory_replace", "replace")
    return _edited(label, entry)


@tool("memory")
def memory_insert(
    memory: MemoryAccess,
    label: Label,
    text: str,
    line: Annotated[int, Range(-1)] = -1,
    reason: Reason | None = None,
) -> str:
    """Insert text into a memory block as new lines, at the end unless you give a line.

    Use it to record something new: a convention you learned, a user preference, a lesson from a
    mistake. Memory blocks have a size limit; an insertion past it is refused.

    Args:
        text: The text to insert, without line numbers.
        line: Insert after this line: 0 puts the text at the top, N after line N, -1 (the
            default) at the end.
    """
    addition = normalize_value(text)
    if not addition:
        raise ToolError("text must not be empty")
    _reject_line_numbers("text", addition)

    def change(current: BlockContent | None) -> BlockContent:
        if current is None:
            raise memory.blocks.not_found(label)
        lines = current.value.split("\n") if current.value else []
        at = len(lines) if line == -1 else line
        if not 0 <= at <= len(lines):
            raise ToolError(
                f"line {line} is out of range: memory block {label!r} has {len(lines)} lines; use "
                f"0 to {len(lines)} (0 inserts at the top), or -1 for the end"
            )
        return replace(current, value="\n".join([*lines[:at], addition, *lines[at:]]))

    entry = _update(memory, label, change, reason or "memory_insert", "insert")
    return _edited(label, entry)


@tool("memory")
def memory_rethink(
    memory: MemoryAccess,
    label: Label,
    new_value: str,
    description: str | None = None,
    reason: Reason | None = None,
) -> str:
    """Rewrite a memory block completely with new text (creating the block if it does not exist).

    Use it to reorganise or condense a block, or to start a new one. Everything not in `new_value`
    is removed, so carry over what is still true. Memory blocks have a size limit; a rewrite past it
    is refused.

    Args:
        new_value: The complete new text of the block, without line numbers.
        description: Only when creating a block: what the block is for.
    """
    _reject_line_numbers("new_value", new_value)
    created = False

    def change(current: BlockContent | None) -> BlockContent:
        nonlocal created
        if current is None:
            created = True
            return BlockContent(value=new_value, description=description or "")
        return replace(current, value=new_value)

    entry = _update(memory, label, change, reason or "memory_rethink", "rethink")
    return _edited(label, entry, "Created" if created else "Rewrote")


@tool("memory")
def review_rule_add(
    memory: MemoryAccess,
    rule_id: str,
    pattern: str,
    message: str,
    paths: list[str] | None = None,
    severity: Severity = "error",
    label: str = "lessons",
    reason: Reason | None = None,
) -> str:
    """Add a check that `mcode review` runs on every later commit, without a model: a regular
    expression searched in each line a change adds.

    Use it when the user corrects a mistake that a pattern can recognise (a forbidden call, import
    or name), so that the lesson holds on every commit, yours and the team's. Keep the pattern
    specific: every added line it matches is flagged. A rule with the same id in the block is
    replaced.

    Args:
        rule_id: A short name for the rule, a-z, 0-9, '_' and '-', e.g. `no-print`.
        pattern: A Python regular expression searched in each added line, e.g. `^\\s*print\\(`.
            No backreferences, and no repetition of a group that itself repeats, like `(a+)+`.
        message: What is wrong and what to do instead; shown with each finding.
        paths: Optional: gitignore-style globs of the files it applies to, e.g. `src/**/*.py`.
        severity: `error` stops the commit (the default); `warning` and `note` only report.
        label: The memory block that keeps the rule: `lessons` (the default) or `project`.
    """
    data = {"id": rule_id, "pattern": pattern, "message": message, "severity": severity}
    try:
        rule = make_rule({**data, "paths": paths or []}, label)
    except RuleError as exc:
        raise ToolError(f"{exc}; nothing was changed") from None

    def change(current: BlockContent | None) -> BlockContent:
        if current is None:
            raise memory.blocks.not_found(label)
        try:
            return replace(current, extra=with_rule(current.extra, rule))
        except RuleError as exc:
            raise ToolError(str(exc)) from None

    entry = _update(memory, label, change, reason or "review_rule_add", "rule")
    if entry is None:
        return f"Memory block `{label}` already has this rule; nothing changed."
    where = f" in {', '.join(rule.paths)}" if rule.paths else ""
    return (
        f"Added review rule `{rule.id}` to memory block `{label}`: `mcode review` now reports "
        f"added lines matching {rule.pattern!r}{where} as {rule.severity}s."
    )


# Archival and recall memory -----------------------------------------------------------------------


def _need(handle: _H | None, what: str) -> _H:
    if handle is None:
        raise ToolError(f"{what} is not available in this session")
    return handle


def _clean_tags(tags: list[str] | None) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in tags or [] if t.strip()))


def _results(results: list[dict[str, Any]]) -> str:
    if not results:
        return "No results found."
    body = "\n".join(json.dumps(r, ensure_ascii=False, default=str) for r in results)
    return f"Showing {len(results)} results, best first:\n{body}"


@tool("memory")
def archival_memory_insert(
    memory: MemoryAccess, content: str, tags: list[str] | None = None
) -> str:
    """Store a passage in archival memory, your long-term store outside the prompt.

    Use it for knowledge worth keeping that is too detailed for a memory block: how a subsystem
    works, the outcome of an investigation, a decision and its reasons. Find it later with
    archival_memory_search.

    Args:
        content: The passage to store; self-contained, so it makes sense when found later without
            this conversation.
        tags: Optional tags to filter searches by later.
    """
    archival = _need(memory.archival, "archival memory")
    text = content.strip()
    if not text:
        raise ToolError("content must not be empty")
    passage_id = archival.insert(text, _clean_tags(tags))
    return f"Stored in archival memory (id {passage_id})."


@tool("search", parallel=True)
def archival_memory_search(
    memory: MemoryAccess,
    query: str,
    tags: list[str] | None = None,
    k: Annotated[int, Range(1, MAX_RESULTS)] = 10,
) -> str:
    """Search archival memory: the indexed codebase, module summaries and passages you stored.

    Use it before answering from assumption: to find where something is defined, how a module
    works, or what you recorded earlier.

    Args:
        query: What to look for, in words or code.
        tags: Optional: only passages with one of these tags.
        k: How many results to return (default 10).
    """
    archival = _need(memory.archival, "archival memory")
    if not query.strip():
        raise ToolError("query must not be empty")
    return _results(archival.search(query, _clean_tags(tags) or None, k))


def _parse_date(name: str, value: str | None, end: bool) -> datetime | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ToolError(
            f"{name} {value!r} is not a date; use ISO 8601, e.g. 2025-05-01 or 2025-05-01T14:30"
        ) from None
    if end and len(text) == len("2025-05-01"):  # a whole day: up to its last moment
        moment = moment.replace(hour=23, minute=59, second=59, microsecond=999_999)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@tool("search", parallel=True)
def conversation_search(
    memory: MemoryAccess,
    query: str,
    roles: list[Role] | None = None,
    limit: Annotated[int, Range(1, MAX_RESULTS)] = 5,
    start_date: str | None = None,
    end_date: str | None = None,
) -> str:
    """Search past conversations, including messages that have left your context window.

    Use it when the user refers to something discussed before, or to recall what was decided or
    tried in an earlier session.

    Args:
        query: Words to look for in past messages.
        roles: Optional: only messages from these roles.
        limit: How many messages to return (default 5).
        start_date: Optional: only messages on or after this date (ISO 8601, UTC unless a
            timezone is given), e.g. 2025-05-01.
        end_date: Optional: only messages on or before this date (a bare date includes that
            whole day).
    """
    recall = _need(memory.recall, "conversation history")
    start = _parse_date("start_date", start_date, end=False)
    end = _parse_date("end_date", end_date, end=True)
    if start and end and start > end:
        raise ToolError("start_date is after end_date")
    return _results(recall.search(query, roles or None, limit, start, end))
