"""The step loop of a turn, driven directly: a scripted model in the test process, the real tools
over a real repository, and the session's hooks (lessons, corrections, the failure nudge)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from support.repos import make_repo
from support.scripted_model import ScriptedModel

from mcode.agent import LLMError
from mcode.agent.events import Event, Notice, TextDelta, ToolFinished, ToolStarted
from mcode.agent.hooks import (
    CORRECTION,
    CorrectionReminder,
    FailureNudge,
    LessonNotices,
    TurnHook,
    UndoReminders,
    note,
)
from mcode.agent.loop import CANCELLED_RESULT, INTERRUPTED_NOTE, AgentLoop
from mcode.context import ContextBudget, LLMSummarizer, MessageWindow
from mcode.memory import BlockStore, Scope
from mcode.tools import MemoryAccess, Permissions, RepoAccess, Toolbox, builtin_tools

APP = "def add(a, b):\n    return a + b\n"
UTIL = "def double(x):\n    return 2 * x\n"
FAILURE_NUDGE = note("failure_nudge", lessons="lessons")
CORRECTION_REMINDER = note("correction", lessons="lessons")


class Turns:
    """An AgentLoop over a repository, and everything it recorded, showed and sent."""

    def __init__(self, root: Path, hooks: Callable[[Turns], Sequence[TurnHook]] = lambda t: ()):
        self.model = ScriptedModel()
        self.recorded: list[dict[str, Any]] = []
        self.events: list[Event] = []
        self.on_event: Callable[[Event], None] = lambda event: None
        self.cancel = threading.Event()
        self.blocks = BlockStore(
            Scope.under("project", root / ".agentmemory"), Scope.under("user", root / "config")
        )
        self.blocks.ensure_defaults()
        repo = RepoAccess(root, Permissions.from_settings("auto"))
        toolbox = Toolbox(builtin_tools(), repo, MemoryAccess(self.blocks))
        self.window = MessageWindow(ContextBudget.for_window(100_000), LLMSummarizer(self.model))
        self.loop = AgentLoop(
            self.model,
            toolbox,
            self.window,
            request=lambda: [{"role": "system", "content": "You are mcode."}, *self.window.view()],
            record=self.recorded.append,
            emit=self._emit,
            cancel=self.cancel,
            hooks=hooks(self),
        )

    def _emit(self, event: Event) -> None:
        self.events.append(event)
        self.on_event(event)

    def run(self, text: str, max_steps: int = 10) -> Any:
        return self.loop.run(text, max_steps=max_steps)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def sent(self, request: int) -> list[dict[str, Any]]:
        """The messages of the model's `request`-th request."""
        return self.model.requests[request]["messages"]

    def tool_results(self, request: int) -> list[dict[str, Any]]:
        return [m for m in self.sent(request) if m["role"] == "tool"]


def session_hooks(turns: Turns) -> list[TurnHook]:
    """The hooks the session installs."""
    return [UndoReminders(), CorrectionReminder(), FailureNudge(), LessonNotices(turns._emit)]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"app.py": APP, "util.py": UTIL})


@pytest.fixture
def turns(repo: Path) -> Turns:
    return Turns(repo, session_hooks)


# A turn -------------------------------------------------------------------------------------------


def test_a_turn_streams_its_text_and_records_every_message(turns: Turns) -> None:
    turns.model.reply_tool_calls([("read_file", {"path": "app.py"})], usage=(5, 2))
    turns.model.reply_text("add returns the sum.", chunks=3)

    result = turns.run("What does add do?")

    assert result.stop_reason == "done" and result.error is None
    assert result.text == "add returns the sum." and result.steps == 2
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (16, 9)
    assert "".join(e.text for e in turns.of(TextDelta)) == "add returns the sum."
    assert len(turns.of(TextDelta)) == 3
    assert [m["role"] for m in turns.recorded] == ["user", "assistant", "tool", "assistant"]
    assert (
        turns.recorded[2]["name"] == "read_file" and "return a + b" in turns.recorded[2]["content"]
    )
    assert turns.sent(0)[-1] == {"role": "user", "content": "What does add do?"}
    tools = {t["function"]["name"] for t in turns.model.requests[0]["tools"]}
    assert tools >= {"edit_file", "memory_insert", "run_shell"}


