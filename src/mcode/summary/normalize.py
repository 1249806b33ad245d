"""What a module's summary depends on: its text without comments and whitespace, plus its docs.

A summary is redone only when this changes, so reformatting a file or editing a comment costs
nothing, while a changed docstring or doc comment (which a summary quotes) does count. Comments are
found with the file's own grammar (one query per language, compiled once), never with patterns
that a `#` inside a string would fool.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cache

from tree_sitter import Query, QueryCursor
from tree_sitter_language_pack import get_language, get_parser

from mcode.index.languages import LANGUAGE_SPECS

# The node types grammars give comments; each language's query names those its grammar has.
_COMMENT_TYPES = ("comment", "line_comment", "block_comment", "multiline_comment")


@cache
def _comment_query(language: str) -> Query | None:
    if language not in LANGUAGE_SPECS:
        return None
    grammar = get_language(language)
    known = []
    for kind in _COMMENT_TYPES:
        try:
            Query(grammar, f"({kind})")
        except Exception:  # the grammar has no such node type
            continue
        known.append(f"({kind}) @comment")
    return Query(grammar, "\n".join(known)) if known else None


def without_comments(data: bytes, language: str) -> bytes:
    """The bytes of a file with every comment its grammar knows cut out."""
    query = _comment_query(language)
    if query is None:
        return data
    root = get_parser(language).parse(data).root_node
    nodes = QueryCursor(query).captures(root).get("comment", [])
    spans = sorted((node.start_byte, node.end_byte) for node in nodes)
    pieces, start = [], 0
    for first, end in spans:
        if first >= start:  # a comment inside another one is already cut
            pieces.append(data[start:first])
            start = end
    pieces.append(data[start:])
    return b" ".join(pieces)


def meaningful_hash(text: str, language: str, docs: Iterable[str] = ()) -> str:
    """sha256 of the file's code with comments removed and whitespace collapsed, and of `docs`
    (its docstrings and doc comments, as the chunker read them) likewise collapsed."""
    data = text.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(b" ".join(without_comments(data, language).split()))
    for doc in docs:
        if doc:
            digest.update(b"\0" + b" ".join(doc.encode("utf-8", "surrogatepass").split()))
    return digest.hexdigest()
