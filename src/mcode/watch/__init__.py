"""Freshness: watch the repository and hand batches of changed paths to the indexer."""

from __future__ import annotations

from mcode.watch.follow import IndexFollower, Turns
from mcode.watch.watcher import Debouncer, RepoWatcher

__all__ = ["Debouncer", "IndexFollower", "RepoWatcher", "Turns"]
