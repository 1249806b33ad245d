"""What the REPL draws: events and permission questions rendered to an in-memory console at a
fixed width, compared as text."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from rich.console import Console

from mcode.agent.events import (
    Event,
    Notice,
    TextDelta,
    ToolFinished,
    ToolOutput,
    ToolStarted,
    TurnFinished,
)
from mcode.agent.messages import Usage
from mcode.repl.permissions import ask_user, parse_answer, request_view
from mcode.repl.render import Renderer, subject
from mcode.tools import Request

DIFF = "--- a/greet.py\n+++ b/greet.py\n@@ -1 +1 @@\n-hello\n+goodbye\n"


def console() -> Console:
    return Console(width=80, force_terminal=False, record=True, color_system=None)


def text_of(out: Console) -> str:
    return "\n".join(line.rstrip() for line in out.export_text().splitlines())


def draw(events: Iterable[Event]) -> str:
    out = console()
    renderer = Renderer(out)
    for event in events:
        renderer(event)
    renderer.flush()
    return text_of(out)


def finished(reason: str = "done") -> TurnFinished:
    return TurnFinished(Usage(), 0.0, 0, 0.0, reason)


def test_streamed_text_is_rendered_as_markdown_once() -> None:
    pieces = ["Here is ", "the **plan**:\n\n- re", "ad it\n- edit it\n\n", "Then `test`."]
    assert draw([TextDelta(p) for p in pieces]) == (
        "Here is the plan:\n\n • read it\n • edit it\n\nThen test."
    )


def test_a_code_block_is_not_cut_at_its_blank_lines() -> None:
    pieces = ["Run:\n\n```python\nx = 1\n", "\n", "y = 2\n```\n\nok"]
    assert draw([TextDelta(p) for p in pieces]) == "Run:\n\n x = 1\n\n y = 2\n\nok"


def test_tool_calls_are_one_line_headers_with_a_dim_summary() -> None:
    edit = {"path": "greet.py", "old_string": "hello", "new_string": "goodbye"}
    text = draw(
        [
            TextDelta("Let me change it."),
            ToolStarted("c1", "edit_file", edit),
            ToolFinished("c1", "edit_file", "Edited greet.py. It now reads:\n1→goodbye", False),
            ToolStarted("c2", "run_shell", {"command": "pytest -q"}),
            ToolOutput("c2", "1 failed\n"),
            ToolFinished("c2", "run_shell", "Error: exit status 1", True),
            TextDelta("The test fails."),
            finished(),
        ]
    )
    assert text == (
        "Let me change it.\n"
        "● edit_file greet.py\n"
        "  ⎿ Edited greet.py. It now reads: (+1 lines)\n"
        "● run_shell pytest -q\n"
        "    1 failed\n"
        "  ⎿ Error: exit status 1\n"
        "The test fails."
    )


def test_errors_are_red_and_notices_yellow() -> None:
    out = Console(width=80, force_terminal=True, record=True, color_system="standard")
    renderer = Renderer(out)
    renderer(ToolFinished("c1", "run_shell", "Error: boom", True))
    renderer(Notice("retrying in 2s"))
    renderer.error("the model is unreachable")
    styled = out.export_text(styles=True)
    assert "\x1b[31m  ⎿ Error: boom" in styled
    assert "\x1b[33mretrying in 2s" in styled
    assert "Error: the model is unreachable" in styled and "\x1b[1;31m" in styled


def test_a_cancelled_turn_says_so_after_the_partial_answer() -> None:
    assert draw([TextDelta("Once upon"), finished("cancelled")]) == "Once upon\ncancelled"


def test_the_subject_of_a_call_is_its_path_command_or_query() -> None:
    assert subject({"old_string": "a", "path": "src/x.py"}) == "src/x.py"
    assert subject({"query": "where is   parsing\ndone"}) == "where is parsing done"
    assert subject({"paths": ["a.py", "b.py"], "message": "m"}) == "m"
    assert subject({"text": "x" * 100}, width=10) == "xxxxxxxxx…"
    assert subject({}) == ""


def test_a_permission_request_shows_the_diff_and_what_always_allows() -> None:
    out = console()
    request = Request("edit", "Edit greet.py?", DIFF, "edit_file", ("Edit(greet.py)",))
    out.print(request_view(request))
    assert text_of(out) == (
        "Edit greet.py?\n"
        "  --- a/greet.py\n"
        "  +++ b/greet.py\n"
        "  @@ -1 +1 @@\n"
        "  -hello\n"
        "  +goodbye\n"
        "  [a]lways allows from now on: Edit(greet.py)"
    )


def scripted(*answers: str | type[BaseException]):
    asked: list[str] = []
    queue = list(answers)

    def read_line(question: str) -> str:
        asked.append(question)
        answer = queue.pop(0)
        if isinstance(answer, type):
            raise answer()
        return answer

    return read_line, asked


def test_ask_user_repeats_until_the_answer_is_clear() -> None:
    out = console()
    request = Request("shell", "Run `make`?", "make", "run_shell", ("Bash(make)",))
    read_line, asked = scripted("maybe", " A ")
    assert ask_user(out, request, read_line) == "always"
    assert asked == ["Allow? [y]es / [n]o / [a]lways: "] * 2
    assert "Please answer y, n or a." in text_of(out)


def test_always_is_not_accepted_when_not_offered_and_ctrl_d_denies() -> None:
    out = console()
    request = Request("shell", "Run `rm x`?", "rm x", "run_shell", ())
    read_line, asked = scripted("a", EOFError)
    assert ask_user(out, request, read_line) == "no"
    assert asked == ["Allow? [y]es / [n]o: "] * 2
    assert "Denied." in text_of(out)


def test_ctrl_c_at_the_question_reaches_the_caller() -> None:
    read_line, _ = scripted(KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        ask_user(console(), Request("edit", "Edit?", DIFF), read_line)


@pytest.mark.parametrize(
    ("typed", "answer"), [("y", "yes"), ("YES", "yes"), ("n", "no"), ("always", "always")]
)
def test_parse_answer(typed: str, answer: str) -> None:
    assert parse_answer(typed) == answer
    assert parse_answer("always", always_offered=False) is None
    assert parse_answer("sure") is None
