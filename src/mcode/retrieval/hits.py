"""What a code search returns, as everyone downstream sees it.

The searcher's `SearchResult` carries scores and more; the prompt, the tools, archival memory and the
terminal need only where a hit is and what it says, so they depend on this protocol, not the searcher.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class SearchHit(Protocol):
    """One chunk of code found for a query (`mcode.retrieval.search.SearchResult` is one)."""

    @property
    def path(self) -> str: ...
    @property
    def start_line(self) -> int: ...
    @property
    def end_line(self) -> int: ...
    @property
    def symbol(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def snippet(self) -> str: ...
    @property
    def summary(self) -> str:
        """What its file's module summary says the file is for (one line), or "" without one."""
        ...


class SearchUnavailable(Exception):
    """The code index cannot answer yet; the message says why ("the repository is being indexed
    (1,240/6,300 files)") in words the model and the user can read."""


class CodeSearcher(Protocol):
    def search(self, query: str, k: int, level: str) -> Sequence[SearchHit]:
        """The best `k` chunks (level "symbol") or files (level "file") for `query`;
        SearchUnavailable when there is no index to ask yet."""
        ...
