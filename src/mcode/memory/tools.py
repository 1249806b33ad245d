"""The tools through which the agent edits and searches its own memory (Letta's semantics).

Each tool is a plain function whose docstring is what the model reads, with an explicit JSON schema
in OpenAI function-calling format. A tool sees only a `ToolContext` (the block store, the archival
and recall handles, the actor's name), never the agent. A tool returns a short result for the model;
a refusal is a `MemoryToolError` whose message the agent loop feeds back so the model can correct
itself.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from mcode.memory.blocks import BlockStore, BlockStoreError, LimitExceededError
from mcode.memory.frontmatter import BlockContent, normalize_value
from mcode.memory.history import HistoryEntry

# What a model copies when it quotes a block shown with line numbers: "12→text" or "Line 3: text".
LINE_NUMBER_PREFIX = re.compile(r"^[ \t]*(?:\d+[ \t]*→|Line \d+:)", re.MULTILINE)
ROLES = ("user", "assistant", "tool")
MAX_RESULTS = 50
_H = TypeVar("_H")


class MemoryToolError(Exception):
    """A memory tool refused its call; the message tells the model what to do differently."""


class ArchivalMemory(Protocol):
    """Long-term passages the agent files away and searches on demand."""

    def insert(self, content: str, tags: list[str]) -> str:
        """Store a passage; its id."""
        ...

    def search(self, query: str, tags: list[str] | None, k: int) -> list[dict[str, Any]]:
        """The best `k` passages for `query`, restricted to `tags` when given; best first."""
        ...


class RecallMemory(Protocol):
    """Every message of every session, searchable after it has left the context window."""

    def search(
        self,
        query: str,
        roles: list[str] | None,
        limit: int,
        start_date: datetime | None,
        end_date: datetime | None,
    ) -> list[dict[str, Any]]:
        """Matching messages, best first; dates are timezone-aware and inclusive."""
        ...


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Everything a memory tool may touch, and who is calling (recorded in block history)."""

    blocks: BlockStore
    archival: ArchivalMemory | None = None
    recall: RecallMemory | None = None
    actor: str = "agent"


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    run: Callable[..., str]

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-calling declaration."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def __call__(self, context: ToolContext, arguments: dict[str, Any] | str) -> str:
        """Run with the model's arguments (a dict, or the JSON string a model sends)."""
        args = _check_arguments(self.name, self.parameters, _decode(self.name, arguments))
        try:
            return self.run(context, **args)
        except LimitExceededError as exc:
            raise MemoryToolError(
                f"{exc}. Shorten the text, or condense the block with memory_rethink."
            ) from exc
        except BlockStoreError as exc:
            raise MemoryToolError(str(exc)) from exc


