"""A scripted model client in the test process: no HTTP, no litellm.

`ScriptedModel` implements `mcode.agent.ModelClient` for tests of the agent loop and the session
whose subject is not the HTTP path (that is `llm_server`'s). Each `complete` records the request
and answers with the next queued reply, streaming its text through `on_text` piece by piece as a
real client does. Its scripting methods mirror the scripted server's, so tests read alike.
"""

from __future__ import annotations

import copy
import json
from collections import deque
from typing import Any

from mcode.agent import AssistantTurn, LLMError, ToolCall, Usage
from support.llm_server import DEFAULT_USAGE, split


class ScriptedModel:
    """Replays queued replies; `requests` holds every request's messages and tools."""

    def __init__(self, model: str = "scripted/model") -> None:
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._queue: deque[tuple[AssistantTurn, int, LLMError | None]] = deque()

    def reply_text(
        self, text: str, *, chunks: int = 3, usage: tuple[int, int] = DEFAULT_USAGE
    ) -> None:
        """Queue a text answer streamed in `chunks` pieces."""
        self._queue.append(
            (AssistantTurn(text, [], Usage(*usage), "stop", self.model), chunks, None)
        )

    def reply_tool_calls(
        self,
        calls: list[tuple[str, dict[str, Any] | str]],
        *,
        text: str = "",
        usage: tuple[int, int] = DEFAULT_USAGE,
    ) -> None:
        """Queue tool calls `call_0`, `call_1`, …; arguments given as text are sent as they are,
        however malformed."""
        tool_calls = [
            ToolCall(f"call_{i}", name, args if isinstance(args, str) else json.dumps(args))
            for i, (name, args) in enumerate(calls)
        ]
        turn = AssistantTurn(text, tool_calls, Usage(*usage), "tool_calls", self.model)
        self._queue.append((turn, 1, None))

    def reply_error(self, error: LLMError, *, after_text: str = "") -> None:
        """Queue a failure, raised after streaming `after_text` (then `error.partial` is set)."""
        error.partial = bool(after_text)
        self._queue.append((AssistantTurn(after_text), len(after_text) or 1, error))

    def pending(self) -> int:
        return len(self._queue)

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        on_text: Any = None,
    ) -> AssistantTurn:
        self.requests.append({"messages": copy.deepcopy(messages), "tools": tools})
        assert self._queue, f"the scripted model ran out of replies (request {len(self.requests)})"
        turn, chunks, error = self._queue.popleft()
        for piece in split(turn.content, chunks) if turn.content else ():
            if on_text is not None:
                on_text(piece)
        if error is not None:
            raise error
        return turn
