"""Turning parsed chunks into store rows, and the text each chunk is embedded from.

The embedding text is rebuilt from stored columns when vectors are filled in later, so both places call
`embedding_text` and agree on the hash that keys the shared vector cache.
"""

from __future__ import annotations

from typing import Any

from mcode.embed.base import text_hash  # the vector cache's content address: one definition
from mcode.index.model import Chunk
from mcode.index.terms import name_terms, path_terms

DOCSTRING_IN_HEAD = 600


def embedding_text(path: str, symbol: str, text: str) -> str:
    label = f"{path} {symbol}".strip()
    return f"{label}\n{text}"


def head_text(chunk: Chunk, path_words: list[str] | None = None) -> str:
    """Names that say what the chunk is: path words, symbol words, signature, docstring."""
    words = list(path_words if path_words is not None else path_terms(chunk.path))
    for part in chunk.symbol.split("."):
        words.extend(name_terms(part))
    # The symbol's own name twice: being *the* definition of a name beats mentioning it.
    if chunk.symbol:
        words.extend(name_terms(chunk.symbol.rsplit(".", 1)[-1]))
    return " ".join([*words, chunk.signature, chunk.docstring[:DOCSTRING_IN_HEAD]])


def chunk_rows(chunks: list[Chunk]) -> list[dict[str, Any]]:
    rows = []
    path_words = path_terms(chunks[0].path) if chunks else []  # one file: once, not per chunk
    for ordinal, chunk in enumerate(chunks):
        rows.append(
            {
                "id": f"{chunk.path}#{ordinal}",
                "path": chunk.path,
                "language": chunk.language,
                "kind": chunk.kind,
                "symbol": chunk.symbol,
                "signature": chunk.signature,
                "docstring": chunk.docstring,
                "start_line": chunk.start_line,
                "end_line": chunk.end_line,
                "text": chunk.text,
                "head": head_text(chunk, path_words),
                "hash": text_hash(embedding_text(chunk.path, chunk.symbol, chunk.text)),
            }
        )
    return rows