class ToolRegistry:
    """Tools by name; a second tool with a taken name is a programming error, refused at once."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(self._tools)
            raise MemoryToolError(f"unknown tool {name!r}; available: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        return [tool.schema() for tool in self._tools.values()]

    def run(self, name: str, context: ToolContext, arguments: dict[str, Any] | str) -> str:
        return self.get(name)(context, arguments)


# Argument checking --------------------------------------------------------------------------------


def _decode(tool: str, arguments: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError as exc:
            raise MemoryToolError(f"{tool}: arguments are not valid JSON: {exc}") from exc
    if not isinstance(arguments, dict):
        raise MemoryToolError(f"{tool}: arguments must be a JSON object")
    return arguments


def _coerce(tool: str, name: str, spec: dict[str, Any], value: Any) -> Any:
    kind = spec.get("type")
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "integer" and not isinstance(value, bool):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int):
            low, high = spec.get("minimum"), spec.get("maximum")
            if (low is not None and value < low) or (high is not None and value > high):
                raise MemoryToolError(f"{tool}: {name} must be between {low} and {high}")
            return value
    if kind == "array":
        items = [value] if isinstance(value, str) else value  # a lone tag for a list of tags
        if isinstance(items, list) and all(isinstance(item, str) for item in items):
            allowed = spec.get("items", {}).get("enum")
            bad = [item for item in items if allowed and item not in allowed]
            if bad:
                raise MemoryToolError(f"{tool}: {name} may only contain {', '.join(allowed)}")
            return items
    expected = {"string": "text", "integer": "a whole number", "array": "a list of strings"}
    raise MemoryToolError(f"{tool}: {name} must be {expected.get(kind, kind)}, got {value!r}")


def _check_arguments(tool: str, schema: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    unknown = sorted(set(args) - set(properties))
    if unknown:
        expected = ", ".join(properties)
        raise MemoryToolError(f"{tool}: unexpected argument {unknown[0]!r}; expected {expected}")
    present = {k: v for k, v in args.items() if v is not None}  # models send null for "unset"
    missing = [k for k in schema.get("required", []) if k not in present]
    if missing:
        raise MemoryToolError(f"{tool}: missing required argument {missing[0]!r}")
    return {k: _coerce(tool, k, properties[k], v) for k, v in present.items()}


def _reject_line_numbers(name: str, text: str) -> None:
    if LINE_NUMBER_PREFIX.search(text):
        raise MemoryToolError(
            f"{name} contains line-number prefixes such as '12→' or 'Line 3:'; they are only "
            "for display. Pass the block's text itself, without them. Nothing was changed."
        )


def _tool(parameters: dict[str, Any]) -> Callable[[Callable[..., str]], Tool]:
    """Make a Tool of a function: its name is the function's, its description the docstring."""

    def wrap(function: Callable[..., str]) -> Tool:
        schema = {"type": "object", "additionalProperties": False, **parameters}
        description = inspect.cleandoc(function.__doc__ or "")
        return Tool(function.__name__, description, schema, function)

    return wrap


def _edited(label: str, entry: HistoryEntry | None, verb: str = "Edited") -> str:
    if entry is None or entry.new is None:
        return f"Memory block `{label}` is unchanged: the new text is the same as the old."
    new = entry.new
    return (
        f"{verb} memory block `{label}` ({new.chars}/{new.limit} chars). "
        "Check that it reads as you intended; edit it again if not."
    )


_LABEL = {"type": "string", "description": "The label of the memory block, e.g. `project`."}
_REASON = {
    "type": "string",
    "description": "Optional: why you are making this change, recorded in the block's history "
    "for the user to review.",
}


# Core memory --------------------------------------------------------------------------------------


@_tool(
    {
        "properties": {
            "label": _LABEL,
            "old": {
                "type": "string",
                "description": "Text to replace, copied exactly from the block (whitespace too), "
                "without line numbers. It must occur exactly once.",
            },
            "new": {
                "type": "string",
                "description": "The replacement text; an empty string deletes `old`.",
            },
            "reason": _REASON,
        },
        "required": ["label", "old", "new"],
    }
)
def memory_replace(
    context: ToolContext, label: str, old: str, new: str, reason: str | None = None
) -> str:
    """Replace one exact passage of a memory block with new text.

    Use it to correct or update a specific fact. `old` must appear exactly once in the block; if it
    appears several times, include more of the surrounding text. To delete a passage, pass an empty
    `new`. Memory blocks have a size limit; a change past it is refused.
    """
    if not old:
        raise MemoryToolError("old must not be empty; to add text, use memory_insert")
    _reject_line_numbers("old", old)
    _reject_line_numbers("new", new)

    def change(current: BlockContent | None) -> BlockContent:
        if current is None:
            raise context.blocks.not_found(label)
        count = current.value.count(old)
        if count == 0:
            raise MemoryToolError(
                f"old text not found in memory block {label!r}; nothing was changed. "
                "Copy it exactly from the block, whitespace included."
            )
        if count > 1:
            lines = [i for i, line in enumerate(current.value.split("\n"), 1) if old in line]
            where = f" (lines {', '.join(map(str, lines))})" if lines else ""
            raise MemoryToolError(
                f"old text occurs {count} times in memory block {label!r}{where}; nothing was "
                "changed. Include more surrounding text so that it occurs once."
            )
        return replace(current, value=current.value.replace(old, new, 1))

    entry = context.blocks.update(
        label, change, actor=context.actor, reason=reason or "memory_replace", op="replace"
    )
    return _edited(label, entry)


