"""The agent: the model client, the step loop and the session that drives it.

Importing this package must stay cheap: litellm is only imported when a model is first called, and
the session (which opens the memory stores) loads on first use of `AgentSession`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcode.agent.events import (
    Event,
    Notice,
    TextDelta,
    ToolFinished,
    ToolOutput,
    ToolStarted,
    TurnFinished,
    TurnResult,
)
from mcode.agent.llm import (
    LiteLLMClient,
    LLMError,
    ModelClient,
    ModelInfo,
    count_tokens,
    model_info,
)
from mcode.agent.messages import AssistantTurn, ToolCall, Usage
from mcode.agent.providers import ModelChoice, NoModelError, resolve_model

if TYPE_CHECKING:
    from mcode.agent.session import AgentSession, SessionStatus

_LAZY = {"AgentSession": "mcode.agent.session", "SessionStatus": "mcode.agent.session"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "AgentSession",
    "AssistantTurn",
    "Event",
    "LLMError",
    "LiteLLMClient",
    "ModelChoice",
    "ModelClient",
    "ModelInfo",
    "NoModelError",
    "Notice",
    "SessionStatus",
    "TextDelta",
    "ToolCall",
    "ToolFinished",
    "ToolOutput",
    "ToolStarted",
    "TurnFinished",
    "TurnResult",
    "Usage",
    "count_tokens",
    "model_info",
    "resolve_model",
]
