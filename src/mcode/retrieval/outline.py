"""The repo map from the stored index: the manifest already holds every file's definitions and
references, so the map never re-parses a file."""

from __future__ import annotations

from collections.abc import Collection

from mcode.retrieval.repomap import RepoGraph, RepoMap
from mcode.store import Manifest


def repo_map_from_manifest(
    manifest: Manifest,
    max_tokens: int,
    *,
    focus_files: Collection[str] = (),
    query: str = "",
) -> RepoMap:
    return RepoGraph.from_store(manifest).map(max_tokens, focus_files=focus_files, query=query)