@_tool(
    {
        "properties": {
            "label": _LABEL,
            "text": {"type": "string", "description": "The text to insert, without line numbers."},
            "line": {
                "type": "integer",
                "minimum": -1,
                "description": "Insert after this line: 0 puts the text at the top, N after line "
                "N, -1 (the default) at the end.",
            },
            "reason": _REASON,
        },
        "required": ["label", "text"],
    }
)
def memory_insert(
    context: ToolContext, label: str, text: str, line: int = -1, reason: str | None = None
) -> str:
    """Insert text into a memory block as new lines, at the end unless you give a line.

    Use it to record something new: a convention you learned, a user preference, a lesson from a
    mistake. Memory blocks have a size limit; an insertion past it is refused.
    """
    addition = normalize_value(text)
    if not addition:
        raise MemoryToolError("text must not be empty")
    _reject_line_numbers("text", addition)

    def change(current: BlockContent | None) -> BlockContent:
        if current is None:
            raise context.blocks.not_found(label)
        lines = current.value.split("\n") if current.value else []
        at = len(lines) if line == -1 else line
        if not 0 <= at <= len(lines):
            raise MemoryToolError(
                f"line {line} is out of range: memory block {label!r} has {len(lines)} lines; use "
                f"0 to {len(lines)} (0 inserts at the top), or -1 for the end"
            )
        return replace(current, value="\n".join([*lines[:at], addition, *lines[at:]]))

    entry = context.blocks.update(
        label, change, actor=context.actor, reason=reason or "memory_insert", op="insert"
    )
    return _edited(label, entry)


@_tool(
    {
        "properties": {
            "label": _LABEL,
            "new_value": {
                "type": "string",
                "description": "The complete new text of the block, without line numbers.",
            },
            "description": {
                "type": "string",
                "description": "Only when creating a block: what the block is for.",
            },
            "reason": _REASON,
        },
        "required": ["label", "new_value"],
    }
)
def memory_rethink(
    context: ToolContext,
    label: str,
    new_value: str,
    description: str | None = None,
    reason: str | None = None,
) -> str:
    """Rewrite a memory block completely with new text (creating the block if it does not exist).

    Use it to reorganise or condense a block, or to start a new one. Everything not in `new_value`
    is removed, so carry over what is still true. Memory blocks have a size limit; a rewrite past it
    is refused.
    """
    _reject_line_numbers("new_value", new_value)
    created = False

    def change(current: BlockContent | None) -> BlockContent:
        nonlocal created
        if current is None:
            created = True
            return BlockContent(value=new_value, description=description or "")
        return replace(current, value=new_value)

    entry = context.blocks.update(
        label, change, actor=context.actor, reason=reason or "memory_rethink", op="rethink"
    )
    return _edited(label, entry, "Created" if created else "Rewrote")


# Archival and recall memory -----------------------------------------------------------------------


def _need(handle: _H | None, what: str) -> _H:
    if handle is None:
        raise MemoryToolError(f"{what} is not available in this session")
    return handle


def _clean_tags(tags: list[str] | None) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in tags or [] if t.strip()))


def _results(results: list[dict[str, Any]]) -> str:
    if not results:
        return "No results found."
    body = "\n".join(json.dumps(r, ensure_ascii=False, default=str) for r in results)
    return f"Showing {len(results)} results, best first:\n{body}"


_TAGS = {"type": "array", "items": {"type": "string"}}


