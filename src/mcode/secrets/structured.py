"""Secrets in JSON-like data (dicts, lists, strings): transcripts' tool-call arguments, Agent Files.

`redact_data` redacts every string; `blank_secrets`, for files that leave the machine, also empties
what a name says is a secret (`"api_key": …`, `"Authorization": …`, the `value` of
`{"key": "GITHUB_TOKEN", "value": …}`) and a string that is nothing but a secret.
"""

from __future__ import annotations

from typing import Any

from mcode.secrets.content import find_secrets, redact
from mcode.secrets.names import is_secret_name


def redact_data(data: Any) -> Any:
    """A copy of `data` with the secret values in its strings redacted."""
    return _walk(data, blank=False)


def blank_secrets(data: Any) -> Any:
    """A copy of `data` with every secret blanked or redacted (see the module's docstring)."""
    return _walk(data, blank=True)


def _walk(data: Any, *, blank: bool) -> Any:
    if isinstance(data, dict):
        name = data.get("key", data.get("name"))
        pair = blank and isinstance(name, str) and is_secret_name(name)
        out = {}
        for key, value in data.items():
            secret = blank and (is_secret_name(str(key)) or (pair and key == "value"))
            out[key] = "" if secret and isinstance(value, str) else _walk(value, blank=blank)
        return out
    if isinstance(data, list):
        return [_walk(item, blank=blank) for item in data]
    if isinstance(data, str):
        if blank and _only_a_secret(data):
            return ""
        return redact(data)
    return data


def _only_a_secret(text: str) -> bool:
    found = find_secrets(text)
    return len(found) == 1 and text[found[0].start : found[0].end] == text.strip()
