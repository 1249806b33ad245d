#!/usr/bin/env python3
"""Repo-map quality on a repository's own history: does the map point at what each change touched?

The corpus is a clone of a repository (this one by default) at HEAD, indexed lexically (the map
needs no vectors). Each non-merge commit whose message is a usable query and whose changed source
files still exist (1 to `--max-files`, the same selection as `eval_search.py git`) is a task:

1. **query**: the map within `--tokens` personalised by the commit message (what the agent's prompt
   carries on a turn with that message): does it list a changed file, and show a definition of one?
2. **focus**: for a change of two files or more, the map focused on one of them (the first in path
   order, as if the agent had opened it): does it list another changed file?
3. **structure**: of the methods the query maps show (a symbol with a dot), the share shown with
   the class they belong to.

It measures whichever mcode is on the path, so a before/after comparison runs it twice:

    PYTHONPATH=OLD/src python tools/eval_map.py [--repo PATH] [--tokens 1024 4096] [--json]
    PYTHONPATH=src python tools/eval_map.py ...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from eval_search import history

from mcode.retrieval.repomap import RepoGraph, RepoMap

ROOT = Path(__file__).resolve().parents[1]


def index(repo: Path) -> RepoGraph:
    os.environ["XDG_CONFIG_HOME"] = str(repo.parent / "config")
    os.environ["XDG_CACHE_HOME"] = str(repo.parent / "cache")
    from mcode.config import Paths, load_settings
    from mcode.index.pipeline import open_index

    settings = load_settings(Paths.for_repo(repo), overrides={"embedding_model": "none"})
    indexer, lock = open_index(settings, None)
    try:
        indexer.update(embed=False)
    finally:
        lock.release()
    return RepoGraph.from_store(indexer.manifest)


def listed(repo_map: RepoMap) -> set[str]:
    return {entry.path for entry in repo_map.entries}


def defined(repo_map: RepoMap) -> set[str]:
    return {entry.path for entry in repo_map.entries if entry.definitions}


def with_class(repo_map: RepoMap) -> tuple[int, int]:
    """(methods shown, of which with their class) over the map's entries."""
    methods = inside = 0
    for entry in repo_map.entries:
        symbols = {d.symbol for d in entry.definitions}
        for symbol in symbols:
            if "." in symbol:
                methods += 1
                inside += symbol.rsplit(".", 1)[0] in symbols
    return methods, inside


def evaluate(graph: RepoGraph, changes: list[tuple[str, list[str]]], tokens: int) -> dict[str, Any]:
    hits = {"listed": 0, "defined": 0, "focus_listed": 0}
    focus_tasks = methods = inside = 0
    used, seconds = [], []
    for message, files in changes:
        started = time.perf_counter()
        repo_map = graph.map(tokens, query=message)
        seconds.append(time.perf_counter() - started)
        used.append(repo_map.tokens)
        hits["listed"] += bool(listed(repo_map) & set(files))
        hits["defined"] += bool(defined(repo_map) & set(files))
        shown, with_its_class = with_class(repo_map)
        methods, inside = methods + shown, inside + with_its_class
        if len(files) >= 2:
            first, *others = sorted(files)
            focus_tasks += 1
            hits["focus_listed"] += bool(listed(graph.map(tokens, focus_files=[first])) & {*others})
    n = len(changes)
    return {
        "tokens": tokens,
        "queries": n,
        "changed_file_listed": round(hits["listed"] / n, 3),
        "changed_file_with_definitions": round(hits["defined"] / n, 3),
        "focus_tasks": focus_tasks,
        "focus_lists_another_changed_file": round(hits["focus_listed"] / max(focus_tasks, 1), 3),
        "methods_shown": methods,
        "methods_with_their_class": round(inside / max(methods, 1), 3),
        "mean_tokens": round(statistics.mean(used), 1),
        "median_map_ms": round(statistics.median(seconds) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(ROOT), help="a git repository (default: this one)")
    parser.add_argument("--tokens", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--max-files", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mcode-eval-map-"))
    try:
        repo = work / "repo"
        subprocess.run(
            ["git", "clone", "-q", str(Path(args.repo).resolve()), str(repo)], check=True
        )
        changes = history(repo, args.max_files)
        graph = index(repo)
        rows = [evaluate(graph, changes, tokens) for tokens in args.tokens]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps({"repo": args.repo, "results": rows}, indent=2))
        return
    for row in rows:
        print(
            f"{row['tokens']:>5} tokens, {row['queries']} commits: a changed file listed "
            f"{row['changed_file_listed']:.0%}, with definitions "
            f"{row['changed_file_with_definitions']:.0%}; focus on one changed file lists another "
            f"{row['focus_lists_another_changed_file']:.0%} ({row['focus_tasks']} commits); "
            f"methods with their class {row['methods_with_their_class']:.0%} "
            f"of {row['methods_shown']}; {row['mean_tokens']:.0f} tokens, "
            f"{row['median_map_ms']:.0f} ms a map"
        )


if __name__ == "__main__":
    main()