@_tool(
    {
        "properties": {
            "content": {
                "type": "string",
                "description": "The passage to store; self-contained, so it makes sense when found "
                "later without this conversation.",
            },
            "tags": {**_TAGS, "description": "Optional tags to filter searches by later."},
        },
        "required": ["content"],
    }
)
def archival_memory_insert(
    context: ToolContext, content: str, tags: list[str] | None = None
) -> str:
    """Store a passage in archival memory, your long-term store outside the prompt.

    Use it for knowledge worth keeping that is too detailed for a memory block: how a subsystem
    works, the outcome of an investigation, a decision and its reasons. Find it later with
    archival_memory_search.
    """
    archival = _need(context.archival, "archival memory")
    text = content.strip()
    if not text:
        raise MemoryToolError("content must not be empty")
    passage_id = archival.insert(text, _clean_tags(tags))
    return f"Stored in archival memory (id {passage_id})."


@_tool(
    {
        "properties": {
            "query": {"type": "string", "description": "What to look for, in words or code."},
            "tags": {**_TAGS, "description": "Optional: only passages with one of these tags."},
            "k": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_RESULTS,
                "description": "How many results to return (default 10).",
            },
        },
        "required": ["query"],
    }
)
def archival_memory_search(
    context: ToolContext, query: str, tags: list[str] | None = None, k: int = 10
) -> str:
    """Search archival memory: the indexed codebase, module summaries and passages you stored.

    Use it before answering from assumption: to find where something is defined, how a module
    works, or what you recorded earlier.
    """
    archival = _need(context.archival, "archival memory")
    if not query.strip():
        raise MemoryToolError("query must not be empty")
    return _results(archival.search(query, _clean_tags(tags) or None, k))


def _parse_date(name: str, value: str | None, end: bool) -> datetime | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MemoryToolError(
            f"{name} {value!r} is not a date; use ISO 8601, e.g. 2025-05-01 or 2025-05-01T14:30"
        ) from None
    if end and len(text) == len("2025-05-01"):  # a whole day: up to its last moment
        moment = moment.replace(hour=23, minute=59, second=59, microsecond=999_999)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@_tool(
    {
        "properties": {
            "query": {"type": "string", "description": "Words to look for in past messages."},
            "roles": {
                "type": "array",
                "items": {"type": "string", "enum": list(ROLES)},
                "description": "Optional: only messages from these roles.",
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_RESULTS,
                "description": "How many messages to return (default 5).",
            },
            "start_date": {
                "type": "string",
                "description": "Optional: only messages on or after this date (ISO 8601, UTC "
                "unless a timezone is given), e.g. 2025-05-01.",
            },
            "end_date": {
                "type": "string",
                "description": "Optional: only messages on or before this date (a bare date "
                "includes that whole day).",
            },
        },
        "required": ["query"],
    }
)
def conversation_search(
    context: ToolContext,
    query: str,
    roles: list[str] | None = None,
    limit: int = 5,
    start_date: str | None = None,
    end_date: str | None = None,
) -> str:
    """Search past conversations, including messages that have left your context window.

    Use it when the user refers to something discussed before, or to recall what was decided or
    tried in an earlier session.
    """
    recall = _need(context.recall, "conversation history")
    start = _parse_date("start_date", start_date, end=False)
    end = _parse_date("end_date", end_date, end=True)
    if start and end and start > end:
        raise MemoryToolError("start_date is after end_date")
    return _results(recall.search(query, roles or None, limit, start, end))


MEMORY_TOOLS: tuple[Tool, ...] = (
    memory_replace,
    memory_insert,
    memory_rethink,
    archival_memory_insert,
    archival_memory_search,
    conversation_search,
)


def memory_tools() -> ToolRegistry:
    """A fresh registry of the six memory tools, for the agent to extend with its own."""
    return ToolRegistry(MEMORY_TOOLS)
