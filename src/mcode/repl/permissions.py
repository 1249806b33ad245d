"""Asking the user before an edit or a command: the request shown (a diff highlighted as a diff,
a command as a command), then `Allow? [y]es / [n]o / [a]lways`.

The question is asked on the REPL's own thread, where the terminal is; the turn's worker thread
waits for the answer (see `app.TurnRunner`). Reading a line is injected, so tests answer it.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.syntax import Syntax
from rich.text import Text

from mcode.tools import Answer, Request

ANSWERS: dict[str, Answer] = {
    "y": "yes",
    "yes": "yes",
    "n": "no",
    "no": "no",
    "a": "always",
    "always": "always",
}
MAX_DETAIL_LINES = 200
THEME = "ansi_dark"

# Shows a prompt and returns the line typed; raises EOFError (Ctrl-D) or KeyboardInterrupt (Ctrl-C).
ReadLine = Callable[[str], str]


def parse_answer(text: str, *, always_offered: bool = True) -> Answer | None:
    """The answer a typed line means, or None when it means none of them."""
    answer = ANSWERS.get(text.strip().lower())
    if answer == "always" and not always_offered:
        return None
    return answer


def question(request: Request) -> str:
    if request.always:
        return "Allow? [y]es / [n]o / [a]lways: "
    return "Allow? [y]es / [n]o: "


def request_view(request: Request) -> RenderableType:
    """The summary line, the detail, and what answering "always" would allow from now on."""
    parts: list[RenderableType] = [Text(request.summary, style="bold")]
    detail = request.detail.rstrip("\n")
    if detail:
        lines = detail.splitlines()
        if len(lines) > MAX_DETAIL_LINES:
            more = len(lines) - MAX_DETAIL_LINES
            detail = "\n".join([*lines[:MAX_DETAIL_LINES], f"… {more} more lines"])
        lexer = (
            "diff" if request.kind == "edit" else ("bash" if request.kind == "shell" else "text")
        )
        parts.append(Padding(Syntax(detail, lexer, theme=THEME, word_wrap=True), (0, 0, 0, 2)))
    if request.always:
        rules = ", ".join(request.always)
        parts.append(Text(f"  [a]lways allows from now on: {rules}", style="dim"))
    return Group(*parts)


def ask_user(console: Console, request: Request, read_line: ReadLine) -> Answer:
    """Show the request and ask until the answer is clear. Ctrl-D means no; Ctrl-C propagates
    (KeyboardInterrupt), since it cancels the whole turn, not only this call."""
    console.print(request_view(request))
    while True:
        try:
            typed = read_line(question(request))
        except EOFError:
            console.print(Text("Denied.", style="yellow"))
            return "no"
        answer = parse_answer(typed, always_offered=bool(request.always))
        if answer is not None:
            if answer == "no":
                console.print(Text("Denied.", style="yellow"))
            return answer
        console.print(Text("Please answer y, n" + (" or a." if request.always else "."), "dim"))
