"""Changing top-level keys of a TOML config file in place, for `mcode model` and `mcode import`.

Only the assignments being set change; comments, tables, order and formatting stay as the team wrote
them (tomllib reads but cannot write, and a round trip through a writer would lose all of that). The
result is parsed before it replaces the file, atomically: a file that would not read back as intended
is left alone.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcode.config.settings import ConfigError, read_toml_bytes
from mcode.fsio import atomic_write_text

_TABLE_HEADER = re.compile(r"^\s*\[")


def update_toml_file(path: Path, values: Mapping[str, Any], *, note: str = "") -> dict[str, Any]:
    """Set top-level keys of the TOML file `path` (created if absent; a None value removes the
    key), as `set_toml_keys` does; the keys whose value changed. ConfigError names the file when it
    cannot be read or would not read back as intended."""
    before, data = read_toml_bytes(path)
    changed = {k: v for k, v in values.items() if before.get(k) != v}
    if not changed:
        return {}
    try:
        text = set_toml_keys(data.decode("utf-8") if data else "", changed, note=note)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}; not changed") from exc
    atomic_write_text(path, text)
    return changed


def set_toml_keys(text: str, values: Mapping[str, Any], *, note: str = "") -> str:
    """`text` with top-level keys set (a None value removes the key). An assignment is replaced
    where it stands, however many lines it spans; a new key goes after the last top-level line,
    before the first table, under the comment `note` if one is given. Every other line is kept."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    added: list[str] = []
    for key, value in values.items():
        stop = _first_table(lines)
        assignment = re.compile(rf"\s*{re.escape(key)}\s*=")
        start = next((i for i in range(stop) if assignment.match(lines[i])), None)
        new = [] if value is None else [f"{key} = {toml_value(value)}\n"]
        if start is not None:
            lines[start : _assignment_end(lines, start, stop)] = new
        else:
            added += new
    if added:
        stop = end = _first_table(lines)
        while end and not lines[end - 1].strip():
            end -= 1
        header = [f"# {note}\n"] if note else []
        if header and end:
            header.insert(0, "\n")
        lines[end:stop] = [*header, *added, *(["\n"] if stop < len(lines) else [])]
    result = "".join(lines)
    try:
        parsed = tomllib.loads(result)
    except tomllib.TOMLDecodeError as exc:
        keys = ", ".join(values)
        raise ConfigError(f"cannot set {keys}: the result would not be valid TOML ({exc})") from exc
    for key, value in values.items():
        if parsed.get(key) != value:
            raise ConfigError(
                f"cannot set {key}: it is defined in a form this editor does not handle"
            )
    return result


def toml_value(value: Any) -> str:
    """A TOML literal for a string, number, boolean or list of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _first_table(lines: list[str]) -> int:
    return next((i for i, line in enumerate(lines) if _TABLE_HEADER.match(line)), len(lines))


def _assignment_end(lines: list[str], start: int, stop: int) -> int:
    """The line after the assignment at `start` (a multi-line array or string spans lines)."""
    for end in range(start + 1, stop + 1):
        try:
            tomllib.loads("".join(lines[start:end]))
        except tomllib.TOMLDecodeError:
            continue
        return end
    return start + 1
