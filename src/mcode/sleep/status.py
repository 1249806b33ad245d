"""`mcode sleep --status`: today's spend against the caps, the queue, how stale it is, and the
memory lines that name files or symbols the index no longer has.

Read-only and cheap: no file is read (the queue is the files whose raw hash moved since their
summary, some of which a pass will find changed only in comments), no lock is taken.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mcode.config import Settings
from mcode.fsio import clock, read_json_lines
from mcode.memory import BlockStore
from mcode.retrieval.workspace import open_manifest
from mcode.sleep.costs import PASS, PROPOSAL, spent_on, today
from mcode.sleep.stale import stale_lines
from mcode.store.summaries import SummaryStore
from mcode.summary import Refresher

LISTED = 20  # queued paths shown


def sleep_status(settings: Settings) -> dict[str, Any]:
    """IndexMissingError when there is no index yet."""
    entries = read_json_lines(settings.paths.sleep_log)
    spent = spent_on(entries, today())
    manifest = open_manifest(settings)
    try:
        store = SummaryStore(settings.paths.summaries)
        refresher = Refresher(settings.paths.repo, manifest, store, settings.max_file_bytes)
        queue = refresher.dirty()
        upgrades = len(refresher.structural_only()) if settings.sleep_model else 0
        mtimes = manifest.states_for(queue)
        summaries = store.count()
        stale = stale_lines(BlockStore.for_paths(settings.paths), manifest)
    finally:
        manifest.close()
    oldest = min(
        queue, key=lambda p: (mtimes[p].mtime_ns, p) if p in mtimes else (0, p), default=None
    )
    passes = [e for e in entries if e.get("event") == PASS]
    return {
        "today": today(),
        "spent_today": spent,
        "budget_per_day": settings.sleep_budget_tokens_per_day,
        "budget_per_pass": settings.sleep_pass_tokens,
        "model": settings.sleep_model,
        "summaries": summaries,
        "queue": len(queue),
        "queued": queue[:LISTED],
        "model_queue": upgrades,
        "oldest_dirty": None
        if oldest is None
        else {
            "path": oldest,
            "changed": _stamp(mtimes[oldest].mtime_ns) if oldest in mtimes else None,
        },
        "last_pass": passes[-1] if passes else None,
        "stale_memory": [line.as_json() for line in stale],
        "proposals": [e for e in entries if e.get("event") == PROPOSAL][-LISTED:],
    }


def _stamp(mtime_ns: int) -> str:
    return clock.iso(datetime.fromtimestamp(mtime_ns / 1e9, UTC), timespec="seconds")
