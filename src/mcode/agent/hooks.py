"""Policy the session installs into the agent loop: small hooks, called at fixed points of a turn.

The loop knows nothing of lessons, corrections, undo or the code index. It calls each hook when a turn starts
with the user's message and when a tool call finishes; a hook may hand back notes for the model,
which join the message as the model reads it but never the transcript, or tell the user something
through the session's events. The notes' wording lives in `prompts/hooks/`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from string import Template
from typing import Any

from mcode.agent.events import Event, Notice
from mcode.prompts import load_prompt
from mcode.tools import Tool

LESSONS = "lessons"  # the memory block of mistakes not to repeat
# A user message that starts like this is correcting the agent.
CORRECTION = re.compile(
    r"^\W*(?:no\b(?!\s+(?:problem|worries|need|rush)\b)|nope\b|wrong\b|incorrect\b|"
    r"that['’]?s\s+(?:wrong|incorrect|not\s+(?:right|it|what))|that\s+is\s+(?:wrong|incorrect)|"
    r"don['’]?t\b|do\s+not\b|instead\b|stop\b|not\s+like\s+that\b)",
    re.IGNORECASE,
)


def note(name: str, **values: str) -> str:
    """The note `prompts/hooks/<name>.md`, filled in, as one line: the template's lines joined by
    spaces, leaving out a line whose placeholders were all given empty values."""
    kept = []
    for line in load_prompt(f"hooks/{name}.md").strip().splitlines():
        template = Template(line)
        names = set(template.get_identifiers())
        if names and not any(values.get(key) for key in names):
            continue
        kept.append(template.substitute(values))
    return " ".join(kept)


@dataclass(frozen=True)
class FinishedCall:
    """A tool call that ran: `tool` is None when the model named no such tool, `arguments` is {}
    when they were not a JSON object, `result` is what the model reads."""

    name: str
    tool: Tool | None
    arguments: dict[str, Any]
    result: str
    error: bool

    @property
    def edits_memory(self) -> bool:
        return self.tool is not None and self.tool.kind == "memory"


class TurnHook:
    """A point of policy. The loop calls every installed hook in order; each method does nothing
    unless a hook overrides it."""

    def user_message(self, text: str) -> Sequence[str]:
        """A turn starts with this user message: notes for the model to read with it."""
        return ()

    def tool_finished(self, call: FinishedCall) -> str | None:
        """A tool call finished: a note for the model to read after its result, or None."""
        return None


class CorrectionReminder(TurnHook):
    """When the user corrects the agent, ask it to record the lesson once it has put it right."""

    def user_message(self, text: str) -> Sequence[str]:
        return [note("correction", lessons=LESSONS)] if CORRECTION.match(text) else []


class FailureNudge(TurnHook):
    """After the first failed tool call of a turn, suggest recording what was assumed wrongly.
    A failed memory edit gets no nudge: it would suggest the very tool that just failed."""

    def __init__(self) -> None:
        self._nudged = False

    def user_message(self, text: str) -> Sequence[str]:
        self._nudged = False
        return ()

    def tool_finished(self, call: FinishedCall) -> str | None:
        if not call.error or call.edits_memory or self._nudged:
            return None
        self._nudged = True
        return note("failure_nudge", lessons=LESSONS)


class LessonNotices(TurnHook):
    """Tell the user when the agent writes to the lessons block."""

    def __init__(self, emit: Callable[[Event], None]) -> None:
        self._emit = emit

    def tool_finished(self, call: FinishedCall) -> str | None:
        if call.error or not call.edits_memory or call.arguments.get("label") != LESSONS:
            return None
        args = call.arguments
        text = args.get("text") or args.get("new") or args.get("new_value") or ""
        line = " ".join(str(text).split())
        self._emit(Notice(f"lesson recorded: {line[:120]}" if line else "lessons updated"))
        return None


class IndexEdits(TurnHook):
    """Hand each file an edit tool changed to the code index at once (`sync`, ~50-100 ms), so that
    the model's next search already finds what it just wrote. Shell commands name no file: the
    index's watcher sees what they change."""

    def __init__(self, sync: Callable[[Sequence[str]], None]) -> None:
        self._sync = sync

    def tool_finished(self, call: FinishedCall) -> str | None:
        tool = call.tool
        if call.error or tool is None or tool.kind != "edit" or tool.path_arg is None:
            return None
        path = call.arguments.get(tool.path_arg)
        if isinstance(path, str) and path.strip():
            self._sync([path])
        return None


class UndoReminders(TurnHook):
    """After the user undoes the agent's changes, tell the model with the next user message
    which files are back as they were and which the user has since changed."""

    def __init__(self) -> None:
        self._pending: list[str] = []

    def undone(self, reverted: Sequence[str], kept: Sequence[str]) -> None:
        self._pending.append(note("undo", reverted=", ".join(reverted), kept=", ".join(kept)))

    def user_message(self, text: str) -> Sequence[str]:
        pending, self._pending = self._pending, []
        return pending
