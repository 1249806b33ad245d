"""Drawing a turn on the terminal: the answer as Markdown while it streams, tool calls as one-line
headers with a dim summary of their result, shell output dim, notices yellow, errors red.

Everything goes through a rich `Console`, so a test renders to an in-memory console at a fixed
width and compares text. The answer is drawn by `MarkdownStream`: each part printed once, as
Markdown, when it can no longer change, and only the part still open repainted in a small live
region below, so the scrollback holds the rendered Markdown, not the raw text.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from mcode.agent.events import (
    Event,
    Notice,
    TextDelta,
    ToolFinished,
    ToolOutput,
    ToolStarted,
    TurnFinished,
)
from mcode.repl.listing import one_line
from mcode.repl.markdown_stream import MarkdownStream

TOOL_BULLET = "●"
RESULT_MARK = "⎿"
# The argument that says what a call is about, in order of preference.
SUBJECT_KEYS = ("path", "command", "query", "pattern", "label", "message", "paths", "url")


def subject(arguments: dict[str, Any], width: int = 60) -> str:
    """What a tool call is about, in one short line: its path, command or query."""
    value: Any = next((arguments[k] for k in SUBJECT_KEYS if arguments.get(k)), None)
    if value is None:
        value = next((v for v in arguments.values() if isinstance(v, str) and v.strip()), "")
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    return one_line(str(value), width)


def tool_header(name: str, arguments: dict[str, Any]) -> Text:
    header = Text.assemble((f"{TOOL_BULLET} ", "bold cyan"), (name, "bold"))
    about = subject(arguments)
    if about:
        header.append(f" {about}")
    return header


def result_summary(result: str, error: bool, width: int = 100) -> Text:
    """The first line of what the tool told the model, and how many lines follow."""
    lines = result.strip("\n").splitlines() or [""]
    first = lines[0].strip()
    if len(first) > width:
        first = first[: width - 1] + "…"
    more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
    return Text(f"  {RESULT_MARK} {first}{more}", style="red" if error else "dim")


class Renderer:
    """Draws events on a console; the REPL calls it on its own thread, one event at a time."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._stream: MarkdownStream | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.text(event.text)
        elif isinstance(event, ToolStarted):
            self.flush()
            self.console.print(tool_header(event.name, event.arguments))
        elif isinstance(event, ToolOutput):
            self.flush()
            self.console.print(Text(f"    {event.text.rstrip()}", style="dim"))
        elif isinstance(event, ToolFinished):
            self.flush()
            self.console.print(result_summary(event.result, event.error))
        elif isinstance(event, Notice):
            self.notice(event.text)
        elif isinstance(event, TurnFinished):
            self.flush()
            if event.stop_reason == "cancelled":
                self.notice("cancelled")

    def text(self, piece: str) -> None:
        if self._stream is None:
            self._stream = MarkdownStream(self.console)
        self._stream.feed(piece)

    def flush(self) -> None:
        """End the answer being streamed (before anything else is drawn)."""
        if self._stream is not None:
            self._stream.finish()
            self._stream = None

    def notice(self, text: str) -> None:
        self.flush()
        self.console.print(Text(text, style="yellow"))

    def error(self, text: str) -> None:
        self.flush()
        self.console.print(Text(f"Error: {text}", style="bold red"))

    def dim(self, text: str) -> None:
        self.flush()
        self.console.print(Text(text, style="dim"))
