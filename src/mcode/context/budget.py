"""How many tokens each part of the context may take, and how tokens are counted.

The model's window W is split once per request: a reserve R for the reply, and the prompt budget
W − R for everything sent. Inside the prompt budget, core memory and the base instructions are fixed
costs (never truncated), the conversation takes what it needs (the message window evicts to keep it
in bounds), and the optional sections — project instructions, the repo map, retrieved snippets —
share what is left, each with a fixed fraction and a ceiling, so they shrink first and never cause
an overflow. The memory-pressure thresholds are fractions of the prompt budget, not of W, so that
"evict at 90%" still leaves the reply its reserve.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Counts the tokens of a text. The default is a chars/4 estimate; the agent passes the model's own
# tokenizer through litellm, which this package must not import.
TokenCounter = Callable[[str], int]

DEFAULT_MAX_REPLY_TOKENS = 8192
# What a chat API adds per message on top of its text (role, separators); OpenAI documents 3–4.
MESSAGE_OVERHEAD_TOKENS = 4

PROJECT_INSTRUCTIONS = "project_instructions"
REPO_MAP = "repo_map"
SNIPPETS = "snippets"


class ContextOverflowError(Exception):
    """What must be in the prompt does not fit the model's window; the message says what to cut."""


def estimate_tokens(text: str) -> int:
    """About four characters a token, rounded up: free, offline, and close enough for budgets."""
    return -(-len(text) // 4)


@dataclass(frozen=True, slots=True)
class Share:
    """An optional section's claim on the space left: a fraction of it, never more than `cap`."""

    fraction: float
    cap: int

    def of(self, remaining: int) -> int:
        return max(0, min(int(remaining * self.fraction), self.cap))


# Together they leave a third of the free space for the conversation to grow into during a turn.
# AGENTS.md is capped at 32 KiB (about 8k tokens); Aider's default repo map is 1k tokens, 8x that
# when no file is in the chat, so 4k sits between the two.
DEFAULT_SHARES: Mapping[str, Share] = {
    PROJECT_INSTRUCTIONS: Share(0.25, 8192),
    REPO_MAP: Share(0.2, 4096),
    SNIPPETS: Share(0.2, 4096),
}


@dataclass(frozen=True, slots=True)
class ContextBudget:
    context_window: int
    reserve_tokens: int
    warn_fraction: float = 0.7
    evict_fraction: float = 0.9
    target_fraction: float = 0.5
    summary_fraction: float = 0.1  # the longest summary the summariser is asked for
    max_summary_tokens: int = 2000
    shares: Mapping[str, Share] = field(default_factory=lambda: dict(DEFAULT_SHARES))

    def __post_init__(self) -> None:
        if self.context_window <= 0:
            raise ValueError(f"context window must be positive, got {self.context_window}")
        if not 0 <= self.reserve_tokens < self.context_window:
            raise ValueError(
                f"reply reserve {self.reserve_tokens} must be below the window {self.context_window}"
            )
        if not 0 < self.target_fraction < self.warn_fraction <= self.evict_fraction <= 1:
            raise ValueError("expected 0 < target < warn <= evict <= 1")

    @classmethod
    def for_window(
        cls, context_window: int, max_reply_tokens: int | None = None, **options: Any
    ) -> ContextBudget:
        """The budget for a model's window (from its metadata). Without `max_reply_tokens` the
        reply gets min(8192, W/4); any reserve is held to half the window so the prompt keeps room."""
        if max_reply_tokens is None:
            reserve = min(DEFAULT_MAX_REPLY_TOKENS, context_window // 4)
        else:
            reserve = min(max(0, max_reply_tokens), context_window // 2)
        return cls(context_window, reserve, **options)

    @property
    def prompt_tokens(self) -> int:
        """Everything sent — system prompt, tool definitions, messages — must fit in this."""
        return self.context_window - self.reserve_tokens

    @property
    def warn_tokens(self) -> int:
        return int(self.prompt_tokens * self.warn_fraction)

    @property
    def evict_tokens(self) -> int:
        return int(self.prompt_tokens * self.evict_fraction)

    @property
    def target_tokens(self) -> int:
        return int(self.prompt_tokens * self.target_fraction)

    @property
    def summary_tokens(self) -> int:
        return max(
            64, min(int(self.prompt_tokens * self.summary_fraction), self.max_summary_tokens)
        )

    def optional_budget(self, section: str, remaining: int) -> int:
        share = self.shares.get(section)
        return share.of(max(0, remaining)) if share is not None else 0


def message_tokens(message: Mapping[str, Any], counter: TokenCounter = estimate_tokens) -> int:
    """One OpenAI-format message's cost: its text, its tool calls, and the per-message overhead."""
    total = MESSAGE_OVERHEAD_TOKENS + counter(content_text(message.get("content")))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        total += counter(str(function.get("name") or "")) + counter(
            str(function.get("arguments") or "")
        )
    for key in ("name", "tool_call_id"):
        if message.get(key):
            total += counter(str(message[key]))
    return total


def messages_tokens(
    messages: Iterable[Mapping[str, Any]], counter: TokenCounter = estimate_tokens
) -> int:
    return sum(message_tokens(m, counter) for m in messages)


def tools_tokens(
    tools: Iterable[Mapping[str, Any]], counter: TokenCounter = estimate_tokens
) -> int:
    """Tool definitions travel with every request and count against the same window."""
    schemas = list(tools)
    return counter(json.dumps(schemas, separators=(",", ":"))) if schemas else 0


def content_text(content: Any) -> str:
    """The text of a message's content, whether a string or a list of typed parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # typed parts: [{"type": "text", "text": ...}, ...]
        return "".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    return str(content)


def truncate_to_tokens(
    text: str, max_tokens: int, counter: TokenCounter = estimate_tokens, marker: str = ""
) -> str:
    """The longest prefix of `text` (cut at a line end when one is near) that, with `marker`
    appended, fits `max_tokens`; "" when not even the marker fits. The whole text when it fits."""
    if counter(text) <= max_tokens:
        return text
    if counter(marker) > max_tokens:
        return ""
    low, high = 0, len(text)  # the longest prefix length that fits lies in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if counter(text[:middle] + marker) <= max_tokens:
            low = middle
        else:
            high = middle
    cut = text.rfind("\n", 0, low)
    if cut < low * 0.8:  # no line end in the last fifth: cut mid-line rather than lose much
        cut = low
    return text[:cut].rstrip() + marker


@dataclass(frozen=True, slots=True)
class SectionUsage:
    """One part of the context: its tokens, its budget (None: a fixed cost, never cut), and what
    was left out to fit (for example "3 of 8 snippets")."""

    name: str
    title: str
    tokens: int
    budget: int | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class ContextReport:
    """Where the window goes, as the REPL's /context shows it."""

    context_window: int
    reserve_tokens: int
    sections: tuple[SectionUsage, ...]
    system_tokens: int  # the system message as sent, all its sections together
    tool_tokens: int = 0
    history_tokens: int = 0
    history_messages: int = 0

    @property
    def prompt_budget(self) -> int:
        return self.context_window - self.reserve_tokens

    @property
    def total_tokens(self) -> int:
        return self.system_tokens + self.tool_tokens + self.history_tokens

    @property
    def free_tokens(self) -> int:
        return self.prompt_budget - self.total_tokens

    def section(self, name: str) -> SectionUsage:
        for usage in self.sections:
            if usage.name == name:
                return usage
        raise KeyError(name)

    def render(self) -> str:
        """A plain-text table; the numbers a user needs to see why the agent summarised."""
        rows = [(s.title, s.tokens, s.budget, s.note) for s in self.sections]
        if self.tool_tokens:
            rows.append(("tool definitions", self.tool_tokens, None, ""))
        plural = "" if self.history_messages == 1 else "s"
        rows.append(
            ("conversation", self.history_tokens, None, f"{self.history_messages} message{plural}")
        )
        width = max(len(title) for title, *_ in rows)
        lines = [
            f"context window {self.context_window:,} tokens: {self.reserve_tokens:,} reserved for "
            f"the reply, {self.prompt_budget:,} for the prompt"
        ]
        for title, tokens, budget, note in rows:
            limit = f" / {budget:,}" if budget is not None else ""
            line = f"  {title:<{width}}  {tokens:>7,}{limit}"
            lines.append(f"{line}  {note}".rstrip() if note else line)
        share = self.total_tokens / self.prompt_budget if self.prompt_budget else 1.0
        lines.append(
            f"  {'total':<{width}}  {self.total_tokens:>7,}  ({share:.0%} of the prompt budget, "
            f"{max(self.free_tokens, 0):,} free)"
        )
        return "\n".join(lines)
