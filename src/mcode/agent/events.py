"""What a turn reports as it runs. The REPL draws these, headless mode prints them; both receive
them through one callback, on the thread that runs the turn."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcode.agent.messages import Usage

STOP_REASONS = ("done", "max_turns", "cancelled", "error")


@dataclass(frozen=True)
class TextDelta:
    """A piece of the model's answer as it streams."""

    text: str


@dataclass(frozen=True)
class ToolStarted:
    call_id: str
    name: str
    arguments: dict[str, Any]  # {} when the model's arguments were not a JSON object


@dataclass(frozen=True)
class ToolOutput:
    """A line of a shell command's output, as it arrives; or of an edit's diff, when the edit
    was made without asking the user (who would have seen it in the question)."""

    call_id: str
    text: str


@dataclass(frozen=True)
class ToolFinished:
    call_id: str
    name: str
    result: str  # what the model reads; starts with "Error:" when error is True
    error: bool
    # what the permission mode, a rule or the user refused ("edit", "shell", "read", "secret")
    denied: str = ""


@dataclass(frozen=True)
class Notice:
    """Something the user should know that is not part of the answer: a retry, a summary of old
    messages, a lesson recorded, a missing index."""

    text: str


@dataclass(frozen=True)
class TurnFinished:
    usage: Usage
    turn_cost_usd: float
    session_tokens: int
    session_cost_usd: float
    stop_reason: str  # "done" | "max_turns" | "cancelled" | "error"


Event = TextDelta | ToolStarted | ToolOutput | ToolFinished | Notice | TurnFinished


@dataclass(frozen=True)
class TurnResult:
    """How a turn ended. `text` is the model's last answer (possibly partial when cancelled);
    `error` a one-line reason when stop_reason is "error"; `steps` the model calls made."""

    text: str
    stop_reason: str
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    steps: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.stop_reason == "done"


def add_usage(total: Usage, more: Usage) -> Usage:
    return Usage(
        total.prompt_tokens + more.prompt_tokens,
        total.completion_tokens + more.completion_tokens,
        total.cost_usd + more.cost_usd,
        total.estimated or more.estimated,
    )
