"""False positives the team dismissed, kept in memory so that the review learns from them.

`mcode review --dismiss ID [--reason …]` records the finding in `.agentmemory/review/dismissed.jsonl`:
plain JSON lines (id, kind, path, the flagged line, message, reason, time), committable, so one
teammate's dismissal holds for everyone, and git shows who dismissed what. A finding with a recorded
id (same rule or memory line, same file, same line text) is not raised again.

When `PROMOTE_AFTER` findings of one kind (one rule, or one memory line the model relied on) have
been dismissed, the pattern goes into the `lessons` block as one line, written as the `review`
actor: the model reads it on every later review, and `mcode memory log lessons` / `revert` show and
undo it like any other change. A record in the same file notes the promotion, so it happens once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mcode.config import Paths, ensure_memory_dir
from mcode.fsio import append_line, clock, file_lock, read_json_lines
from mcode.memory import BlockStore, BlockStoreError, HistoryEntry
from mcode.review.cache import ReviewCache
from mcode.review.findings import Finding

PROMOTE_AFTER = 3
LESSONS = "lessons"
ACTOR = "review"
MAX_QUOTE = 160


class DismissError(Exception):
    """No finding of the last review has that id (or more than one starts with it)."""


@dataclass(frozen=True, slots=True)
class Dismissed:
    """What `dismiss` did: the lesson it added (None when none yet), or why it could not."""

    finding: Finding
    count: int  # dismissals of this kind so far
    lesson: HistoryEntry | None = None
    problem: str = ""


class Dismissals:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.path = paths.memory / "review" / "dismissed.jsonl"

    def records(self) -> list[dict[str, Any]]:
        """Every intact record; a torn or merged-over line is skipped, not fatal."""
        return read_json_lines(self.path)

    def ids(self) -> set[str]:
        return {str(r["id"]) for r in self.records() if "id" in r}

    def dismiss(self, finding: Finding, reason: str, blocks: BlockStore) -> Dismissed:
        """Record `finding` as a false positive; past PROMOTE_AFTER of its kind, add the lesson."""
        ensure_memory_dir(self.paths.memory)
        with file_lock(self.path.with_name("dismissed.lock")):
            records = self.records()
            same = [r for r in records if r.get("kind") == finding.kind and "id" in r]
            if any(r["id"] == finding.id for r in same):
                return Dismissed(finding, len(same))  # dismissed before
            record = {
                "id": finding.id,
                "kind": finding.kind,
                "path": finding.path,
                "line": finding.snippet,
                "message": finding.message,
                "reason": reason.strip(),
                "time": clock.iso(timespec="seconds"),
            }
            append_line(self.path, json.dumps(record, ensure_ascii=False))
            same.append(record)
            promoted = any(r.get("promoted") == finding.kind for r in records)
            if promoted or len(same) < PROMOTE_AFTER:
                return Dismissed(finding, len(same))
            try:
                entry = blocks.append(
                    LESSONS,
                    lesson_line(finding, same),
                    actor=ACTOR,
                    reason=f"{len(same)} review findings of one kind dismissed",
                )
            except BlockStoreError as exc:
                return Dismissed(finding, len(same), problem=str(exc))
            note = {
                "promoted": finding.kind,
                "entry": entry.id if entry else "",
                "time": record["time"],
            }
            append_line(self.path, json.dumps(note, ensure_ascii=False))
            return Dismissed(finding, len(same), entry)


def dismiss(paths: Paths, finding_id: str, reason: str = "") -> Dismissed:
    """Dismiss the finding of the last review whose id is, or starts with, `finding_id`."""
    wanted = finding_id.strip().lower()
    matches = {f.id: f for f in ReviewCache(paths).last() if wanted and f.id.startswith(wanted)}
    if not matches:
        raise DismissError(
            f"no finding {finding_id!r} in the last review: run `mcode review` and copy an id "
            "from its output"
        )
    if len(matches) > 1:
        raise DismissError(f"finding id {finding_id!r} is ambiguous: {', '.join(matches)}")
    finding = next(iter(matches.values()))
    return Dismissals(paths).dismiss(finding, reason, BlockStore.for_paths(paths))


def lesson_line(finding: Finding, records: list[dict[str, Any]]) -> str:
    """The line the lessons block gets for a kind of finding the team keeps dismissing."""
    reasons = list(dict.fromkeys(r["reason"] for r in records if r.get("reason")))[:3]
    why = f" ({'; '.join(reasons)})" if reasons else ""
    count = len(records)
    if finding.rule:
        return (
            f"Review rule {finding.rule} was dismissed {count} times as a false positive{why}: "
            "narrow its pattern or paths."
        )
    quote = _cut(finding.basis) or _cut(finding.message)
    return (
        f'Review: "{quote}" does not apply to code like `{_cut(finding.snippet)}`; '
        f"{count} such findings were dismissed{why}."
    )


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 1] + "…"
