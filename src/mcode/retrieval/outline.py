"""The repo map from the stored index: the manifest already holds every file's definitions and
references, so the map never re-parses a file."""

from __future__ import annotations

from collections.abc import Collection

from mcode.index.model import Definition
from mcode.retrieval.repomap import FileSymbols, RepoMap, build_repo_map
from mcode.store import Manifest


def load_file_symbols(manifest: Manifest) -> list[FileSymbols]:
    return [
        FileSymbols(
            path=path,
            definitions=[Definition(d.name, d.symbol, d.kind, d.line, d.signature) for d in defs],
            references=refs,
        )
        for path, defs, refs in manifest.symbols()
    ]


def repo_map_from_manifest(
    manifest: Manifest,
    max_tokens: int,
    *,
    focus_files: Collection[str] = (),
    query: str = "",
) -> RepoMap:
    return build_repo_map(
        load_file_symbols(manifest), max_tokens, focus_files=focus_files, query=query
    )
