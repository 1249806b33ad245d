"""Time stamps as mcode writes them into its files: UTC, ISO 8601, a `Z` suffix.

Sessions, block history, the trust store, Agent Files and the recall journals all stamp records with
the same text, so that stamps sort as text, compare across files and parse back with
`datetime.fromisoformat`.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """This moment, in UTC."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A naive time is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime | None = None, *, timespec: str = "milliseconds") -> str:
    """`moment` (default: now) as `2025-05-01T14:30:12.345Z`; `timespec` as `datetime.isoformat`
    takes it ("seconds" for a stamp a person reads)."""
    utc = as_utc(now() if moment is None else moment)
    return utc.isoformat(timespec=timespec).replace("+00:00", "Z")


def parse(text: str) -> datetime:
    """A stamp read back (any ISO 8601 text `fromisoformat` takes), in UTC."""
    return as_utc(datetime.fromisoformat(text))
