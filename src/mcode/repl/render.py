"""Drawing a turn on the terminal: the answer as Markdown while it streams, tool calls as one-line
headers with a dim summary of their result, shell output dim, notices yellow, errors red.

Everything goes through a rich `Console`, so a test renders to an in-memory console at a fixed
width and compares text. On a real terminal the paragraph still being written is shown in a
transient `Live` region; each finished paragraph is printed once, as Markdown, above it. A
paragraph is finished when a blank line follows it outside a code fence, so nothing is printed
twice and the scrollback holds the rendered Markdown, not the raw text.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.live import Live
from rich.markdown import Markdown
from rich.segment import Segment
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

CODE_THEME = "ansi_dark"
TOOL_BULLET = "●"
RESULT_MARK = "⎿"
# The argument that says what a call is about, in order of preference.
SUBJECT_KEYS = ("path", "command", "query", "pattern", "label", "message", "paths", "url")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


class Trimmed:
    """A renderable without blank lines around it, so that consecutive pieces of one answer are
    spaced by exactly one blank line whatever elements begin and end them."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.renderable, options, pad=False)
        while lines and _blank(lines[-1]):
            lines.pop()
        while lines and _blank(lines[0]):
            lines.pop(0)
        for line in lines:
            yield from line
            yield Segment.line()


def _blank(line: list[Segment]) -> bool:
    return all(not seg.text.strip() and not _background(seg) for seg in line)


def _background(segment: Segment) -> bool:
    color = segment.style.bgcolor if segment.style else None
    return color is not None and not color.is_default


def split_finished(text: str) -> tuple[str, str]:
    """(finished blocks, the rest): cut at the last blank line outside a code fence that is
    followed by a line starting at the margin (an indented line may continue a list item)."""
    cut = 0
    fenced = False
    offset = 0
    previous_blank = False
    for line in text.splitlines(keepends=True):
        if previous_blank and not fenced and line.strip() and not line[0].isspace():
            cut = offset
        if not line.endswith("\n"):
            break  # the line is still being written
        if _FENCE.match(line):
            fenced = not fenced
        previous_blank = not line.strip()
        offset += len(line)
    return text[:cut], text[cut:]


class MarkdownStream:
    """One streamed answer: finished paragraphs printed as Markdown, the rest shown live."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.pending = ""
        self.printed = False
        self._live: Live | None = None

    def feed(self, text: str) -> None:
        self.pending += text
        finished, self.pending = split_finished(self.pending)
        if finished.strip():
            self._print(finished)
        if self.console.is_terminal and self.pending.strip():
            self._show_live(self.pending)

    def finish(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self.pending.strip():
            self._print(self.pending)
        self.pending = ""

    def _print(self, markdown: str) -> None:
        if self.printed:
            self.console.print()
        self.console.print(Trimmed(Markdown(markdown.strip("\n"), code_theme=CODE_THEME)))
        self.printed = True

    def _show_live(self, markdown: str) -> None:
        view = Trimmed(Markdown(markdown, code_theme=CODE_THEME))
        if self._live is None:
            self._live = Live(
                view,
                console=self.console,
                auto_refresh=False,
                transient=True,
                vertical_overflow="crop",
            )
            self._live.start()
        self._live.update(view, refresh=True)


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
