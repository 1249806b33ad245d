"""The repo map ranks what the code leans on, follows the focus, and keeps to its budget."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mcode.index.model import Definition
from mcode.retrieval.repomap import (
    FileSymbols,
    RepoGraph,
    RepoMap,
    build_repo_map,
    estimate_tokens,
)
from mcode.store import FileRecord, Manifest

GOLDEN = Path(__file__).parent / "golden" / "repomap_basic.txt"


def _def(name: str, line: int, signature: str, symbol: str = "", kind: str = "function"):
    return Definition(name=name, symbol=symbol or name, kind=kind, line=line, signature=signature)


def small_repo() -> list[FileSymbols]:
    """A core module that the app, the server, the tests and the database layer all use."""
    return [
        FileSymbols("README.md", [], []),
        FileSymbols(
            "src/app/cli.py",
            [_def("main", 5, "def main(argv: list[str] | None = None) -> int:")],
            ["Engine", "make_engine", "Job", "format_rows", "print", "argv"],
        ),
        FileSymbols(
            "src/app/server.py",
            [
                _def("serve", 7, "def serve(port: int) -> None:"),
                _def("Handler", 20, "class Handler:", kind="class"),
                _def("handle", 22, "def handle(self, request):", "Handler.handle", "method"),
            ],
            ["Engine", "Job", "Result", "run", "Database", "connect"],
        ),
        FileSymbols(
            "src/pkg/core.py",
            [
                _def("Engine", 12, "class Engine:", kind="class"),
                _def("run", 30, "def run(self, job: Job) -> Result:", "Engine.run", "method"),
                _def("_reset", 45, "def _reset(self):", "Engine._reset", "method"),
                _def("make_engine", 60, "def make_engine(\n    config: dict,\n) -> Engine:"),
                _def("Job", 80, "class Job:", kind="class"),
                _def("Result", 95, "class Result:", kind="class"),
            ],
            ["_reset", "Job", "Result", "len"],
        ),
        FileSymbols(
            "src/pkg/db.py",
            [
                _def("Database", 5, "class Database:", kind="class"),
                _def("connect", 9, "def connect(self, url: str) -> None:", "Database.connect"),
            ],
            ["Result"],
        ),
        FileSymbols(
            "src/pkg/util.py",
            [
                _def("format_rows", 4, "def format_rows(rows):"),
                _def("_cache_key", 10, "def _cache_key(*parts):"),
            ],
            ["_cache_key"],
        ),
        FileSymbols(
            "tests/test_core.py",
            [_def("test_engine_runs", 3, "def test_engine_runs():")],
            ["Engine", "Job", "make_engine", "run", "format_rows"],
        ),
    ]


def paths(repo_map: RepoMap) -> list[str]:
    return [entry.path for entry in repo_map.entries]


def shown(repo_map: RepoMap) -> set[tuple[str, str]]:
    return {(e.path, d.symbol) for e in repo_map.entries for d in e.definitions}


def test_small_repo_matches_golden_outline():
    repo_map = build_repo_map(small_repo(), 1024)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(repo_map.text, encoding="utf-8")
    assert repo_map.text == GOLDEN.read_text(encoding="utf-8")
    assert paths(repo_map)[0] == "src/pkg/core.py"
    assert repo_map.tokens == estimate_tokens(repo_map.text)


def test_everything_fits_in_a_big_budget_and_definitions_come_in_line_order():
    repo_map = build_repo_map(small_repo(), 10_000)
    total = sum(len(f.definitions) for f in small_repo())
    assert sum(len(e.definitions) for e in repo_map.entries) == total
    assert "README.md\n" in repo_map.text  # no definitions: listed by its path alone
    for entry in repo_map.entries:
        lines = [d.line for d in entry.definitions]
        assert lines == sorted(lines)
    scores = [e.score for e in repo_map.entries]
    assert scores == sorted(scores, reverse=True)


def test_nested_definitions_are_indented_and_long_signatures_joined():
    text = build_repo_map(small_repo(), 10_000).text
    assert "  30│     def run(self, job: Job) -> Result:\n" in text
    assert "  60│ def make_engine(config: dict) -> Engine:\n" in text


def test_focus_file_pulls_up_what_it_uses_and_its_own_definitions_wait():
    plain = build_repo_map(small_repo(), 10_000)
    focused = build_repo_map(small_repo(), 10_000, focus_files=["src/app/server.py"])
    # db.py is used by the server alone, util.py by two files: in play, the server lifts db.py,
    # and cli.py, in the server's own package, above util.py.
    assert paths(plain)[:3] == ["src/pkg/core.py", "src/pkg/util.py", "src/pkg/db.py"]
    assert paths(focused)[:4] == [
        "src/pkg/core.py",
        "src/pkg/db.py",
        "src/app/cli.py",
        "src/pkg/util.py",
    ]
    # With room for everything, the focus file comes last with its definitions.
    assert paths(focused)[-1] == "src/app/server.py"
    assert len(focused.entries[-1].definitions) == 3
    # With a tight budget, what the server uses is shown, and the server by its path alone.
    tight_plain = build_repo_map(small_repo(), 40)
    tight = build_repo_map(small_repo(), 40, focus_files=["./src/app/server.py"])
    assert "src/pkg/db.py" not in paths(tight_plain)
    assert "src/pkg/db.py" in paths(tight)
    assert paths(tight)[-1] == "src/app/server.py"
    assert tight.entries[-1].definitions == ()
    assert tight.tokens <= 40


def test_a_focus_file_and_the_files_that_use_it_stay_in_the_smallest_map():
    """Rank flows from a user to what it uses; the focus file's users are pulled in all the
    same, as its neighbours."""
    focused = build_repo_map(small_repo(), 25, focus_files=["src/pkg/db.py"])
    assert "src/pkg/db.py" in paths(focused)
    assert "src/app/server.py" in paths(focused)  # the one file that uses the database
    assert "src/app/server.py" not in paths(build_repo_map(small_repo(), 25))
    assert focused.tokens <= 25


def classes_repo() -> list[FileSymbols]:
    """Many classes with a `value` method every other file uses, as in email's header parser;
    the classes themselves are never named elsewhere."""
    parser = [_def("Outer", 1, "class Outer:", kind="class")]
    parser += [_def("Inner", 2, "class Inner:", "Outer.Inner", "class")]
    parser += [_def("value", 3, "def value(self):", "Outer.Inner.value", "method")]
    for i in range(10):
        line = 10 + 10 * i
        parser.append(_def(f"Token{i}", line, f"class Token{i}(list):", kind="class"))
        parser.append(_def("value", line + 2, "def value(self):", f"Token{i}.value", "method"))
    users = [FileSymbols(f"use{i}.py", [], ["value"]) for i in range(5)]
    return [FileSymbols("parser.py", parser, []), *users]


def test_methods_are_shown_inside_their_classes_outline():
    text = build_repo_map(classes_repo(), 10_000).text
    assert text.startswith(
        "parser.py:\n"
        "   1│ class Outer:\n"
        "   2│     class Inner:\n"
        "   3│         def value(self):\n"
        "  10│ class Token0(list):\n"
        "  12│     def value(self):\n"
    )
    for budget in (8, 20, 40, 70, 100):
        repo_map = build_repo_map(classes_repo(), budget)
        assert repo_map.tokens <= budget
        lines = repo_map.text.splitlines()
        for k, line in enumerate(lines):
            if "def value" in line:  # the line before is its class (or the class inside it)
                assert "class " in lines[k - 1]


def test_query_naming_a_definition_or_a_path_puts_that_file_first():
    by_symbol = build_repo_map(small_repo(), 1024, query="Why does Database.connect time out?")
    assert paths(by_symbol)[0] == "src/pkg/db.py"
    by_name = build_repo_map(small_repo(), 1024, query="see util for the cache key")
    assert paths(by_name)[0] == "src/pkg/util.py"
    by_path = build_repo_map(small_repo(), 1024, query="the bug is in pkg/db.py, line 9")
    assert paths(by_path)[0] == "src/pkg/db.py"
    assert paths(build_repo_map(small_repo(), 1024))[0] == "src/pkg/core.py"


@pytest.mark.parametrize("focus", [(), ("src/pkg/core.py",)])
def test_budget_is_respected_and_more_budget_shows_more(focus):
    previous: set[tuple[str, str]] = set()
    previous_tokens = 0
    for budget in [0, 1, 5, 10, 20, 30, 45, 60, 80, 120, 200, 400, 2000]:
        repo_map = build_repo_map(small_repo(), budget, focus_files=focus)
        assert repo_map.tokens <= budget
        assert repo_map.tokens == estimate_tokens(repo_map.text)
        assert previous <= shown(repo_map)
        assert repo_map.tokens >= previous_tokens
        previous, previous_tokens = shown(repo_map), repo_map.tokens
    assert len(previous) == sum(len(f.definitions) for f in small_repo())


def test_tiny_budget_gives_what_fits_possibly_nothing():
    assert build_repo_map(small_repo(), 3).text == ""
    assert build_repo_map(small_repo(), 3).entries == ()
    one = build_repo_map(small_repo(), 10)
    assert len(one.entries) == 1
    assert len(one.entries[0].definitions) == 1
    assert one.text.count("\n") == 2


def test_empty_input_gives_an_empty_map():
    assert build_repo_map([]) == RepoMap(entries=(), text="", tokens=0)
    assert build_repo_map(small_repo(), 0) == RepoMap(entries=(), text="", tokens=0)
    bare = build_repo_map([FileSymbols("notes.txt", [], [])])
    assert bare.text == "notes.txt\n"


def test_a_kept_graph_maps_like_a_fresh_build():
    graph = RepoGraph(small_repo())
    for kwargs in [{}, {"query": "database"}, {"focus_files": ["src/app/cli.py"]}]:
        assert graph.map(300, **kwargs) == build_repo_map(small_repo(), 300, **kwargs)


def test_file_scores_match_a_dense_pagerank_over_aiders_multigraph():
    rng = np.random.default_rng(3)
    names = [f"n{k}" for k in range(25)]
    files = []
    for f in range(12):
        defined = rng.choice(25, size=int(rng.integers(0, 6)), replace=False)
        used = rng.choice(25, size=int(rng.integers(0, 8)), replace=False)
        definitions = [_def(names[k], i + 1, f"def {names[k]}():") for i, k in enumerate(defined)]
        files.append(FileSymbols(f"f{f:02}.py", definitions, [names[k] for k in used]))
    scores = {e.path: e.score for e in build_repo_map(files, 100_000).entries}
    expected = _dense_pagerank(files)
    assert scores.keys() == expected.keys()
    for path, score in expected.items():
        assert scores[path] == pytest.approx(score, abs=1e-4)


def _dense_pagerank(files: list[FileSymbols]) -> dict[str, float]:
    """Aider's graph, less self-loops, written out edge by edge and ranked by power iteration."""
    n = len(files)
    definers: dict[str, set[int]] = {}
    for i, file in enumerate(files):
        for d in file.definitions:
            definers.setdefault(d.name, set()).add(i)
    weights = np.zeros((n, n))
    for name, where in definers.items():
        mul = 0.1 if len(where) > 5 else 1.0
        for i, file in enumerate(files):
            if name in file.references:
                for j in where - {i}:
                    weights[i, j] += mul
    out = weights.sum(axis=1)
    x = np.full(n, 1.0 / n)
    for _ in range(1000):
        flow = np.divide(weights, out[:, None], out=np.zeros_like(weights), where=out[:, None] > 0)
        x = 0.85 * (x @ flow + x[out == 0].sum() / n) + 0.15 / n
    return {file.path: float(x[i]) for i, file in enumerate(files)}


