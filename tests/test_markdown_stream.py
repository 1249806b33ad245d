"""A streamed answer drawn piece by piece looks as the whole answer drawn at once, keeps its
paths and line breaks, and costs the terminal bytes in proportion to its length."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from mcode.repl.markdown import LineMarkdown, Trimmed, keep_verbatim
from mcode.repl.markdown_stream import MarkdownStream, line_kind

CODE = "".join(f"    total += values[{i}] * {i}  # step {i}\n" for i in range(60))
DOCUMENTS = {
    "prose": "First line\nsecond line with **bold** and `code`\n\nA new paragraph.",
    "code": f"Run this:\n\n```python\ndef f(values):\n    total = 0\n\n{CODE}```\n\nDone.",
    "list": "Steps:\n\n- read it\n- edit it\n  carefully\n- test it\n\n1. one\n2. two\n\nEnd.",
    "table": "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\nAfter the table.",
    "quote": "> quoted\n> still quoted\n\n# Heading\nText under it.",
    "long": " ".join(f"word{i} *stressed {i}* and `code {i}`" for i in range(200)),
}


def console(**options: object) -> Console:
    defaults: dict[str, object] = {"width": 80, "record": True, "color_system": None}
    return Console(**(defaults | options))  # type: ignore[arg-type]


def text_of(out: Console) -> str:
    return "\n".join(line.rstrip() for line in out.export_text().splitlines())


def streamed(markdown: str, piece: int) -> str:
    out = console(force_terminal=False)
    stream = MarkdownStream(out)
    for start in range(0, len(markdown), piece):
        stream.feed(markdown[start : start + piece])
    stream.finish()
    return text_of(out)


def at_once(markdown: str) -> str:
    out = console(force_terminal=False)
    out.print(Trimmed(LineMarkdown(markdown)))
    return re.sub(r"\n{3,}", "\n\n", text_of(out))  # rich puts two blank lines after some blocks


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_pieces_of_any_size_draw_the_same_answer(name: str) -> None:
    whole = streamed(DOCUMENTS[name], len(DOCUMENTS[name]))
    assert streamed(DOCUMENTS[name], 1) == whole
    assert streamed(DOCUMENTS[name], 7) == whole


@pytest.mark.parametrize("name", ["prose", "code", "table", "long"])
def test_a_streamed_answer_reads_as_the_whole_markdown(name: str) -> None:
    assert streamed(DOCUMENTS[name], 5) == at_once(DOCUMENTS[name])


def test_a_long_line_keeps_every_word_in_order() -> None:
    drawn = streamed(DOCUMENTS["long"], 3)
    words = drawn.split()
    assert words[:3] == ["word0", "stressed", "0"]
    assert "*" not in drawn and "`" not in drawn  # no emphasis or code span was cut in half
    assert len(words) == len(DOCUMENTS["long"].split())


def test_paths_and_dunders_are_drawn_verbatim() -> None:
    text = "Edited json/__init__.py and the __init__ method.\nGlob: src/**/*.py, **bold** stays."
    assert streamed(text, 4) == (
        "Edited json/__init__.py and the __init__ method.\nGlob: src/**/*.py, bold stays."
    )


def test_code_spans_and_fences_are_left_alone() -> None:
    source = "a `x__y` b\n```\n__z__\n```\nc__d"
    assert keep_verbatim(source) == "a `x__y` b\n```\n__z__\n```\nc\\_\\_d"


def test_single_newlines_stay_line_breaks() -> None:
    assert streamed("edited a.py\nedited b.py\nran the tests", 2) == (
        "edited a.py\nedited b.py\nran the tests"
    )


def test_a_code_block_is_drawn_whole_without_its_trailing_blank_lines() -> None:
    drawn = streamed("```\nx = 1\n\ny = 2\n\n\n```\nafter", 3)
    assert drawn == " x = 1\n\n y = 2\n\nafter"


def test_line_kinds() -> None:
    assert [line_kind(x) for x in ("- a", "12. b", "# h", "---", "> q", "| t |", "text")] == [
        "item",
        "item",
        "heading",
        "rule",
        "quote",
        "table",
        "prose",
    ]


def test_a_long_answer_writes_bytes_in_proportion_to_its_length() -> None:
    """On a terminal only the open part is repainted, never the whole answer."""
    code = "```python\n" + CODE * 8 + "```\n\n" + DOCUMENTS["long"] * 4
    sink = io.StringIO()
    out = Console(file=sink, width=80, height=30, force_terminal=True, color_system="256")
    stream = MarkdownStream(out)
    for start in range(0, len(code), 4):
        stream.feed(code[start : start + 4])
    stream.finish()
    written = len(sink.getvalue().encode())
    assert written < 12 * len(code)  # it used to be about 70 times the answer
    assert "step 59" in sink.getvalue() and "word199" in sink.getvalue()


def test_carriage_returns_at_line_ends_are_dropped() -> None:
    assert streamed("one\r\ntwo\r\n```\nx = 1\r\n```\r\n", 1) == "one\ntwo\n\n x = 1"


def test_on_a_terminal_the_line_being_written_shows_at_once() -> None:
    sink = io.StringIO()
    out = Console(file=sink, width=80, height=30, force_terminal=True, color_system=None)
    stream = MarkdownStream(out)
    stream.feed("Hello wor")
    assert "Hello wor" in sink.getvalue()  # the first repaint does not wait
    stream.feed("ld.\n\nBye.")
    stream.finish()
    written = re.sub(r" +\n", "\n", sink.getvalue())  # lines come padded to the width
    assert written.rstrip().endswith("Hello world.\n\nBye.")
