"""The step loop of one user turn: ask the model, run the tools it calls, repeat until it answers.

The loop is handed its model client, its tools, its message window, three callables (build the
next request, record a message, report an event) and the session's hooks (`hooks.TurnHook`: the
policy on lessons, corrections and undo), so a test can drive it with scripted parts. Every
message is recorded before it joins the window, so a crash loses nothing said so far.

Tool calls of one reply run in the order given, except that consecutive read-only calls run
together on a small thread pool; results always join the conversation in the original order. A
tool that fails, arguments that are not JSON, a tool that does not exist: each becomes a result
starting "Error:" for the model to read, never an exception out of the loop.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from mcode.agent.events import (
    Event,
    TextDelta,
    ToolFinished,
    ToolOutput,
    ToolStarted,
    TurnResult,
    add_usage,
)
from mcode.agent.hooks import FinishedCall, TurnHook
from mcode.agent.llm import Cancelled, LLMError, ModelClient
from mcode.agent.messages import AssistantTurn, ToolCall, Usage
from mcode.context import ContextOverflowError, MessageWindow
from mcode.tools import PermissionDenied, Tool, ToolError, decode_arguments

Message = dict[str, Any]

MAX_PARALLEL_TOOLS = 4
CANCELLED_RESULT = "Error: cancelled by the user before this tool ran; nothing was done."
INTERRUPTED_RESULT = "Error: interrupted by the user while this tool ran; it may be half done."
INTERRUPTED_NOTE = "[interrupted by the user]"


class ToolRunner(Protocol):
    """The tools as the loop sees them."""

    def schemas(self) -> list[dict[str, Any]]: ...

    def lookup(self, name: str) -> Tool | None:
        """The tool called `name`, for its facts; None when there is none."""
        ...

    def concurrent(self, name: str, arguments: str) -> bool:
        """Whether the call only reads and needs no question to the user."""
        ...

    def run(self, name: str, arguments: str, on_output: Callable[[str], None]) -> str:
        """The result for the model; ToolError when the tool refuses or does not exist."""
        ...


def parse_arguments(call: ToolCall) -> dict[str, Any] | None:
    """The call's arguments as a dict, or None when the model did not write a JSON object."""
    try:
        return decode_arguments(call.name, call.arguments)
    except ToolError:
        return None


@dataclass
class _TurnState:
    usage: Usage = field(default_factory=Usage)
    steps: int = 0
    text: str = ""  # the latest assistant text
    partial: list[str] = field(default_factory=list)  # text streamed in the current step