def test_parallel_reads_come_back_in_the_order_asked(turns: Turns) -> None:
    turns.model.reply_tool_calls(
        [("read_file", {"path": "util.py"}), ("read_file", {"path": "app.py"})]
    )
    turns.model.reply_text("Read both.")

    result = turns.run("Read util.py and app.py")

    assert result.stop_reason == "done" and result.steps == 2
    results = turns.tool_results(1)
    assert [m["tool_call_id"] for m in results] == ["call_0", "call_1"]
    assert "double" in results[0]["content"] and "add" in results[1]["content"]
    kinds = [type(e).__name__ for e in turns.events if isinstance(e, ToolStarted | ToolFinished)]
    assert kinds == ["ToolStarted", "ToolStarted", "ToolFinished", "ToolFinished"]
    assert [e.call_id for e in turns.of(ToolFinished)] == ["call_0", "call_1"]


def test_malformed_arguments_and_unknown_tools_become_error_results(turns: Turns) -> None:
    turns.model.reply_tool_calls([("read_file", '{"path": "app.py"'), ("launch_rockets", {})])
    turns.model.reply_text("Sorry, fixed my call.")

    result = turns.run("Read app.py")

    assert result.stop_reason == "done" and result.text == "Sorry, fixed my call."
    finished = turns.of(ToolFinished)
    assert [f.error for f in finished] == [True, True]
    assert finished[0].result.startswith("Error: ") and "not valid JSON" in finished[0].result
    assert finished[1].result.startswith("Error: unknown tool 'launch_rockets'")
    assistant = next(m for m in turns.sent(1) if m["role"] == "assistant")
    assert assistant["tool_calls"][0]["function"]["arguments"] == "{}"
    results = turns.tool_results(1)
    assert results[0]["content"].startswith("Error: ")
    assert FAILURE_NUDGE in results[0]["content"]  # the first failure suggests a lesson
    assert FAILURE_NUDGE not in results[1]["content"]  # once per turn is enough
    assert all(FAILURE_NUDGE not in m["content"] for m in turns.recorded if m["role"] == "tool")


def test_the_step_limit_stops_a_turn_that_never_answers(turns: Turns) -> None:
    for _ in range(3):
        turns.model.reply_tool_calls([("read_file", {"path": "app.py"})])

    result = turns.run("Loop forever", max_steps=2)

    assert result.stop_reason == "max_turns" and result.steps == 2
    assert turns.model.pending() == 1


def test_a_model_error_ends_the_turn_and_keeps_what_was_streamed(turns: Turns) -> None:
    turns.model.reply_error(LLMError("server", "the model broke off"), after_text="Half an")

    result = turns.run("Answer")

    assert result.stop_reason == "error" and result.error == "the model broke off"
    assert turns.recorded[-1]["content"] == "Half an\n\n[the reply broke off here]"
    turns.model.reply_text("Whole.")
    assert turns.run("Again").text == "Whole."


# Cancelling ---------------------------------------------------------------------------------------


def test_cancel_stops_the_stream_and_keeps_what_was_said(turns: Turns) -> None:
    def cancel_on_first_text(event: Event) -> None:  # as the REPL's Ctrl-C handler would
        if isinstance(event, TextDelta):
            turns.cancel.set()

    turns.on_event = cancel_on_first_text
    turns.model.reply_text("one two three four five six", chunks=6)

    result = turns.run("Count slowly")

    assert result.stop_reason == "cancelled"
    first = turns.of(TextDelta)
    assert len(first) == 1 and result.text == first[0].text
    assert [m["role"] for m in turns.recorded] == ["user", "assistant"]
    assert turns.recorded[1]["content"] == f"{first[0].text}\n\n{INTERRUPTED_NOTE}"
    turns.cancel.clear()
    turns.on_event = lambda event: None
    turns.model.reply_text("Fine.")
    assert turns.run("ok").stop_reason == "done"


