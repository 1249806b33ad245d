"""Splitting code names into words, shared by the indexer (what a chunk is called) and retrieval (what a
query asks for), so both sides agree on what a "word" is.

`get_or_create` is kept whole and also gives get, or, create; `HttpResponse` gives httpresponse, http,
response; `pkg.mod.Class` gives each part.
"""

from __future__ import annotations

import re
from functools import lru_cache

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def split_identifier(name: str) -> list[str]:
    """The lower-case word parts of one identifier (no whole form)."""
    parts: list[str] = []
    for piece in name.split("_"):
        if piece:
            parts.extend(m.lower() for m in _CAMEL.findall(piece))
    return parts


def name_terms(name: str) -> list[str]:
    """The whole identifier (lower case) followed by its parts, de-duplicated, order kept."""
    return list(_name_terms(name))


@lru_cache(maxsize=65_536)
def _name_terms(name: str) -> tuple[str, ...]:
    # The same names recur across a repository (self, get, __init__): split each once.
    whole = name.lower().strip("_")
    return tuple(dict.fromkeys([whole, *split_identifier(name)])) if whole else ()


def path_terms(path: str) -> list[str]:
    """Words of a repo-relative path: directory names, file stem, extension-less."""
    terms: list[str] = []
    for part in re.split(r"[/\\.\-]+", path):
        if part:
            terms.extend(name_terms(part))
    return list(dict.fromkeys(terms))
