"""The repo map from the stored index: the manifest already holds every file's definitions and
references, so the map never re-parses a file."""

from __future__ import annotations

from collections.abc import Collection

from mcode.retrieval.repomap import RepoGraph, RepoMap, normalise_path
from mcode.store import Manifest


def repo_map_from_manifest(
    manifest: Manifest,
    max_tokens: int,
    *,
    focus_files: Collection[str] = (),
    query: str = "",
) -> RepoMap:
    return RepoGraph.from_store(manifest).map(max_tokens, focus_files=focus_files, query=query)


def unmapped_paths(manifest: Manifest, paths: Collection[str]) -> list[str]:
    """Those of `paths` (relative to the repository) that are no file the index holds, so a map
    can neither show nor focus on them."""
    known = manifest.states_for([normalise_path(p) for p in paths])
    return [
        p
        for p in paths
        if (state := known.get(normalise_path(p))) is None or state.skip_reason is not None
    ]
