"""Turning parsed chunks into store rows, and the text each chunk is embedded from.

The embedding text is rebuilt from stored columns when vectors are filled in later, so both places call
`embedding_text` and agree on the hash that keys the shared vector cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mcode.embed.base import text_hash  # the vector cache's content address: one definition
from mcode.index.model import Chunk
from mcode.index.terms import name_terms, path_terms
from mcode.store.schema import LEXICAL_COLUMNS, chunk_schema

if TYPE_CHECKING:
    import pyarrow as pa

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


def row_values(chunks: list[Chunk]) -> Iterator[tuple[Any, ...]]:
    """One file's rows as tuples in LEXICAL_COLUMNS order."""
    path_words = path_terms(chunks[0].path) if chunks else []  # one file: once, not per chunk
    for ordinal, chunk in enumerate(chunks):
        yield (
            f"{chunk.path}#{ordinal}",
            chunk.path,
            chunk.language,
            chunk.kind,
            chunk.symbol,
            chunk.signature,
            chunk.docstring,
            chunk.start_line,
            chunk.end_line,
            chunk.text,
            head_text(chunk, path_words),
            text_hash(embedding_text(chunk.path, chunk.symbol, chunk.text)),
        )


def chunk_rows(chunks: list[Chunk]) -> list[dict[str, Any]]:
    return [dict(zip(LEXICAL_COLUMNS, values, strict=True)) for values in row_values(chunks)]


def rows_batch(rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
    """Rows (tuples from `row_values`) as one Arrow batch of the lexical columns.

    A worker process hands a cold build its rows this way: a batch pickles as a few buffers,
    where a list of dicts pickles string by string and must then be converted again for the store.
    """
    import pyarrow as pa

    schema = chunk_schema(0)
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(LEXICAL_COLUMNS)
    arrays = [pa.array(values, field.type) for field, values in zip(schema, columns, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
