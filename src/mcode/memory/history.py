"""The change log of memory blocks: who changed what, when and why, with enough to undo it exactly.

One append-only JSON-lines file per label beside the blocks (`history/<label>.jsonl`). Every entry
keeps the complete old and new content, so a revert never depends on replaying earlier entries, and
a file merged by git (or cut short by a crash) still yields every intact entry.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcode.fsio import append_line, clock, read_bytes
from mcode.memory.frontmatter import BlockContent, FrontMatterError


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: str
    time: str  # ISO 8601, UTC
    actor: str  # "user", "agent", "init", or the name of another writer such as a sleep-time pass
    reason: str
    op: str  # "create", "set", "append", "replace", "insert", "rethink", "edit", "delete", "revert"
    old: BlockContent | None  # None: the block did not exist before
    new: BlockContent | None  # None: the change deleted the block
    label: str
    scope: str  # "project" or "user": which history file holds it

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "actor": self.actor,
            "reason": self.reason,
            "op": self.op,
            "old": self.old.to_dict() if self.old is not None else None,
            "new": self.new.to_dict() if self.new is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], label: str, scope: str) -> HistoryEntry:
        def content(value: Any) -> BlockContent | None:
            return BlockContent.from_dict(value) if isinstance(value, dict) else None

        return cls(
            id=str(data["id"]),
            time=str(data["time"]),
            actor=str(data.get("actor", "")),
            reason=str(data.get("reason", "")),
            op=str(data.get("op", "")),
            old=content(data.get("old")),
            new=content(data.get("new")),
            label=label,
            scope=scope,
        )


def new_entry(
    label: str,
    scope: str,
    *,
    actor: str,
    reason: str,
    op: str,
    old: BlockContent | None,
    new: BlockContent | None,
) -> HistoryEntry:
    # Random ids, not counters: two branches of a team's repo must not both mint entry 7.
    return HistoryEntry(
        id=uuid.uuid4().hex[:12],
        time=clock.iso(),
        actor=actor,
        reason=reason,
        op=op,
        old=old,
        new=new,
        label=label,
        scope=scope,
    )


class History:
    """The history files of one scope (the repo's or the user's)."""

    def __init__(self, directory: Path, scope: str) -> None:
        self.directory = directory
        self.scope = scope

    def path(self, label: str) -> Path:
        return self.directory / f"{label}.jsonl"

    def append(self, entry: HistoryEntry) -> None:
        """Record `entry`; the caller holds the scope's write lock."""
        line = json.dumps(entry.to_json(), ensure_ascii=False, default=str)
        append_line(self.path(entry.label), line)

    def read(self, label: str) -> list[HistoryEntry]:
        """Every intact entry, oldest first.

        A torn line from a crash or a merge-conflict marker is skipped rather than failing the whole
        log: the entries around it are still exact.
        """
        try:
            text = read_bytes(self.path(label)).decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        entries = []
        for line in text.splitlines():
            try:
                data = json.loads(line)
                entries.append(HistoryEntry.from_json(data, label, self.scope))
            except (ValueError, KeyError, TypeError, FrontMatterError):
                continue
        return entries

    def has_any(self, label: str) -> bool:
        return self.path(label).exists()
