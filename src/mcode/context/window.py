"""The message window (MemGPT's queue): the conversation as sent to the model, kept within the window.

At about 70% of the prompt budget a memory-pressure notice joins the conversation, once, asking the
agent to save what matters with its memory tools. At about 90% the oldest messages are evicted down
to about 50% and folded, with the previous summary, into a new recursive summary that leads the
window. Eviction never separates an assistant's tool calls from their results and never touches the
current turn (the latest user message and everything after it).

Eviction only affects the window. The agent loop records every message in recall memory as it
happens, so an evicted message is still found by `conversation_search`; nothing here deletes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mcode.context.budget import (
    ContextBudget,
    ContextOverflowError,
    ContextReport,
    TokenCounter,
    content_text,
    estimate_tokens,
    message_tokens,
    truncate_to_tokens,
)
from mcode.context.system_prompt import (
    PromptInputs,
    SystemPrompt,
    SystemPromptBuilder,
    fill_template,
)
from mcode.prompts import load_prompt

Message = dict[str, Any]

SUMMARY_HEADER = (
    "Summary of earlier conversation (older messages are in recall memory; "
    "use conversation_search):"
)
PRESSURE_TEMPLATE = "memory_pressure.md"
SUMMARY_TEMPLATE = "summary.md"
_CUT_MARKER = "\n[… summary cut to fit the context window]"


class Summarizer(Protocol):
    def summarize(self, previous_summary: str, messages: list[Message]) -> str:
        """A new summary of the conversation so far: the previous one updated with `messages`."""
        ...


class _Reply(Protocol):
    @property
    def content(self) -> str: ...


class CompletionClient(Protocol):
    """Any model client; the agent passes its weak-model `LiteLLMClient`."""

    def complete(self, messages: list[Message]) -> _Reply: ...


@dataclass(frozen=True, slots=True)
class Eviction:
    """One summarisation, for the REPL to show. `error` is set when the summariser failed and
    the messages left the window with only a note in the summary."""

    reason: str  # "pressure" or "compact"
    evicted: int
    tokens_before: int
    tokens_after: int
    error: str | None = None


class MessageWindow:
    """The conversation messages (OpenAI format) plus a running summary of those evicted.

    `budget` and `counter` must be the ones the system prompt is built with, since the thresholds
    are on the whole request: system prompt, tool definitions and messages together.
    """

    def __init__(
        self,
        budget: ContextBudget,
        summarizer: Summarizer,
        *,
        counter: TokenCounter = estimate_tokens,
        summary: str = "",
    ) -> None:
        self.budget = budget
        self.summarizer = summarizer
        self.counter = counter
        self.evictions: list[Eviction] = []
        self._summary = summary.strip()
        self._messages: list[Message] = []
        self._tokens: list[int] = []  # each message's cost, counted once on arrival
        self._warning: Message | None = None  # the pressure notice, while it is in the window
        self._warned = False  # since the last eviction
        self._pressure_template = load_prompt(PRESSURE_TEMPLATE)

    @property
    def summary(self) -> str:
        return self._summary

    @property
    def messages(self) -> list[Message]:
        """The messages in the window, without the summary; oldest first."""
        return list(self._messages)

    def __len__(self) -> int:
        return len(self._messages)

    def append(self, message: Message) -> None:
        self._messages.append(message)
        self._tokens.append(message_tokens(message, self.counter))

    def extend(self, messages: Iterable[Message]) -> None:
        for message in messages:
            self.append(message)

    def summary_message(self) -> Message | None:
        if not self._summary:
            return None
        return {"role": "user", "content": f"{SUMMARY_HEADER}\n\n{self._summary}"}

    def view(self) -> list[Message]:
        """What the model is sent after the system prompt: the summary, then the messages."""
        summary = self.summary_message()
        return [summary, *self._messages] if summary else list(self._messages)

    def history_tokens(self) -> int:
        summary = self.summary_message()
        return sum(self._tokens) + (message_tokens(summary, self.counter) if summary else 0)

    # The two thresholds --------------------------------------------------------------------------

    def prepare(self, system_tokens: int) -> list[Message]:
        """The messages for the next request, after warning or evicting as the budget requires.
        `system_tokens` is the fixed cost sent beside them (system prompt and tool definitions).
        ContextOverflowError when even the current turn alone does not fit."""
        budget = self.budget
        if system_tokens + self.history_tokens() >= budget.evict_tokens:
            self._evict(system_tokens, "pressure")
        total = system_tokens + self.history_tokens()
        if total >= budget.warn_tokens and not self._warned:
            self._warn(total, system_tokens)
        total = system_tokens + self.history_tokens()
        if total > budget.prompt_tokens:
            current = sum(self._tokens[self._turn_start() :])
            raise ContextOverflowError(
                f"the request does not fit the model's window even after summarising the earlier "
                f"conversation: system prompt and tools take {system_tokens:,} tokens, the current "
                f"turn {current:,}, and the prompt budget is {budget.prompt_tokens:,} "
                f"(large tool outputs are the usual cause)"
            )
        return self.view()

    def compact(self, system_tokens: int = 0) -> Eviction | None:
        """Summarise everything before the current turn now (the REPL's /compact); None when
        there is nothing older than the current turn."""
        return self._evict(system_tokens, "compact", everything=True)

    def _warn(self, total: int, system_tokens: int) -> None:
        budget = self.budget
        text = fill_template(
            self._pressure_template,
            {
                "percent": f"{total / budget.prompt_tokens:.0%}",
                "evict_percent": f"{budget.evict_fraction:.0%}",
            },
            PRESSURE_TEMPLATE,
        )
        warning: Message = {"role": "user", "content": text}
        if system_tokens + self.history_tokens() + message_tokens(warning, self.counter) > (
            budget.prompt_tokens
        ):
            return  # no room even for the notice: eviction is the only help left
        self.append(warning)
        self._warning = warning
        self._warned = True

    # Eviction --------------------------------------------------------------------------------------

    def _turn_start(self) -> int:
        """Index of the latest user message (the pressure notice does not count); 0 if none."""
        for index in range(len(self._messages) - 1, -1, -1):
            message = self._messages[index]
            if message.get("role") == "user" and message is not self._warning:
                return index
        return 0

    def _group_ends(self, stop: int) -> list[int]:
        """Where the messages before `stop` may be cut: after each message, except inside an
        assistant's tool calls and their results, which leave together."""
        ends = [
            index
            for index in range(1, stop)
            if self._messages[index].get("role") != "tool"  # a result stays with its call
        ]
        return [*ends, stop] if stop else []

    def _cut_point(self, system_tokens: int, everything: bool) -> int:
        ends = self._group_ends(self._turn_start())
        if not ends or everything:
            return ends[-1] if ends else 0
        summary = self.summary_message()
        expected_summary = max(
            message_tokens(summary, self.counter) if summary else 0, self.budget.summary_tokens
        )
        kept = sum(self._tokens)
        cut = 0
        for end in ends:
            kept -= sum(self._tokens[cut:end])
            cut = end
            if system_tokens + expected_summary + kept <= self.budget.target_tokens:
                break
        return cut

    def _evict(self, system_tokens: int, reason: str, everything: bool = False) -> Eviction | None:
        cut = self._cut_point(system_tokens, everything)
        if cut == 0:
            return None
        before = self.history_tokens()
        evicted = self._messages[:cut]
        to_summarise = [m for m in evicted if m is not self._warning]
        error, summary = None, self._summary
        try:
            if to_summarise:
                summary = self.summarizer.summarize(self._summary, to_summarise).strip()
                if not summary:
                    raise ValueError("the summariser returned an empty summary")
        except Exception as exc:
            # The turn must go on: the messages are still in recall memory, so leaving them with
            # a note is better than a request the model rejects for its length.
            error = str(exc) or type(exc).__name__
            summary = self._fallback_summary(len(to_summarise))
        # Only now, with the summary in hand, does the window change: an interrupt above loses nothing.
        del self._messages[:cut]
        del self._tokens[:cut]
        if self._warning is not None and any(m is self._warning for m in evicted):
            self._warning = None
        self._warned = False
        self._summary = summary
        self._fit_summary(system_tokens)
        eviction = Eviction(reason, len(evicted), before, self.history_tokens(), error)
        self.evictions.append(eviction)
        return eviction

    def _fallback_summary(self, count: int) -> str:
        note = (
            f"({count} older messages left the window without a summary because summarising "
            "failed; search them with conversation_search.)"
        )
        return f"{self._summary}\n\n{note}" if self._summary else note

    def _fit_summary(self, system_tokens: int) -> None:
        """A summary longer than twice what was asked for, or longer than the room left, is cut:
        an over-long summary would only be evicted and summarised again on the next request."""
        header = message_tokens({"role": "user", "content": f"{SUMMARY_HEADER}\n\n"}, self.counter)
        room = self.budget.prompt_tokens - system_tokens - sum(self._tokens) - header
        limit = min(2 * self.budget.summary_tokens, max(room, 0))
        self._summary = truncate_to_tokens(self._summary, limit, self.counter, _CUT_MARKER)


# The summariser ------------------------------------------------------------------------------------


def _elide(text: str, max_chars: int) -> str:
    """Head and tail of a long text: a tool output's last lines (the error) matter as much as its
    first ones."""
    if len(text) <= max_chars:
        return text
    head, tail = text[: max_chars * 2 // 3], text[-(max_chars // 3) :]
    return f"{head}\n[… {len(text) - len(head) - len(tail):,} characters left out …]\n{tail}"


def render_transcript(message: Mapping[str, Any], max_chars: int = 6000) -> str:
    """One message as the summariser reads it."""
    role = str(message.get("role") or "unknown")
    text = _elide(content_text(message.get("content")).strip(), max_chars)
    if role == "tool":
        parts = ("tool result", message.get("name"), message.get("tool_call_id"))
        return f"[{' '.join(str(p) for p in parts if p)}]\n{text}"
    lines = [f"[{role}]"] + ([text] if text else [])
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = _elide(str(function.get("arguments") or ""), max_chars)
        lines.append(f"→ tool call {function.get('name')}({arguments}) [{call.get('id')}]")
    return "\n".join(lines)


class LLMSummarizer:
    """A `Summarizer` that asks a model, with `prompts/summary.md`. Messages that do not fit one
    request of `max_input_tokens` are folded in over several, each extending the last summary."""

    def __init__(
        self,
        client: CompletionClient,
        *,
        counter: TokenCounter = estimate_tokens,
        max_words: int = 600,
        max_input_tokens: int = 24_000,
        max_message_chars: int = 6000,
    ) -> None:
        self.client = client
        self.counter = counter
        self.max_words = max_words
        self.max_input_tokens = max_input_tokens
        self.max_message_chars = max_message_chars
        self._template = load_prompt(SUMMARY_TEMPLATE)

    def _prompt(self, previous: str, transcript: str) -> str:
        values = {
            "previous_summary": previous or "(none: this is the first summary)",
            "messages": transcript,
            "max_words": str(self.max_words),
        }
        return fill_template(self._template, values, SUMMARY_TEMPLATE)

    def summarize(self, previous_summary: str, messages: list[Message]) -> str:
        summary = previous_summary.strip()
        for chunk in self._chunks(summary, messages):
            prompt = self._prompt(summary, "\n\n".join(chunk))
            reply = self.client.complete([{"role": "user", "content": prompt}])
            summary = reply.content.strip()
            if not summary:
                raise ValueError("the summariser model returned an empty summary")
        return summary

    def _chunks(self, previous: str, messages: Sequence[Message]) -> list[list[str]]:
        # Room for messages: the request, less the prompt itself and the longest summary expected.
        summary_room = max(self.counter(previous), self.max_words * 2)
        room = self.max_input_tokens - self.counter(self._prompt("", "")) - summary_room
        if room < 256:
            raise ValueError(
                f"max_input_tokens={self.max_input_tokens} leaves no room for messages to summarise"
            )
        chunks: list[list[str]] = [[]]
        used = 0
        for message in messages:
            text = render_transcript(message, self.max_message_chars)
            cost = self.counter(text) + 1
            if cost > room:
                text = truncate_to_tokens(text, room - 1, self.counter, "\n[… cut]")
                cost = room
            if used + cost > room and chunks[-1]:
                chunks.append([])
                used = 0
            chunks[-1].append(text)
            used += cost
        return chunks if chunks[0] else []


# Putting the request together ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """One request's messages (system prompt first) and where its tokens went."""

    messages: list[Message]
    system_prompt: SystemPrompt

    @property
    def report(self) -> ContextReport:
        return self.system_prompt.report


def build_context(
    builder: SystemPromptBuilder, window: MessageWindow, inputs: PromptInputs
) -> Context:
    """The messages to send: the window decides on warning and eviction against the fixed cost,
    then the optional sections of the system prompt fill what the conversation leaves."""
    core = builder.core_tokens(inputs)
    history = window.prepare(core)
    prompt = builder.build(inputs, window.history_tokens(), len(history))
    return Context([prompt.message(), *history], prompt)