def stored(tmp_path: Path, files: list[FileSymbols], *, skipped: str = "") -> Manifest:
    """A manifest holding `files`, written in shuffled order as incremental indexing leaves it."""
    manifest = Manifest(tmp_path / "manifest.db")
    order = np.random.default_rng(5).permutation(len(files))
    records = [_record(files[i]) for i in order.tolist()]
    if skipped:  # a file the index now skips, whose definitions the manifest still holds
        stale = FileSymbols(skipped, [_def("stale", 1, "def stale():")], ["run"])
        records.append(_record(stale, skip_reason="too_large"))
    for record in records:
        manifest.upsert([record])
    return manifest


def _record(file: FileSymbols, skip_reason: str | None = None) -> FileRecord:
    defs = [(d.name, d.symbol, d.kind, d.line, d.signature) for d in file.definitions]
    return FileRecord(
        file.path, 1, 1, "h", "python", skip_reason, 1, refs=file.references, defs=defs
    )


@pytest.mark.parametrize(
    ("tokens", "kwargs"),
    [
        (1024, {}),
        (40, {"focus_files": ["src/app/server.py"]}),
        (300, {"query": "Why does Database.connect time out?"}),
        (10_000, {"query": "pkg/util.py", "focus_files": ["tests/test_core.py"]}),
    ],
)
def test_the_map_from_the_manifest_is_the_map_of_the_same_files(tmp_path, tokens, kwargs):
    manifest = stored(tmp_path, small_repo(), skipped="src/pkg/big.py")
    graph = RepoGraph.from_store(manifest)
    assert graph.map(tokens, **kwargs) == build_repo_map(small_repo(), tokens, **kwargs)
    if not kwargs and tokens == 1024:
        assert graph.map(tokens).text == GOLDEN.read_text(encoding="utf-8")


