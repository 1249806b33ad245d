"""Search hits and memory blocks as the terminal lists them, in the REPL (`/search`, `/memory`) and
from the shell (`mcode search`, `mcode memory list`) alike.

Each listing is a rich `Text`: the REPL prints it with its styles, a shell command prints its
`plain` text, so the two show the same lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from mcode.memory.blocks import Block, BrokenBlock
from mcode.retrieval.hits import SearchHit

BLOCK_COLUMNS = ("LABEL", "SCOPE", "CHARS", "FLAGS", "DESCRIPTION")
_DESCRIPTION_WIDTH = 60


def search_hit(hit: SearchHit, snippet_lines: int, score: float | None = None) -> Text:
    """`path:start-end  symbol (kind)` (and the score, when given), then the snippet's first
    lines, indented."""
    label = f"  {hit.symbol} ({hit.kind})" if hit.symbol else f"  ({hit.kind})"
    text = Text.assemble((f"{hit.path}:{hit.start_line}-{hit.end_line}", "bold"), label)
    if score is not None:
        text.append(f"  {score:.4f}")
    for line in hit.snippet.splitlines()[:snippet_lines]:
        text.append(f"\n    {line}", style="dim")
    return text


def block_table(entries: Sequence[Block | BrokenBlock]) -> Text:
    """One row per block: label, scope, characters used of the limit, flags (read-only,
    over-limit), the description cut to one short line; a block that cannot be read says why."""
    rows = [_block_row(entry) for entry in entries]
    widths = [max(len(row[i]) for row in [BLOCK_COLUMNS, *rows]) for i in range(4)]
    table = Text()
    for index, row in enumerate([BLOCK_COLUMNS, *rows]):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        line = "  ".join([*cells, row[-1]]).rstrip()
        broken = index > 0 and isinstance(entries[index - 1], BrokenBlock)
        table.append(("\n" if index else "") + line, style="red" if broken else "")
    return table


def _block_row(entry: Block | BrokenBlock) -> tuple[str, ...]:
    if isinstance(entry, BrokenBlock):
        return (entry.label, entry.scope, "-", "BROKEN", entry.error)
    flags = ["read-only"] if entry.read_only else []
    if entry.chars > entry.limit:
        flags.append("over-limit")
    used = f"{entry.chars}/{entry.limit}"
    return (
        entry.label,
        entry.scope,
        used,
        ",".join(flags),
        one_line(entry.description, _DESCRIPTION_WIDTH),
    )


def one_line(text: str, width: int) -> str:
    """`text` on one line, white space collapsed, cut to `width` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
