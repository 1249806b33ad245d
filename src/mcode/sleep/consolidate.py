"""Consolidation of core memory: what the latest conversation established, written into the
`project` and `lessons` blocks by `sleep_model` while the user is away.

One request, over only what is new since the last consolidation of that session (the mark is a
line in the sleep log), once at least `sleep_consolidate_every` user turns have passed (Letta's
sleep-time agent runs every 5; 0 turns consolidation off). A session that ends asks with fewer
(`every=1`: anything new). The model answers with calls to the ordinary `memory_insert` and
`memory_replace` tools, which run as actor `sleep`: limits, read-only blocks and history apply,
and `mcode memory log` / `revert` show and undo each change. A line a person wrote (any line no
`agent` or `sleep` change added, including lines edited by hand) is never changed: such a call is
logged as a proposal instead. No call at all is a valid answer.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mcode.agent.llm import LLMError, ModelClient
from mcode.config import Settings
from mcode.context import render_template
from mcode.memory import BlockStore, BlockStoreError
from mcode.memory.history import HistoryEntry
from mcode.memory.sessions import SessionLog, SessionNotFound, StoredMessage
from mcode.sleep.costs import CONSOLIDATE, PROPOSAL, Budget, BudgetSpent, log_event
from mcode.sleep.model import estimate
from mcode.tools.access import MemoryAccess
from mcode.tools.base import ToolError
from mcode.tools.memory import memory_insert, memory_replace

ACTOR = "sleep"
MACHINE_ACTORS = frozenset({"agent", ACTOR})
LABELS = ("project", "lessons")
CONVERSATION_CHARS = 16_000  # the newest part of it, when more is new
_TOOLS = {tool.name: tool for tool in (memory_insert, memory_replace)}


@dataclass(slots=True)
class Consolidation:
    session: str = ""
    applied: list[str] = field(default_factory=list)  # "insert project", "replace lessons"
    proposals: list[dict[str, str]] = field(default_factory=list)  # changes to a person's lines
    refused: list[str] = field(default_factory=list)  # what the tools refused, and why
    lines: dict[str, list[int]] = field(default_factory=dict)  # label -> [added, removed]
    tokens: int = 0
    skipped: str = ""  # why nothing was asked: "not due", "budget", an error


def machine_lines(entries: Sequence[HistoryEntry], value: str) -> set[str]:
    """The lines of `value` that an `agent` or `sleep` change added and nobody rewrote since."""
    authors: dict[str, str] = {}
    for entry in entries:
        old = Counter((entry.old.value if entry.old else "").split("\n"))
        new = (entry.new.value if entry.new else "").split("\n")
        kept: Counter[str] = Counter()
        for line in new:
            if kept[line] < old[line]:
                kept[line] += 1  # there before: its author stays
            else:
                authors[line] = entry.actor
    return {line for line in value.split("\n") if authors.get(line) in MACHINE_ACTORS and line}


def due(
    settings: Settings, entries: list[dict[str, Any]], session: str | None, every: int
) -> tuple[str, int, list[StoredMessage]]:
    """The session (None: the latest), its length, and its messages since the last mark: none
    unless `every` user turns passed since (never, when `every` is 0)."""
    log = SessionLog(settings.paths.sessions)
    if session is None:
        latest = log.latest()
        if latest is None:
            return "", 0, []
        session = latest.id
    try:
        messages = log.load(session)
    except SessionNotFound:  # a session that has said nothing has no transcript yet
        return session, 0, []
    marks = [
        e.get("messages", 0)
        for e in entries
        if e.get("event") == CONSOLIDATE and e.get("session") == session
    ]
    new = messages[max(marks, default=0) :]
    turns = sum(1 for m in new if m.role == "user")
    return session, len(messages), new if every and turns >= every else []


def consolidate(
    settings: Settings,
    client: ModelClient,
    model: str,
    budget: Budget,
    entries: list[dict[str, Any]],
    *,
    session: str | None = None,
    every: int | None = None,
) -> Consolidation:
    """One consolidation of `session` (None: the latest), if it is due (`every` user turns since
    the last, by default `sleep_consolidate_every`) and fits the budget."""
    every = settings.sleep_consolidate_every if every is None else every
    session, count, new = due(settings, entries, session, every)
    result = Consolidation(session=session)
    if not new:
        result.skipped = "not due"
        return result
    blocks = BlockStore.for_paths(settings.paths)
    shown, machine = _blocks(blocks)
    values = {"blocks": shown, "conversation": _conversation(new)}
    messages = [{"role": "user", "content": render_template("sleep_consolidate.md", values)}]
    try:
        budget.check(estimate(messages))
    except BudgetSpent as exc:
        result.skipped = f"the {exc.which} token budget is spent"
        return result
    try:
        turn = client.complete(messages, tools=[tool.schema() for tool in _TOOLS.values()])
    except LLMError as exc:
        result.skipped = f"{model}: {exc}"
        return result
    result.tokens = turn.usage.total_tokens or estimate(messages)
    budget.charge(result.tokens)
    log_event(
        settings.paths.sleep_log,
        CONSOLIDATE,
        session=session,
        messages=count,
        tokens=result.tokens,
        generator=model,
    )
    access = MemoryAccess(blocks, actor=ACTOR)
    for call in turn.tool_calls:
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = None
        _apply(settings, access, machine, call.name, arguments, result)
    return result


def _blocks(blocks: BlockStore) -> tuple[str, dict[str, set[str]]]:
    """The blocks as the model sees them, each line marked with its writer, and per label the
    lines an agent or this pass wrote."""
    parts, machine = [], {}
    for label in LABELS:
        try:
            block = blocks.find(label)
            history = blocks.log(label)
        except BlockStoreError:
            continue
        if block is None:
            continue
        machine[label] = machine_lines(history, block.value)
        marked = [
            f"({'mcode' if line in machine[label] else 'person'}) {line}"
            for line in block.value.split("\n")
            if line.strip()
        ]
        flags = " (read-only)" if block.read_only else ""
        parts.append(f"## {label}{flags} ({block.chars}/{block.limit} chars)\n" + "\n".join(marked))
    return "\n\n".join(parts) or "(no project or lessons block)", machine


def _conversation(messages: Sequence[StoredMessage]) -> str:
    lines = [f"{m.role}: {m.text.strip()}" for m in messages if m.role in ("user", "assistant")]
    text = "\n\n".join(line for line in lines if line.split(": ", 1)[1])
    return text[-CONVERSATION_CHARS:]


def _apply(
    settings: Settings,
    access: MemoryAccess,
    machine: dict[str, set[str]],
    name: str,
    arguments: Any,
    result: Consolidation,
) -> None:
    tool = _TOOLS.get(name)
    if tool is None or not isinstance(arguments, dict):
        result.refused.append(f"{name}: not a memory edit this pass makes")
        return
    label = str(arguments.get("label", ""))
    old = str(arguments.get("old", ""))
    if label not in machine:  # only the blocks it was shown: never `human`, `persona`, others
        result.refused.append(f"{name} {label}: this pass edits only {' and '.join(LABELS)}")
        return
    if name == "memory_replace":
        theirs = [
            line
            for line in old.split("\n")
            if line.strip() and line not in machine.get(label, set())
        ]
        if theirs:
            proposal = {
                "label": label,
                "old": old,
                "new": str(arguments.get("new", "")),
                "reason": str(arguments.get("reason", "")),
            }
            result.proposals.append(proposal)
            log_event(settings.paths.sleep_log, PROPOSAL, **proposal)
            return
        block = access.blocks.find(label)
        emptied = block is not None and block.value.replace(old, "", 1).strip() == ""
        if emptied and not str(arguments.get("new", "")).strip():
            result.refused.append(f"{name} {label}: an edit may not empty a block")
            return
    try:
        tool(access, arguments)
    except ToolError as exc:
        result.refused.append(f"{name} {label}: {exc}")
        return
    result.applied.append(f"{name.removeprefix('memory_')} {label}")
    counts = result.lines.setdefault(label, [0, 0])
    counts[0] += _count_lines(arguments.get("text" if name == "memory_insert" else "new"))
    counts[1] += _count_lines(old)  # empty for an insert


def _count_lines(text: Any) -> int:
    return sum(1 for line in str(text or "").split("\n") if line.strip())
