"""One streamed answer drawn as Markdown in time and bytes linear in its length.

Drawing the whole answer again on every piece the model sends costs the square of its length (an
8 KB code block wrote half a megabyte to the terminal). So each part of the answer is printed
once, as soon as nothing that follows can change how it looks, and only what can still change
is shown in a small transient `Live` region below it, repainted at most `REFRESH_SECONDS` apart:

- lines of prose or of a quote, `LINE_BATCH` at a time, once the line after them has begun (a line
  break is kept, so the next line can only change the last one, making it a table's header or a
  heading);
- the lines of a code block, `CODE_BATCH` at a time, highlighted with the lines above them as
  context (the live region highlights the lines it shows without it);
- the items of a list, once `LINE_BATCH` lines of them are held and the next item at the same
  indent begins; a table, once it ends;
- a line of prose longer than a few screen rows, row by row: a row is printed once rendering the
  text up to its last word alone gives the very same row, so no emphasis or link is cut in half.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

from pygments.lexer import Lexer
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.segment import Segment
from rich.syntax import Syntax
from rich.text import Text

from mcode.repl.markdown import CODE_THEME, FENCE, LineMarkdown, Lines, Trimmed, blank

REFRESH_SECONDS = 1 / 15
CODE_BATCH = 16  # code lines printed at a time (each print highlights its context again)
LINE_BATCH = 8  # lines of prose, a quote or a list held back to be printed at a time
CONTEXT_LINES = 16  # code lines above new ones that their highlighting sees
LONG_LINE_ROWS = 4  # a line of prose this many rows long is printed row by row
FORCE_ROWS = 40  # ... even when no row ends cleanly (an emphasis left open for pages)

_CLOSING_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*$")
_RULE = re.compile(r"^([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_HEADING = re.compile(r"^#{1,6}(?:\s|$)")
_ITEM = re.compile(r"^(?:[-*+]|\d{1,9}[.)])(?:\s|$)")
_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-+)\s*$")
_TABLE_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")
_WORD = re.compile(r"\S+")


def line_kind(line: str) -> str:
    """What a line begins: prose, quote, item (of a list), table, heading or rule."""
    text = line.lstrip(" ")
    if _indent(line) >= 4:
        return "prose"  # indented: a continuation, or code Markdown draws as such
    if _RULE.match(text):
        return "rule"
    if _HEADING.match(text):
        return "heading"
    if _ITEM.match(text):
        return "item"
    if text.startswith(">"):
        return "quote"
    if text.startswith("|"):
        return "table"
    return "prose"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def find_lexer(name: str) -> Lexer:
    """The lexer rich would use for a code block in `name`; plain text for a name it does not know."""
    lexer = Syntax("", name).lexer or Syntax("", "text").lexer
    assert lexer is not None, "pygments always knows plain text"
    return lexer


@dataclass
class CodeFence:
    """An open code block: its lines not printed yet, and the last ones printed (for context)."""

    marker: str
    lexer: Lexer  # found once: rich would look it up by name for every print
    lines: list[str] = field(default_factory=list)
    context: list[str] = field(default_factory=list)

    def closed_by(self, line: str) -> bool:
        found = _CLOSING_FENCE.match(line)
        if found is None:
            return False
        marker = found.group(1)
        return marker[0] == self.marker[0] and len(marker) >= len(self.marker)

    def syntax(self, lines: list[str], context: bool = True) -> Syntax:
        code = self.context + lines if context else lines
        first = len(code) - len(lines) + 1
        return Syntax(
            "\n".join(code),
            self.lexer,
            theme=CODE_THEME,
            word_wrap=True,
            padding=(0, 1),
            line_range=(first, len(code)),
        )


class MarkdownStream:
    """One streamed answer: `feed` it pieces, then `finish` it once."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.held: list[str] = []  # the open block's complete lines not printed yet
        self.kind = ""  # the open block's kind (see line_kind); "" between blocks
        self.indent = 0  # a list's items begin this far in
        self.partial = ""  # the line being written
        self.fence: CodeFence | None = None
        self.continued = False  # part of the open block is printed: no blank line before more
        self.printed = False
        self._split_from = 0  # the partial line's length worth trying to split again
        self._terminal = console.is_terminal  # asked once: each time is a system call
        self._settled: list[RenderableType] = []  # parts settled, not written yet
        self._lock = threading.RLock()
        self._live: Live | None = None
        self._timer: threading.Timer | None = None
        self._shown_at = 0.0

    def feed(self, text: str) -> None:
        with self._lock:
            *lines, self.partial = (self.partial + text).split("\n")
            for line in lines:
                self._line(line.removesuffix("\r"))
            if lines:
                self._split_from = 0
            self._print_code()
            self._print_long_line()
            self._show()

    def finish(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._live is not None:
                self._live.stop()
                self._live = None
            if self.partial:
                self._line(self.partial.removesuffix("\r"))
                self.partial = ""
            self._print_code(final=True)
            self.fence = None
            self._end_block()
            self._write()

    # -- settling lines ------------------------------------------------------------------------------

    def _line(self, line: str) -> None:
        if self.fence is not None:
            if self.fence.closed_by(line):
                self._print_code(final=True)
                self.fence = None
                self.continued = False
            else:
                self.fence.lines.append(line)
            return
        if not line.strip():
            if self.kind == "item":
                self.held.append(line)  # an indented line may still continue the item
            else:
                self._end_block()
            return
        opener = FENCE.match(line)
        if opener:
            self._end_block()
            info = line[opener.end() :].strip().partition(" ")[0]
            self.fence = CodeFence(opener.group(1), find_lexer(info or "text"))
            return
        if not self._continues(line):
            self._end_block()
            self.kind = line_kind(line)
            self.indent = _indent(line)
        self.held.append(line)
        if self.kind in ("heading", "rule"):
            self._end_block()

    def _continues(self, line: str) -> bool:
        """Whether the line belongs to the open block; prints what it settles there."""
        kind = line_kind(line)
        if not self.held:  # the rest of a long line whose first rows are printed
            return self.kind == "prose" and kind == "prose"
        after_blank = not self.held[-1].strip()
        if self.kind == "item":
            if line[0].isspace():
                return True
            if kind == "item" and not after_blank and _indent(line) == self.indent:
                if len(self.held) >= LINE_BATCH:
                    self._print_held()
                return True
            return False
        if self.kind == "table":
            return "|" in line
        if self.kind == "prose":
            table = _TABLE_DELIMITER.match(line) and "|" in line + self.held[-1]
            if table or _UNDERLINE.match(line):  # the last line becomes a header or a heading
                last = self.held.pop()
                self._print_held()
                self.held = [last]
                self.kind = "table" if table else "heading"
                return True
        if kind == self.kind or (self.kind == "prose" and line[0].isspace()):
            if len(self.held) >= LINE_BATCH:
                self._print_held()
            return True
        return False

    def _end_block(self) -> None:
        while self.held and not self.held[-1].strip():
            self.held.pop()
        self._print_held()
        self.kind = ""
        self.continued = False

    def _print_held(self) -> None:
        if self.held:
            self._print(Trimmed(LineMarkdown("\n".join(self.held))))
            self.held = []

    def _print_code(self, final: bool = False) -> None:
        """Print the open code block's complete lines once CODE_BATCH are ready; blank ones wait
        for the line after them (the block's trailing blank lines are not drawn)."""
        fence = self.fence
        if fence is None:
            return
        if not self.continued:  # nor are its leading ones
            while fence.lines and not fence.lines[0].strip():
                fence.lines.pop(0)
        last = len(fence.lines)
        while last and not fence.lines[last - 1].strip():
            last -= 1
        if not final and last < CODE_BATCH:
            return
        ready, fence.lines = fence.lines[:last], ([] if final else fence.lines[last:])
        if ready:
            self._print(fence.syntax(ready))
            fence.context = (fence.context + ready)[-CONTEXT_LINES:]

    def _print_long_line(self) -> None:
        """Print the finished rows of a long line of prose still being written."""
        width = self.console.width
        text = self.partial
        if self.fence is not None or len(text) < max(self._split_from, LONG_LINE_ROWS * width):
            return
        if line_kind(text) != "prose" or (self.held and self.kind != "prose"):
            return
        self._split_from = len(text) + width
        rows = self._rows(text)
        if len(rows) < LONG_LINE_ROWS:
            return
        done = rows[:-2]
        words = sum(len("".join(seg.text for seg in row).split()) for row in done)
        ends = [m.end() for m in _WORD.finditer(text)]
        if not 0 < words < len(ends):
            return
        head = text[: ends[words - 1]]
        rest = text[len(head) :].lstrip()
        if line_kind(rest) != "prose" or FENCE.match(rest):
            return  # drawn alone, the rest would begin a list, a heading...
        if self._rows(head) != done and len(rows) < FORCE_ROWS:
            return  # wait: the cut would fall inside an emphasis, a link or a code span
        if self.kind != "prose":
            self._end_block()
            self.kind = "prose"
        self._print_held()
        self._print(Lines(done))
        self.partial = rest

    def _rows(self, markdown: str) -> list[list[Segment]]:
        rows = self.console.render_lines(LineMarkdown(markdown), self.console.options, pad=False)
        while rows and blank(rows[-1]):
            rows.pop()
        return rows

    def _print(self, renderable: RenderableType) -> None:
        """Settle a part: it is written with the others of the same moment (see _write)."""
        if self.printed and not self.continued:
            self._settled.append(Text(""))
        self._settled.append(renderable)
        self.printed = True
        self.continued = True

    def _write(self) -> bool:
        """Print the parts settled since last time, in one write (with the live region redrawn
        below them); whether there were any."""
        if not self._settled:
            return False
        settled, self._settled = self._settled, []
        self.console.print(Group(*settled))
        return True

    # -- the live region -----------------------------------------------------------------------------

    def _show(self) -> None:
        """Write what settled and repaint what is still open, at most every REFRESH_SECONDS
        (later, if sooner): each write to a terminal costs the other thread's turn."""
        if not self._terminal:
            self._write()
            return
        if self._live is None:
            self._live = Live(
                Tail(self),
                console=self.console,
                auto_refresh=False,
                transient=True,
                vertical_overflow="crop",
            )
            self._live.start()
        wait = self._shown_at + REFRESH_SECONDS - time.monotonic()
        if wait <= 0:
            self._refresh()
        elif self._timer is None:
            self._timer = threading.Timer(wait, self._refresh)
            self._timer.daemon = True
            self._timer.start()

    def _refresh(self) -> None:
        with self._lock:
            self._timer = None
            if self._live is not None:
                if not self._write():
                    self._live.refresh()
                self._shown_at = time.monotonic()

    def tail(self) -> RenderResult:
        """What is shown live: the open block's lines not printed yet and the line being written."""
        if self.fence is not None:
            lines = [*self.fence.lines, self.partial]
            if any(line.strip() for line in lines):
                yield from self._gap()
                yield self.fence.syntax(lines, context=False)
            return
        text = "\n".join([*self.held, self.partial]).strip("\n")
        if text.strip():
            yield from self._gap()
            yield Trimmed(LineMarkdown(text))

    def _gap(self) -> RenderResult:
        if self.printed and not self.continued:
            yield Text("")


class Tail:
    """The live region's renderable: whatever the stream holds open when it is drawn."""

    def __init__(self, stream: MarkdownStream) -> None:
        self.stream = stream

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.stream.tail()
