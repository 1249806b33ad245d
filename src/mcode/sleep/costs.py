"""What sleep-time passes spend, written down as it is spent, and the caps on it.

`.agentmemory/sleep.log` gets a JSON line for every model summary the moment it is stored (so a
pass killed half-way still counts what it spent), one per consolidation of core memory and per
change it proposes to a person's line, one per pass at its end, and one per consolidation a
session ran in the background (what it changed, or why it could not run). Today's spend is the
sum of the summary and consolidation lines of the current UTC day; it is what the daily cap is
held to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mcode.fsio import append_line, clock

SUMMARY = "summary"  # a line per model summary stored
CONSOLIDATE = "consolidate"  # a line per consolidation of core memory (the session's mark)
PROPOSAL = "proposal"  # a change to a person's memory line, shown, not made
PASS = "pass"  # a line per pass, at its end
MEMORY = "memory"  # a line per background consolidation of a session, at its end
SPENDING = frozenset({SUMMARY, CONSOLIDATE})


def log_event(log: Path, event: str, **fields: Any) -> None:
    append_line(log, json.dumps({"time": clock.iso(), "event": event, **fields}, sort_keys=True))


def spent_on(entries: list[dict[str, Any]], day: str) -> int:
    """Tokens the summary and consolidation lines of `day` (YYYY-MM-DD, UTC) record."""
    total = 0
    for entry in entries:
        if entry.get("event") in SPENDING and str(entry.get("time", "")).startswith(day):
            tokens = entry.get("tokens")
            total += tokens if isinstance(tokens, int) and tokens > 0 else 0
    return total


def today(moment: datetime | None = None) -> str:
    return clock.iso(moment)[:10]


class BudgetSpent(Exception):
    """The next model call would pass a cap; `which` is "day" or "pass"."""

    def __init__(self, which: str) -> None:
        super().__init__(f"the sleep pass's {which} token budget is spent")
        self.which = which


@dataclass(slots=True)
class Budget:
    """Tokens left today and in this pass. A call is made only when its estimate fits both, so
    no call ever starts past a cap; what it really cost is then charged."""

    day_cap: int
    pass_cap: int
    spent_today: int = 0
    spent_pass: int = 0

    def check(self, estimate: int) -> None:
        if self.spent_today + estimate > self.day_cap:
            raise BudgetSpent("day")
        if self.spent_pass + estimate > self.pass_cap:
            raise BudgetSpent("pass")

    def charge(self, tokens: int) -> None:
        self.spent_today += tokens
        self.spent_pass += tokens

    @property
    def left_today(self) -> int:
        return max(0, self.day_cap - self.spent_today)
