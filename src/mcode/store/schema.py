"""The chunk table's columns, in a module that imports neither lancedb nor (until asked for the Arrow
schema) pyarrow: the index workers, the resident search copy and the store all name columns from here,
and only the store pays for lancedb.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

# Bumped whenever the stored rows change shape or meaning; an index of another version is rebuilt.
# 5: secret values are redacted before rows are made (an older index may hold them).
SCHEMA_VERSION = 5
# A row's lexical columns in table order, as the indexer produces them; the table adds `vector`.
LEXICAL_COLUMNS = (
    "id",
    "path",
    "language",
    "kind",
    "symbol",
    "signature",
    "docstring",
    "start_line",
    "end_line",
    "text",
    "head",
    "hash",
)
# What ranking needs: everything but the texts (the bulk of a row, fetched only for the rows finally
# shown) and the hash.
META_COLUMNS = [c for c in LEXICAL_COLUMNS if c not in ("docstring", "text", "head", "hash")]
_INT_COLUMNS = frozenset({"start_line", "end_line"})
_NOT_NULL = frozenset({"id", "path"})
# Strings are stored uncompressed. Lance's default compression cost ~0.6 s of CPU per 66k rows on
# a cold build, where both cores are busy parsing, to save ~30 MB of disk beside ~100 MB of vectors;
# uncompressed columns also read back ~2x faster. Low-cardinality columns keep Lance's own choice.
_PLAIN = {"lance-encoding:compression": "none"}
_ENCODED_BY_LANCE = frozenset({"language", "kind"})


def chunk_schema(dim: int) -> pa.Schema:
    """The table's Arrow schema; `dim` 0 gives the lexical columns alone (no vector)."""
    import pyarrow as pa

    fields = []
    for name in LEXICAL_COLUMNS:
        if name in _INT_COLUMNS:
            fields.append(pa.field(name, pa.int32()))
            continue
        metadata = None if name in _ENCODED_BY_LANCE else _PLAIN
        fields.append(
            pa.field(name, pa.string(), nullable=name not in _NOT_NULL, metadata=metadata)
        )
    if dim > 0:
        fields.append(pa.field("vector", pa.list_(pa.float32(), dim), nullable=True))
    return pa.schema(fields, metadata={"mcode_schema": str(SCHEMA_VERSION)})


def first_lines(text: str, lines: int) -> str:
    return "\n".join(text.split("\n", lines)[:lines])
