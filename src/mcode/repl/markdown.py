"""Markdown as a model writes it, drawn by rich with two corrections.

A model's line breaks are meant: a list of files or steps written one per line without a blank
line between them should stay one per line, so a single newline is a line break (a hard break to
rich), not a space. And paths and names are written bare: `json/__init__.py` or
`src/**/*.py` would otherwise lose their underscores and stars to bold, so runs of underscores,
and stars next to a slash, are escaped outside code spans and fences before parsing.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.markdown import Markdown
from rich.segment import Segment

CODE_THEME = "ansi_dark"
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:.+?)(?<!`)\1(?!`)", re.DOTALL)
_VERBATIM = re.compile(r"_{2,}|(?<=/)\*+|\*+(?=/)")
_PARSER = MarkdownIt().enable("strikethrough").enable("table")  # as rich's own


class LineMarkdown(Markdown):
    """rich's Markdown with each newline kept and paths verbatim."""

    def __init__(self, markup: str) -> None:
        super().__init__("", code_theme=CODE_THEME)
        self.markup = markup
        self.parsed = _PARSER.parse(keep_verbatim(markup))
        for token in self.parsed:
            for child in token.children or ():
                if child.type == "softbreak":
                    child.type = "hardbreak"


def keep_verbatim(markdown: str) -> str:
    """The text with the underscores and stars of paths escaped, outside code."""
    out: list[str] = []
    fence = ""
    prose: list[str] = []
    for line in markdown.splitlines(keepends=True):
        found = FENCE.match(line)
        if fence or found:
            out.append(_escape_prose("".join(prose)))
            prose = []
            out.append(line)
            if found and not fence:
                fence = found.group(1)
            elif found and found.group(1)[0] == fence[0] and len(found.group(1)) >= len(fence):
                fence = ""
            continue
        prose.append(line)
    out.append(_escape_prose("".join(prose)))
    return "".join(out)


def _escape_prose(text: str) -> str:
    out: list[str] = []
    start = 0
    for span in _CODE_SPAN.finditer(text):
        out.append(_escape(text[start : span.start()]))
        out.append(span.group())
        start = span.end()
    out.append(_escape(text[start:]))
    return "".join(out)


def _escape(text: str) -> str:
    return _VERBATIM.sub(lambda m: "".join("\\" + c for c in m.group()), text)


class Trimmed:
    """A renderable without blank lines around it, so that consecutive pieces of one answer are
    spaced by exactly one blank line whatever elements begin and end them."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.renderable, options, pad=False)
        while lines and blank(lines[-1]):
            lines.pop()
        while lines and blank(lines[0]):
            lines.pop(0)
        yield Lines(lines)


class Lines:
    """Lines already rendered, drawn as they are."""

    def __init__(self, lines: list[list[Segment]]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.lines:
            yield from line
            yield Segment.line()


def blank(line: list[Segment]) -> bool:
    return all(not seg.text.strip() and not _background(seg) for seg in line)


def _background(segment: Segment) -> bool:
    color = segment.style.bgcolor if segment.style else None
    return color is not None and not color.is_default