def odd_names_repo() -> list[FileSymbols]:
    """Names around the lengths the store's reader treats apart (8 and 16 bytes), names that
    JSON escapes (quotes, backslashes, non-ASCII), and a NUL, among many plain ones."""
    rng = np.random.default_rng(11)
    odd = ["", "x", "abcdefgh", "abcdefghi", "abcdefghijklmnop", "abcdefghijklmnopq"]
    odd += ["a" * 40, 'say"hi', "back\\slash", "naïve", "名前", "nul\0name", "abcdefgh\u00e9"]
    names = odd + [f"name_{k}_{'x' * (k % 23)}" for k in range(1500)]
    files = []
    for f in range(60):
        own = rng.choice(len(names), size=int(rng.integers(0, 30)), replace=False)
        used = rng.choice(len(names), size=int(rng.integers(0, 120)), replace=False)
        definitions = [
            _def(names[k], 3 * i + 1, f"def f{k}(): # {names[k]}") for i, k in enumerate(own)
        ]
        files.append(FileSymbols(f"pkg/m{f:02}.py", definitions, [names[k] for k in used]))
    return files


def test_odd_names_map_from_the_manifest_as_from_memory(tmp_path):
    files = odd_names_repo()
    from_store = RepoGraph.from_store(stored(tmp_path, files))
    from_memory = RepoGraph(files)
    for kwargs in [{}, {"query": "naïve abcdefgh"}, {"focus_files": ["pkg/m07.py"]}]:
        assert from_store.map(100_000, **kwargs) == from_memory.map(100_000, **kwargs)
        assert from_store.map(300, **kwargs) == from_memory.map(300, **kwargs)