def test_cancel_between_tool_calls_answers_every_call(turns: Turns, repo: Path) -> None:
    def cancel_on_first_tool(event: Event) -> None:
        if isinstance(event, ToolStarted):
            turns.cancel.set()

    turns.on_event = cancel_on_first_tool
    turns.model.reply_tool_calls(
        [
            ("edit_file", {"path": "app.py", "old_string": "a + b", "new_string": "a - b"}),
            ("edit_file", {"path": "util.py", "old_string": "2 * x", "new_string": "x + x"}),
        ]
    )

    result = turns.run("Change both")

    assert result.stop_reason == "cancelled"
    assert "a - b" in (repo / "app.py").read_text() and (repo / "util.py").read_text() == UTIL
    assert [m["role"] for m in turns.recorded] == ["user", "assistant", "tool", "tool"]
    assert turns.recorded[3]["content"] == CANCELLED_RESULT
    assert [e.call_id for e in turns.of(ToolFinished)] == ["call_0"]


# The session's hooks ------------------------------------------------------------------------------


def test_a_correction_reminds_the_model_but_the_transcript_keeps_the_users_words(
    turns: Turns,
) -> None:
    turns.model.reply_text("Noted.")
    turns.model.reply_text("Sure.")

    turns.run("No, use pytest, not unittest")
    turns.run("Now add a docstring to add")

    assert turns.sent(0)[-1]["content"] == f"No, use pytest, not unittest\n\n{CORRECTION_REMINDER}"
    assert turns.recorded[0]["content"] == "No, use pytest, not unittest"
    assert turns.sent(1)[-1]["content"] == "Now add a docstring to add"


def test_a_lesson_recorded_is_told_to_the_user(turns: Turns) -> None:
    lesson = "Run the tests with `pytest -q`; unittest discovery finds nothing here."
    turns.model.reply_tool_calls([("memory_insert", {"label": "lessons", "text": lesson})])
    turns.model.reply_text("Noted.")

    turns.run("Remember how to run the tests")

    notices = [e.text for e in turns.of(Notice)]
    assert notices == [f"lesson recorded: {lesson}"]
    assert lesson in turns.blocks.get("lessons").value


def test_a_failed_memory_edit_gets_no_nudge_but_a_later_failure_does(turns: Turns) -> None:
    turns.model.reply_tool_calls(
        [
            ("memory_insert", {"label": "no_such_block", "text": "x"}),
            ("read_file", {"path": "missing.py"}),
        ]
    )
    turns.model.reply_text("Both failed.")
    turns.model.reply_tool_calls([("read_file", {"path": "missing.py"})])
    turns.model.reply_text("Still missing.")

    turns.run("Try both")
    turns.run("Try again")

    first = turns.tool_results(1)
    assert FAILURE_NUDGE not in first[0]["content"] and FAILURE_NUDGE in first[1]["content"]
    assert FAILURE_NUDGE in turns.tool_results(3)[-1]["content"]  # a new turn may nudge again
    assert not turns.of(Notice)


def test_undo_reminders_reach_the_next_user_message_once(repo: Path) -> None:
    undo = UndoReminders()
    turns = Turns(repo, lambda t: [undo])
    turns.model.reply_text("OK.")
    turns.model.reply_text("OK.")

    undo.undone(["app.py"], ["util.py", "extra.py"])
    turns.run("Carry on")
    turns.run("And on")

    told = turns.sent(0)[-1]["content"]
    assert told.startswith("Carry on\n\n(mcode: the user undid your file changes")
    assert "reverted in: app.py." in told
    assert "as the user left them, not reverted: util.py, extra.py." in told
    assert turns.sent(1)[-1]["content"] == "And on"


@pytest.mark.parametrize(
    ("text", "correcting"),
    [
        ("No, use tabs here", True),
        ("that's wrong, the config lives in etc/", True),
        ("Don't touch the generated files", True),
        ("Instead, call the helper", True),
        ("Now add tests", False),
        ("No problem, thanks!", False),
        ("Notice the failing test", False),
    ],
)
def test_corrections_are_recognised_at_the_start_of_a_message(text: str, correcting: bool) -> None:
    assert bool(CORRECTION.match(text)) is correcting
