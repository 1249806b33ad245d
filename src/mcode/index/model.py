"""The records the indexer produces and the store keeps.

They are plain frozen dataclasses so that worker processes can pickle them cheaply and every later stage
(store, retrieval, repo map) reads the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Chunk:
    """One searchable unit of a file: a symbol, the module header, or a window of lines."""

    path: str  # repo-relative, POSIX separators
    language: str  # tree-sitter-language-pack name ("python", "tsx", ...) or "text"
    kind: str  # "module", "class", "function", "method", ... , "block" or "window"
    symbol: str  # qualified name ("pkg.mod.Class.method" style within the file: "Class.method"); "" if none
    signature: str  # the declaration line(s), e.g. "def get(self, key: str) -> int:"
    docstring: str
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    text: str


@dataclass(frozen=True, slots=True)
class Definition:
    """A symbol a file defines; the repo map ranks files and symbols from these."""

    name: str  # short name, as other code refers to it ("method")
    symbol: str  # qualified name within the file ("Class.method")
    kind: str
    line: int  # 1-based line of the definition
    signature: str


@dataclass(slots=True)
class ParsedFile:
    """Everything the indexer learns from one file's text."""

    path: str
    language: str
    chunks: list[Chunk] = field(default_factory=list)
    definitions: list[Definition] = field(default_factory=list)
    references: list[str] = field(default_factory=list)  # distinct identifiers the file uses
    syntax_errors: bool = False
