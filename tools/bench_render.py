#!/usr/bin/env python3
"""Benchmark drawing a long streamed answer: seconds and bytes written to a terminal.

Three answers, as issue 15 measured them: an 8 KB and a 33 KB Python code block, and a 214 KB
paragraph of prose without a line break. Each is fed to the REPL's `Renderer` in pieces of a few
characters (as a model streams them), on a console that believes it is a 100x40 colour terminal
and writes into a byte counter: wall and CPU seconds (the CPU figure moves less with the load of a
shared machine) and bytes written. Beside each, the baseline: the same pieces written raw.

    /work/main/.venv/bin/python tools/bench_render.py [--piece N] [--limit SECONDS] [--json]

`--limit` gives up on an answer after that many seconds (and says how far it got), so a renderer
that is quadratic still finishes the run.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console

from mcode.agent.events import TextDelta, TurnFinished
from mcode.agent.messages import Usage
from mcode.repl.render import Renderer

CODE_LINE = "    result = compute_value(items[{i}], factor={i} * 2)  # step {i}\n"
SENTENCE = (
    "The parser in json/__init__.py reads item {i} and hands it to the decoder, "
    "which checks `scan_once` before it builds the **result** list. "
)


class Counter(io.TextIOBase):
    """A terminal that only counts the bytes it is sent."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode("utf-8"))
        return len(text)

    def isatty(self) -> bool:
        return True


def code_answer(size: int) -> str:
    lines = ["Here is the function:\n\n```python\ndef run(items):\n"]
    total, i = 0, 0
    while total < size:
        line = CODE_LINE.format(i=i)
        lines.append(line)
        total += len(line)
        i += 1
    lines.append("    return result\n```\n\nDone.")
    return "".join(lines)


def prose_answer(size: int) -> str:
    parts, total, i = [], 0, 0
    while total < size:
        sentence = SENTENCE.format(i=i)
        parts.append(sentence)
        total += len(sentence)
        i += 1
    return "".join(parts).rstrip()


def pieces(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def render(text: str, piece: int, limit: float) -> dict[str, Any]:
    sink = Counter()
    console = Console(
        file=sink, width=100, height=40, force_terminal=True, color_system="256", highlight=False
    )
    renderer = Renderer(console)
    started, cpu = time.perf_counter(), time.process_time()
    fed = 0
    for chunk in pieces(text, piece):
        renderer(TextDelta(chunk))
        fed += len(chunk)
        if time.perf_counter() - started > limit:
            break
    renderer(TurnFinished(Usage(), 0.0, 0, 0.0, "done"))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "bytes": sink.bytes,
        "fed": fed,
        "complete": fed == len(text),
    }


def raw(text: str, piece: int) -> dict[str, Any]:
    sink = Counter()
    started = time.perf_counter()
    for chunk in pieces(text, piece):
        sink.write(chunk)
        sink.flush()
    return {"seconds": time.perf_counter() - started, "bytes": sink.bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--piece", type=int, default=4, help="characters per streamed piece")
    parser.add_argument("--limit", type=float, default=120.0, help="seconds before giving up")
    parser.add_argument("--json", action="store_true", help="figures as JSON")
    args = parser.parse_args()
    answers = {
        "8 KB code block": code_answer(8 * 1024),
        "33 KB code block": code_answer(33 * 1024),
        "214 KB paragraph": prose_answer(214 * 1024),
    }
    figures: dict[str, Any] = {}
    for name, text in answers.items():
        drawn = render(text, args.piece, args.limit)
        baseline = raw(text, args.piece)
        figures[name] = {"chars": len(text), "render": drawn, "raw": baseline}
        if not args.json:
            got = "" if drawn["complete"] else f" (gave up at {drawn['fed'] / 1024:.0f} KB)"
            print(
                f"{name:17} {len(text) / 1024:6.0f} KB  render {drawn['seconds']:7.2f} s "
                f"({drawn['cpu_seconds']:.2f} s CPU) {drawn['bytes'] / 1024:8.0f} KB written{got}"
                "  |  raw "
                f"{baseline['seconds']:.3f} s {baseline['bytes'] / 1024:.0f} KB"
            )
    if args.json:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
