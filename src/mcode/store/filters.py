"""Filter text for LanceDB queries and deletes (its SQL dialect), for the code table and the recall
tables alike: one place quotes a string literal, so a path or id holding `'` never breaks out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from mcode.fsio import clock

# Deletes go by filters of at most this many values, so that no filter text grows without bound.
VALUES_PER_FILTER = 500


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def in_filter(column: str, values: Iterable[str]) -> str:
    return column + " IN (" + ",".join(quote(v) for v in values) + ")"


def in_filters(column: str, values: Sequence[str]) -> Iterator[str]:
    """`in_filter` over `values`, VALUES_PER_FILTER at a time."""
    for start in range(0, len(values), VALUES_PER_FILTER):
        yield in_filter(column, values[start : start + VALUES_PER_FILTER])


def _timestamp(moment: datetime) -> str:
    return f"timestamp '{clock.as_utc(moment):%Y-%m-%dT%H:%M:%S.%f}Z'"


def time_filter(start: datetime | None, end: datetime | None) -> str | None:
    """Inclusive bounds on `time`."""
    parts = []
    if start is not None:
        parts.append(f"time >= {_timestamp(start)}")
    if end is not None:
        parts.append(f"time <= {_timestamp(end)}")
    return " AND ".join(parts) or None


def tags_filter(tags: Sequence[str]) -> str:
    """Rows carrying at least one of `tags`."""
    return f"array_has_any(tags, [{','.join(quote(t) for t in tags)}])"


def all_of(*filters: str | None) -> str | None:
    present = [f"({f})" for f in filters if f]
    return " AND ".join(present) or None
