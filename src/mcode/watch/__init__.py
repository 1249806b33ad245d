"""Freshness: watch the repository and hand batches of changed paths to the indexer."""

from __future__ import annotations

from mcode.watch.watcher import ALWAYS_IGNORED, Debouncer, RepoWatcher

__all__ = ["ALWAYS_IGNORED", "Debouncer", "RepoWatcher"]
