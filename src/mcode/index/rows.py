"""Turning parsed chunks into store rows, and the text each chunk is embedded from.

A row's `hash` is the content address of its path, symbol and text (`chunk_hash`): the store keeps a
row's vector while it holds, and vectors attach by it. What the model reads is derived from the same
three columns when the vectors are computed (`embedding_text`), so it can change without touching a
stored row; the index's identity names the style, so a change of style re-embeds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from mcode.embed.base import text_hash  # the vector cache's content address: one definition
from mcode.index.model import Chunk
from mcode.index.terms import name_terms, path_terms
from mcode.store.schema import LEXICAL_COLUMNS, chunk_schema

if TYPE_CHECKING:
    import pyarrow as pa

DOCSTRING_IN_HEAD = 600
# Words past these are never read: the local model reads ~60 tokens, a remote one ~2,000.
EMBEDDING_WORDS = 1_200
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
# Parts of an identifier, digits kept on the word they end (`ext4`, `sha256`, `uint8`).
_PART = re.compile(r"[A-Z]+[0-9]*(?=[A-Z][a-z])|[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*")
# A comment block that is a licence header, not a description: it would fill the few tokens the
# local model reads of every file's first chunk with the same words.
_COMMENT_BLOCK = re.compile(
    r"/\*.*?(?:\*/|\Z)|(?:^[ \t]*(?:#|//|--|;)[^\n]*(?:\n|\Z))+", re.DOTALL | re.MULTILINE
)
_LICENCE = re.compile(r"copyright|spdx-license|\bwarranty\b", re.IGNORECASE)
# Keywords that say nothing about what code does; the model would spend its few tokens on them.
_NOISE = frozenset(
    [
        "def",
        "self",
        "cls",
        "return",
        "if",
        "else",
        "elif",
        "for",
        "while",
        "in",
        "not",
        "and",
        "or",
        "is",
        "none",
        "null",
        "nil",
        "true",
        "false",
        "const",
        "static",
        "void",
        "int",
        "char",
        "unsigned",
        "long",
        "short",
        "struct",
        "var",
        "let",
        "fn",
        "func",
        "pub",
        "the",
        "an",
        "of",
        "to",
        "import",
        "from",
        "include",
        "define",
    ]
)


def chunk_hash(path: str, symbol: str, text: str) -> str:
    """A row's `hash`: its path, symbol and text, which every embedding style is derived from."""
    return text_hash(f"{path} {symbol}\n{text}")


def raw_embedding_text(path: str, symbol: str, text: str) -> str:
    """The path, the symbol and the chunk as written (the style before "words")."""
    label = f"{path} {symbol}".strip()
    return f"{label}\n{text}"


def words_embedding_text(path: str, symbol: str, text: str) -> str:
    """Words that say what a chunk is, most telling first: where it lives, its name, then the text
    (declaration, docstring or the comment above it, the first lines) as plain words.

    A prose query meets code through its words: `grub_xfs_read_block(` is eight WordPiece tokens
    and "grub xfs read block" four, so the local model's few tokens reach far further into the
    docstring. Punctuation, keywords and licence headers are dropped.
    """
    stem = path.rsplit(".", 1)[0] if "/" not in path.rsplit(".", 1)[-1] else path
    label = _words(stem.replace("/", " "), 40) + _words(symbol.replace(".", " "), 40)
    body = _words(_COMMENT_BLOCK.sub(_drop_licence, text), EMBEDDING_WORDS)
    return " ".join(dict.fromkeys(label)) + ": " + " ".join(body)


def _drop_licence(match: re.Match[str]) -> str:
    block = match.group(0)
    return " " if _LICENCE.search(block) else block


def _words(text: str, limit: int) -> list[str]:
    """Up to `limit` lower-case words of `text`: identifiers split, one-letter words and noise out."""
    words: list[str] = []
    for match in _WORD.finditer(text):
        for part in _PART.findall(match.group(0)):
            word = part.lower()
            if len(word) > 1 and word not in _NOISE:
                words.append(word)
        if len(words) >= limit:
            break
    return words[:limit]


EMBEDDING_STYLES: dict[str, Callable[[str, str, str], str]] = {
    "words": words_embedding_text,
    "raw": raw_embedding_text,
}
DEFAULT_EMBEDDING_STYLE = "words"


def embedding_text(path: str, symbol: str, text: str, style: str = DEFAULT_EMBEDDING_STYLE) -> str:
    """What the embedding model reads of a chunk, in one of `EMBEDDING_STYLES`."""
    return EMBEDDING_STYLES[style](path, symbol, text)


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
            chunk_hash(chunk.path, chunk.symbol, chunk.text),
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
