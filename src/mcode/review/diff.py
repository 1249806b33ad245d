"""A unified diff as files and hunks, with each line's number in the new version of its file.

What the review reads of a change: the lines it adds (the offline rules search them, the model's
findings must point at them) and the hunks around them (what the model sees). git's own output is
parsed (`diff --git` headers, `+++ b/path`, C-quoted names, renames, binary files); nothing here
runs git (`source` does).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a hunk: `kind` is "+", "-" or " "; `number` its line in the new file (for a
    removed line, the new line it sits before)."""

    kind: str
    text: str
    number: int


@dataclass(slots=True)
class Hunk:
    old_start: int
    new_start: int
    new_count: int
    header: str  # what git printed after the second @@: the enclosing function, often
    lines: list[Line] = field(default_factory=list)

    @property
    def new_end(self) -> int:
        return self.new_start + max(self.new_count, 1) - 1

    def added(self) -> Iterator[Line]:
        return (line for line in self.lines if line.kind == "+")

    def text(self) -> str:
        """The hunk as the model reads it: each line with its new line number, so that a finding
        can name the line; removed lines carry no number."""
        out = [f"@@ lines {self.new_start}-{self.new_end} @@ {self.header}".rstrip()]
        for line in self.lines:
            number = "" if line.kind == "-" else str(line.number)
            out.append(f"{number:>5} {line.kind} {line.text}")
        return "\n".join(out)


@dataclass(slots=True)
class FileDiff:
    path: str  # in the new version ("" for a deleted file: then `old_path`)
    old_path: str
    status: str  # "added", "deleted", "renamed", "modified" or "binary"
    hunks: list[Hunk] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path or self.old_path

    def added(self) -> Iterator[Line]:
        for hunk in self.hunks:
            yield from hunk.added()

    def added_numbers(self) -> set[int]:
        return {line.number for line in self.added()}

    def line_text(self, number: int) -> str | None:
        """The added line with this number, or None."""
        return next((line.text for line in self.added() if line.number == number), None)

    def text(self) -> str:
        return "\n".join(hunk.text() for hunk in self.hunks)

    def parts(self, max_chars: int) -> list[FileDiff]:
        """The file's hunks in groups of at most `max_chars` of text each (a hunk larger than
        that is a group of its own), so that a huge change is several requests, not one that
        overflows the model's window."""
        groups: list[list[Hunk]] = [[]]
        size = 0
        for hunk in self.hunks:
            length = len(hunk.text())
            if groups[-1] and size + length > max_chars:
                groups.append([])
                size = 0
            groups[-1].append(hunk)
            size += length
        return [FileDiff(self.path, self.old_path, self.status, group) for group in groups]

    def digest(self) -> str:
        """What identifies this change to this file, whatever diff command showed it: the path
        and the hunks (not git's `index` line, which differs between a staged and a work-tree
        diff of the same change)."""
        return hashlib.sha256(f"{self.name}\0{self.status}\0{self.text()}".encode()).hexdigest()


def parse_diff(text: str) -> list[FileDiff]:
    """The files of `git diff` output, in its order."""
    files: list[FileDiff] = []
    current: FileDiff | None = None
    hunk: Hunk | None = None
    old_line = new_line = 0
    for raw in text.split("\n"):
        if raw.startswith("diff --git "):
            # The names come from the `---`/`+++` or `rename` lines that follow; a file without
            # them (a mode change, a binary file) has no lines to review anyway.
            current = FileDiff("", "", "modified")
            files.append(current)
            hunk = None
            continue
        if current is None:
            continue
        if hunk is None or not raw or raw[0] not in "+- \\":
            match = _HUNK.match(raw)
            if match:
                old_line, new_line = int(match[1]), int(match[3])
                count = int(match[4]) if match[4] is not None else 1
                hunk = Hunk(old_line, new_line, count, match[5].strip())
                current.hunks.append(hunk)
            else:
                hunk = None
                _read_header_line(current, raw)
            continue
        kind, body = raw[0], raw[1:]
        if kind == "\\":  # "\ No newline at end of file"
            continue
        hunk.lines.append(Line(kind, body, new_line))
        if kind != "-":
            new_line += 1
    return [f for f in files if f.name]


def _read_header_line(current: FileDiff, raw: str) -> None:
    if raw.startswith("+++ "):
        name = _unquote(raw[4:].split("\t")[0])
        current.path = "" if name == "/dev/null" else name.removeprefix("b/")
    elif raw.startswith("--- "):
        name = _unquote(raw[4:].split("\t")[0])
        current.old_path = "" if name == "/dev/null" else name.removeprefix("a/")
    elif raw.startswith("new file mode"):
        current.status = "added"
    elif raw.startswith("deleted file mode"):
        current.status = "deleted"
        current.path = ""
    elif raw.startswith("rename from "):
        current.status = "renamed"
        current.old_path = _unquote(raw[len("rename from ") :])
    elif raw.startswith("rename to "):
        current.path = _unquote(raw[len("rename to ") :])
    elif raw.startswith("Binary files "):
        current.status = "binary"


def _unquote(name: str) -> str:
    """git's C-style quoting of unusual names (`"a/caf\\303\\251.py"`) undone."""
    if not (len(name) >= 2 and name[0] == name[-1] == '"'):
        return name
    body, out, index = name[1:-1], bytearray(), 0
    while index < len(body):
        char = body[index]
        if char != "\\" or index + 1 >= len(body):
            out += char.encode()
            index += 1
        elif body[index + 1] in _ESCAPES:
            out.append(_ESCAPES[body[index + 1]])
            index += 2
        else:
            out.append(int(body[index + 1 : index + 4], 8) & 0xFF)
            index += 4
    return out.decode("utf-8", "surrogateescape")


def added_file(path: str, text: str) -> FileDiff:
    """A new file's diff, made from its text: for files git does not track yet."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    hunk = Hunk(0, 1, len(lines), "")
    hunk.lines = [Line("+", body, number) for number, body in enumerate(lines, 1)]
    return FileDiff(path, "", "added", [hunk] if lines else [])
