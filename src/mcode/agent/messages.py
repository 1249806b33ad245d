"""The values a model client hands back: plain data, so the agent loop and tests need no litellm."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """One tool call as the model asked for it; `arguments` stays the raw JSON text the model
    wrote, because the tool layer, not the client, decides what to do with malformed JSON."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Usage:
    """Tokens and money for one model call. `estimated` is True when the provider reported no
    usage and the counts come from a local tokenizer."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class AssistantTurn:
    """One complete assistant reply. `model` is the model that actually answered, which differs
    from the configured one when a fallback was used."""

    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    model: str = ""

    def to_message(self) -> dict[str, Any]:
        """The OpenAI-format assistant message to append to the conversation history."""
        content = self.content or (None if self.tool_calls else "")
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        return message