class AgentLoop:
    """Runs turns against one conversation window."""

    def __init__(
        self,
        client: ModelClient,
        tools: ToolRunner,
        window: MessageWindow,
        *,
        request: Callable[[], list[Message]],
        record: Callable[[Message], None],
        emit: Callable[[Event], None],
        cancel: threading.Event | None = None,
        max_parallel: int = MAX_PARALLEL_TOOLS,
        hooks: Sequence[TurnHook] = (),
    ) -> None:
        self.client = client
        self.tools = tools
        self.window = window
        self.request = request
        self.record = record
        self.emit = emit
        self.cancel = cancel or threading.Event()
        self.max_parallel = max(1, max_parallel)
        self.hooks = list(hooks)

    # -- the turn --------------------------------------------------------------------------------

    def run(self, user_text: str, *, max_steps: int) -> TurnResult:
        """One user turn. The hooks' notes join the window's copy of the user message but not
        the transcript."""
        state = _TurnState()
        notes = [text for hook in self.hooks for text in hook.user_message(user_text)]
        shown = "\n\n".join([user_text, *notes])
        self._add({"role": "user", "content": user_text}, {"role": "user", "content": shown})
        try:
            for _ in range(max(1, max_steps)):
                self._check_cancel()
                turn = self._step(state)
                if not turn.tool_calls:
                    return self._result(state, "done")
                self._run_calls(turn.tool_calls)
            return self._result(state, "max_turns")
        except (Cancelled, KeyboardInterrupt):
            self._keep_partial(state, INTERRUPTED_NOTE)
            return self._result(state, "cancelled")
        except LLMError as error:
            if error.partial:
                self._keep_partial(state, "[the reply broke off here]")
            return self._result(state, "error", str(error))
        except ContextOverflowError as error:
            return self._result(state, "error", str(error))

    def _result(self, state: _TurnState, reason: str, error: str | None = None) -> TurnResult:
        usage = state.usage
        return TurnResult(state.text, reason, usage, usage.cost_usd, state.steps, error)

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled

    def _step(self, state: _TurnState) -> AssistantTurn:
        messages = self.request()
        state.partial = []

        def on_text(piece: str) -> None:
            self._check_cancel()
            state.partial.append(piece)
            self.emit(TextDelta(piece))

        turn = self.client.complete(messages, tools=self.tools.schemas(), on_text=on_text)
        state.partial = []
        state.steps += 1
        state.usage = add_usage(state.usage, turn.usage)
        state.text = turn.content
        message = turn.to_message()
        self._add(message, _sendable(message))
        return turn

    def _keep_partial(self, state: _TurnState, note: str) -> None:
        """Text the user already saw stays in the conversation, marked as cut off."""
        if state.partial:
            text = "".join(state.partial)
            state.text, state.partial = text, []
            message = {"role": "assistant", "content": f"{text}\n\n{note}"}
            self._add(message, message)

    def _add(self, recorded: Message, shown: Message) -> None:
        self.record(recorded)
        self.window.append(shown)

    # -- tools -----------------------------------------------------------------------------------

    def _run_calls(self, calls: Sequence[ToolCall]) -> None:
        """Run the calls and add their results; on cancel, every call still gets a result (the
        API requires one per call), saying whether it was interrupted or never ran."""
        done = started = 0
        try:
            for batch in self._batches(calls):
                self._check_cancel()
                for call in batch:
                    self.emit(ToolStarted(call.id, call.name, parse_arguments(call) or {}))
                    started += 1
                outcomes = self._run_batch(batch)
                for call, (text, error, denied) in zip(batch, outcomes, strict=True):
                    self._finish(call, text, error, denied=denied)
                    done += 1
        except (Cancelled, KeyboardInterrupt):
            for position, call in enumerate(calls[done:], done):
                text = INTERRUPTED_RESULT if position < started else CANCELLED_RESULT
                self._finish(call, text, True, hooked=False, shown=position < started)
            raise

    def _batches(self, calls: Sequence[ToolCall]) -> list[list[ToolCall]]:
        """Consecutive read-only calls form one batch; every other call is a batch of its own."""
        batches: list[list[ToolCall]] = []
        last_parallel = False
        for call in calls:
            parallel = self.tools.concurrent(call.name, call.arguments)
            if parallel and last_parallel:
                batches[-1].append(call)
            else:
                batches.append([call])
            last_parallel = parallel
        return batches

    def _run_batch(self, batch: list[ToolCall]) -> list[tuple[str, bool, str]]:
        if len(batch) == 1:
            call = batch[0]
            return [self._execute(call, lambda line: self.emit(ToolOutput(call.id, line)))]
        pool = ThreadPoolExecutor(min(len(batch), self.max_parallel), "mcode-tool")
        try:
            futures: list[Future[tuple[str, bool, str]]] = [
                pool.submit(self._execute, call, _ignore) for call in batch
            ]
            return [future.result() for future in futures]
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _execute(self, call: ToolCall, on_output: Callable[[str], None]) -> tuple[str, bool, str]:
        """(result, failed, what the permissions refused: "" when nothing)"""
        try:
            return self.tools.run(call.name, call.arguments, on_output), False, ""
        except PermissionDenied as exc:
            return f"Error: {exc}", True, exc.kind
        except ToolError as exc:
            return f"Error: {exc}", True, ""
        except (Cancelled, KeyboardInterrupt):
            raise
        except Exception as exc:  # a bug in a tool must not end the session
            text = f"Error: {call.name} failed unexpectedly: {type(exc).__name__}: {exc}"
            return text, True, ""

    def _finish(
        self,
        call: ToolCall,
        text: str,
        error: bool,
        *,
        hooked: bool = True,
        shown: bool = True,
        denied: str = "",
    ) -> None:
        """Add a call's result; `hooked` is False for a call the user cancelled, which the hooks
        do not hear about."""
        if shown:  # a call that never started has no ToolStarted to finish
            self.emit(ToolFinished(call.id, call.name, text, error, denied))
        recorded = {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": text}
        notes = []
        if hooked:
            finished = FinishedCall(
                call.name, self.tools.lookup(call.name), parse_arguments(call) or {}, text, error
            )
            notes = [n for hook in self.hooks if (n := hook.tool_finished(finished))]
        sent = {"role": "tool", "tool_call_id": call.id, "content": "\n\n".join([text, *notes])}
        self._add(recorded, sent)


def _ignore(line: str) -> None:
    pass


def _sendable(message: Message) -> Message:
    """The assistant message as the window keeps it: arguments that are not JSON become `{}`,
    which every provider accepts back (the tool result already told the model what went wrong)."""
    calls = message.get("tool_calls")
    if not calls:
        return message
    fixed = []
    for call in calls:
        function = call["function"]
        try:
            json.loads(function["arguments"] or "{}")
        except ValueError:
            call = {**call, "function": {**function, "arguments": "{}"}}
        fixed.append(call)
    return {**message, "tool_calls": fixed}