def test_a_kept_graph_leaves_out_what_left_the_index_and_keeps_to_the_budget(tmp_path):
    manifest = stored(tmp_path, small_repo())
    graph = RepoGraph.from_store(manifest)
    manifest.upsert([_record(FileSymbols("src/pkg/core.py", [_def("Engine", 3, "class E:")], []))])
    for budget in [40, 120, 10_000]:
        repo_map = graph.map(budget)
        assert repo_map.tokens <= budget
        assert repo_map.tokens == estimate_tokens(repo_map.text)
    text = graph.map(10_000).text
    assert "class Engine:" not in text  # no longer at line 12: not shown where it is not
    assert "def make_engine(" not in text  # gone
    assert "   4│ def format_rows(rows):" in text  # the files that did not change are all there


def test_an_empty_manifest_gives_an_empty_map(tmp_path):
    manifest = Manifest(tmp_path / "manifest.db")
    assert RepoGraph.from_store(manifest).map(100) == RepoMap((), "", 0)
    manifest.upsert([_record(FileSymbols("notes.txt", [], []))])
    assert RepoGraph.from_store(manifest).map(100).text == "notes.txt\n"


def synthetic_repo(n_files: int = 3000, per_file: int = 30, refs: int = 200) -> list[FileSymbols]:
    """Seeded: a few popular modules everybody uses, neighbours in a package, common names."""
    rng = np.random.default_rng(7)
    common = ["__init__", "run", "get", "close", "__repr__", "setup", "main", "to_dict"]
    names = [f"{'Widget' if i % 4 == 0 else 'compute_value'}{i}" for i in range(n_files * per_file)]
    popularity = 1.0 / np.arange(1, n_files + 1) ** 1.1
    owner = rng.permutation(n_files)
    files = []
    for f in range(n_files):
        own = [names[f * per_file + j] if j % 6 else common[(f + j) % 8] for j in range(per_file)]
        definitions = [
            _def(name, 10 * j + 1, f"def {name}(self, value: int) -> int:", f"C{f}.{name}")
            for j, name in enumerate(own)
        ]
        targets = owner[rng.choice(n_files, size=refs // 2, p=popularity / popularity.sum())]
        near = (f + rng.integers(-20, 20, size=refs // 4)) % n_files
        picked = np.concatenate((targets, near)) * per_file
        picked += rng.integers(0, per_file, size=len(picked))
        used = {names[i] for i in picked.tolist()} | set(common[:3])
        used.update(f"local_{k}" for k in range(refs - len(used)))
        files.append(FileSymbols(f"src/pkg{f % 40}/mod_{f}.py", definitions, sorted(used)))
    return files


def test_a_three_thousand_file_map_is_ranked_by_the_query_and_fits_the_budget():
    # Its speed is measured by tools/bench_index.py, not asserted here.
    files = synthetic_repo()
    repo_map = build_repo_map(files, 1024, query="compute_value1234 in mod_17")
    assert 0 < repo_map.tokens <= 1024
    assert "def compute_value1234(" in repo_map.text
