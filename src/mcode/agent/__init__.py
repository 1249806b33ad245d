"""The agent: the model client and, later, the loop that drives it. Importing this package must
stay cheap; litellm is only imported when a model is first called."""

from mcode.agent.llm import (
    LiteLLMClient,
    LLMError,
    ModelClient,
    ModelInfo,
    count_tokens,
    model_info,
)
from mcode.agent.messages import AssistantTurn, ToolCall, Usage

__all__ = [
    "AssistantTurn",
    "LLMError",
    "LiteLLMClient",
    "ModelClient",
    "ModelInfo",
    "ToolCall",
    "Usage",
    "count_tokens",
    "model_info",
]
