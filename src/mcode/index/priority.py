"""Which files get their vectors first, so that a vector index still being filled already helps.

Vectors of a large repository take minutes; meanwhile a search uses the ones that exist. The files a
query most likely wants are the ones the rest of the code leans on (their definitions are referenced
from many other files) and the ones being worked on (changed recently, while most of the tree was
not). Everything else follows in path order, so a run that stops and resumes keeps its course.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection

from mcode.store import Manifest

# A name defined in more files than this (`__init__`, `main`, `init`) says nothing about which of
# them a reference means.
AMBIGUOUS_DEFINITIONS = 3
RECENT_NS = 24 * 3600 * 10**9
# Recency tells the files being worked on apart only when few are recent: in a fresh clone every
# file was written a moment ago.
RECENT_SHARE = 0.25


def embedding_order(manifest: Manifest, pending: Collection[str]) -> list[str]:
    """`pending` paths, the recently changed and the most used ones first."""
    if len(pending) <= 1:
        return list(pending)
    columns = manifest.symbol_columns()
    uses = {
        path: set(json.loads(refs))
        for path, refs in zip(columns.paths, columns.references, strict=True)
    }
    used_by: Counter[str] = Counter(name for names in uses.values() for name in names)
    defined_in: Counter[str] = Counter()
    names_of: dict[str, set[str]] = {}
    start = 0
    for path, count in zip(columns.defining, columns.counts, strict=True):
        names_of[path] = set(columns.names[start : start + count])
        start += count
        defined_in.update(names_of[path])

    def used_elsewhere(path: str) -> int:
        """How often other files use the names `path` defines (its own references count them)."""
        own = uses.get(path, set())
        return sum(
            used_by[name] - (name in own)
            for name in names_of.get(path, ())
            if defined_in[name] <= AMBIGUOUS_DEFINITIONS
        )

    score = {path: used_elsewhere(path) for path in pending}
    recent = _recent(manifest, pending)
    return sorted(pending, key=lambda path: (path not in recent, -score[path], path))


def _recent(manifest: Manifest, pending: Collection[str]) -> set[str]:
    states = manifest.states()
    times = {path: states[path].mtime_ns for path in pending if path in states}
    if not times:
        return set()
    newest = max(times.values())
    recent = {path for path, mtime in times.items() if mtime >= newest - RECENT_NS}
    return recent if len(recent) <= RECENT_SHARE * len(times) else set()
