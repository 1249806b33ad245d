"""Hybrid code search: full-text and vector candidates fused by rank, then weighed by the structure of
code — definitions the query names (names defined in fewer places and used by fewer files count more),
paths and stack-trace frames it mentions — and pooled to files when asked for files.

The search gathers what each signal says about each candidate chunk (`gather`); `ranking` weighs it.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mcode.embed.base import EmbedderUnavailable
from mcode.retrieval.query import QueryAnalysis, analyze
from mcode.retrieval.ranking import Candidate, Weights, rank_chunks, rank_files
from mcode.store import Manifest

if TYPE_CHECKING:
    import numpy as np

    from mcode.embed import Embedder

# Full-text candidates cost time roughly in proportion; 50 scored the same as 100 on
# tools/eval_search.py (stdlib, n=300), where a rank past 50 adds under 1/60 to a fused score.
FTS_CANDIDATES = 50
VECTOR_CANDIDATES = 100  # free in memory: the dot product covers every row anyway
SUMMARY_CANDIDATES = 20  # files whose module summary matches, when `Weights.summary` counts them
MAX_DEFS_PER_NAME = 25  # a name defined in more places than this says little
SNIPPET_LINES = 12

_TEST_PATH = re.compile(
    r"(^|/)(tests?|testing|__tests__|spec)(/|$)|(^|/)test_[^/]*$|_test\.\w+$|\.(test|spec)\.\w+$"
)


@dataclass(frozen=True, slots=True)
class SearchResult:
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    score: float
    snippet: str
    language: str = ""
    signature: str = ""
    chunk_id: str = ""
    summary: str = ""  # what its file's module summary says the file is for, when there is one

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "symbol": self.symbol,
            "kind": self.kind,
            "score": round(self.score, 6),
            "snippet": self.snippet,
        }


def is_test_path(path: str) -> bool:
    return bool(_TEST_PATH.search(path))


def _snippet(text: str, lines: int = SNIPPET_LINES) -> str:
    head = text.split("\n", lines)
    return "\n".join(head[:lines]) + ("\n…" if len(head) > lines else "")


class ChunkReads(Protocol):
    """The reads ranking makes: `ChunkStore` (one query each) or `ResidentChunks` (from memory)."""

    def full_text(self, query: str, k: int) -> list[dict[str, Any]]: ...
    def nearest(self, vector: np.ndarray, k: int) -> list[dict[str, Any]]: ...
    def rows_for_paths(
        self, paths: Sequence[str], limit: int = ..., *, symbols: Sequence[str] = ...
    ) -> list[dict[str, Any]]: ...
    def text_heads(self, ids: Sequence[str], lines: int) -> dict[str, str]: ...


class SummaryReads(Protocol):
    """The reads of module summaries a search makes (`store.summaries.SummaryStore`)."""

    def search_files(self, query: str, k: int) -> list[str]: ...
    def purposes(self, paths: Sequence[str]) -> dict[str, str]: ...


class Searcher:
    """Answers queries over one repository's archival memory."""

    def __init__(
        self,
        repo: Path,
        chunks: ChunkReads,
        manifest: Manifest,
        embedder: Embedder | None = None,
        weights: Weights | None = None,
        summaries: SummaryReads | None = None,
    ) -> None:
        self.repo = repo
        self._root = str(repo)
        self.chunks = chunks
        self.manifest = manifest
        self.embedder = embedder
        self.weights = weights or Weights()
        self.summaries = summaries  # results carry their file's summary line; see Weights.summary
        # Why the last search ranked by words alone although vectors were expected (the embedder
        # failed: a remote one timed out, say), for the caller to tell the user; else None.
        self.vectors_failed: str | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._paths: tuple[int, _PathIndex] | None = None
        self._spread = _ReferenceSpread()
        self._spread_generation: int | None = None

    def search(self, query: str, k: int = 10, level: str = "symbol") -> list[SearchResult]:
        if level not in ("symbol", "file"):
            raise ValueError(f"unknown level {level!r}: use 'symbol' or 'file'")
        candidates = self.gather(query)
        if level == "file":
            ranked = rank_files(candidates, self.weights, k)
        else:
            ranked = rank_chunks(candidates, self.weights)[:k]
        return self._with_snippets([_result(score, c) for score, c in ranked])

    def gather(self, query: str) -> list[Candidate]:
        """Every chunk some signal finds for `query`, with what each signal says of it, unweighed:
        `ranking.rank_chunks` or `rank_files` weighs them, under any `Weights`, as often as wanted."""
        analysis = analyze(query)
        found: dict[str, Candidate] = {}

        def at(row: dict[str, Any]) -> Candidate:
            if row["id"] not in found:
                found[row["id"]] = Candidate(row)
            return found[row["id"]]

        nearest = None
        if self.embedder is not None and analysis.text.strip():
            # The model, LanceDB and numpy all run outside the GIL: the vector leg (embed the
            # query, then find its neighbours) runs beside full-text search and the structure.
            nearest = self._pool().submit(self._vector_leg, analysis.vector_text)
        terms = " ".join(analysis.terms)
        for rank, row in enumerate(self.chunks.full_text(terms, FTS_CANDIDATES)):
            at(row).fts_rank = rank
        for row, strength, rarity in self._symbol_evidence(analysis):
            at(row).names.append((strength, rarity))
        for row, share, hit in self._path_evidence(analysis):
            candidate = at(row)
            candidate.path_share += share
            candidate.frame_hit = candidate.frame_hit or hit
        if self.summaries is not None and self.weights.summary > 0:
            # Off as shipped: a lookup per file without a candidate chunk costs ~80 ms a search.
            for row, rank in self._summary_evidence(terms, found):
                at(row).summary_rank = rank
        self.vectors_failed = None
        if nearest is not None:
            try:
                for rank, row in enumerate(nearest.result()):
                    at(row).vector_rank = rank
            except EmbedderUnavailable as exc:  # the words still answer
                self.vectors_failed = str(exc)
        return self._present(analysis, list(found.values()))

    def _summary_evidence(
        self, terms: str, found: dict[str, Candidate]
    ) -> list[tuple[dict[str, Any], int]]:
        """(row, rank) for the files whose module summary matches, best first: a chunk of the
        file already found, else its first chunk (the summary counts for the file, not a chunk)."""
        assert self.summaries is not None
        paths = self.summaries.search_files(terms, SUMMARY_CANDIDATES)
        held: dict[str, dict[str, Any]] = {}
        for candidate in found.values():
            held.setdefault(candidate.path, candidate.row)
        for row in self.chunks.rows_for_paths([p for p in paths if p not in held]):
            first = held.get(row["path"])
            if first is None or (row["start_line"], row["id"]) < (first["start_line"], first["id"]):
                held[row["path"]] = row
        return [(held[path], rank) for rank, path in enumerate(paths) if path in held]

    def _present(self, analysis: QueryAnalysis, candidates: list[Candidate]) -> list[Candidate]:
        """The candidates whose file is still there, tests marked unless the query is about them."""
        files: dict[str, tuple[bool, bool]] = {}  # path -> (exists, penalised)
        kept = []
        for candidate in candidates:
            path = candidate.path
            if path not in files:
                # Never answer with a file that is gone, even if the index has not caught up.
                files[path] = (
                    os.path.isfile(os.path.join(self._root, path)),
                    not analysis.mentions_tests and is_test_path(path),
                )
            exists, candidate.penalised = files[path]
            if exists:
                candidate.names.sort()  # the same sum whatever order the index returned them in
                kept.append(candidate)
        return kept

    def warm_up(self) -> None:
        """Load now what the first search would wait for: the resident rows and the model."""
        refresh = getattr(self.chunks, "refresh", None)
        if refresh is not None:
            refresh()
        load = getattr(self.embedder, "load", None)
        if load is not None:
            load()

    def _vector_leg(self, text: str) -> list[dict[str, Any]]:
        assert self.embedder is not None
        return self.chunks.nearest(self.embedder.embed_query(text), VECTOR_CANDIDATES)

    def _path_index(self) -> _PathIndex:
        """Built once per index generation: listing and splitting every path costs ~20 ms."""
        generation = self.manifest.generation()
        if self._paths is None or self._paths[0] != generation:
            self._paths = (generation, _PathIndex(self.manifest.paths()))
        return self._paths[1]

    def _reference_spread(self) -> _ReferenceSpread:
        """Brought up to date once per index generation, counting only the files that changed."""
        generation = self.manifest.generation()
        if self._spread_generation != generation:
            self._spread.update(self.manifest.references())
            self._spread_generation = generation
        return self._spread

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcode-vectors")
        return self._executor

    def _with_snippets(self, results: list[SearchResult]) -> list[SearchResult]:
        # One line more than shown: whether there is more to mark with an ellipsis.
        texts = self.chunks.text_heads([r.chunk_id for r in results], SNIPPET_LINES + 1)
        about = self.summaries.purposes([r.path for r in results]) if self.summaries else {}
        return [
            replace(r, snippet=_snippet(texts.get(r.chunk_id, "")), summary=about.get(r.path, ""))
            for r in results
        ]

    # -- structural evidence -------------------------------------------------------------------

    def _symbol_evidence(
        self, analysis: QueryAnalysis
    ) -> list[tuple[dict[str, Any], float, float]]:
        """(row, strength, rarity) for the chunks that define names the query mentions: how
        code-like the mention is over the square root of the files defining the name, and how
        few files use the name (`Weights.rarity` says how much that counts)."""
        names = {n: c for n, c in analysis.identifiers.items() if len(n) >= 3}
        if not names:
            return []
        counts = self.manifest.definition_counts(names)
        # Names defined in many places say little and would fetch thousands of rows: drop them first.
        defs = self.manifest.definitions_named(
            n for n, c in counts.items() if c <= MAX_DEFS_PER_NAME
        )
        by_name: dict[str, list] = {}
        for d in defs:
            by_name.setdefault(d.name, []).append(d)
        # path -> [(symbol, strength, rarity)]
        wanted: dict[str, list[tuple[str, float, float]]] = {}
        spread = self._reference_spread() if by_name else None
        for name, rows in by_name.items():
            files = {d.path for d in rows}
            if len(files) > MAX_DEFS_PER_NAME:
                continue
            strength = names[name] / math.sqrt(len(files))
            # A name the whole repository uses (`click.command`, `attrs.define`) turns up in
            # the example code of most reports, whatever they are about: it says little.
            rarity = spread.rarity(name) if spread is not None else 1.0
            for d in rows:
                wanted.setdefault(d.path, []).append((d.symbol, strength, rarity))
        if not wanted:
            return []
        # The strongest few files only (by strength times rarity, whatever the weights): each
        # costs a lookup. Equals in path order, not in the order the manifest happens to hold them
        # (which follows the index's history).
        top = sorted(wanted, key=lambda p: (-max(s * r for _, s, r in wanted[p]), p))[:30]
        symbols = sorted({symbol for path in top for symbol, _, _ in wanted[path]})
        return [
            (row, strength, rarity)
            for row in self.chunks.rows_for_paths(top, symbols=symbols)
            for symbol, strength, rarity in wanted.get(row["path"], ())
            if row["symbol"] == symbol
        ]

    def _path_evidence(self, analysis: QueryAnalysis) -> list[tuple[dict[str, Any], float, bool]]:
        """(row, share, frame hit) for the chunks of files the query names: how clearly it names
        the file (less when the mention fits several), and whether a frame points inside."""
        if not analysis.paths and not analysis.frames:
            return []
        indexed = self._path_index()
        file_weight: dict[str, float] = {}
        frame_lines: dict[str, list[int]] = {}
        for fragment in analysis.paths:
            matches = indexed.match(fragment)
            if 0 < len(matches) <= 10:
                for path in matches:
                    file_weight[path] = file_weight.get(path, 0.0) + 1 / len(matches)
        for frame in analysis.frames:
            matches = indexed.match(frame.path)
            if 0 < len(matches) <= 3:
                for path in matches:
                    file_weight[path] = file_weight.get(path, 0.0) + 1 / len(matches)
                    frame_lines.setdefault(path, []).append(frame.line)
        if not file_weight:
            return []
        top = sorted(file_weight, key=lambda p: (-file_weight[p], p))[:20]
        evidence = []
        for row in self.chunks.rows_for_paths(top):
            path = row["path"]
            lines = frame_lines.get(path, ())
            hit = any(row["start_line"] <= line <= row["end_line"] for line in lines)
            share = file_weight[path] * (0.5 if row["kind"] in ("module", "window") else 0.35)
            evidence.append((row, share, hit))
        return evidence


def _result(score: float, candidate: Candidate) -> SearchResult:
    row = candidate.row
    return SearchResult(
        path=row["path"],
        start_line=int(row["start_line"]),
        end_line=int(row["end_line"]),
        symbol=row["symbol"] or "",
        kind=row["kind"] or "",
        score=score,
        snippet="",
        language=row.get("language") or "",
        signature=row.get("signature") or "",
        chunk_id=row["id"],
    )


class _ReferenceSpread:
    """How many files use each name, so that a name can be weighed like a term by its inverse
    document frequency: one every file calls is the public face of the code, not a bug's locus.

    Counting every file's references again costs ~110 ms for the standard library (7 MB of them),
    which the first search after each update would pay; `update` recounts the files that changed.
    The counts depend on the files alone, so an updated copy counts as a fresh one does.
    """

    def __init__(self) -> None:
        self.using: Counter[str] = Counter()
        self._refs: dict[str, str] = {}

    @property
    def files(self) -> int:
        return len(self._refs)

    def update(self, references: Iterable[tuple[str, str]]) -> None:
        """Take each indexed file's references (path, JSON text) as they are now."""
        current = dict(references)
        for path, refs in current.items():
            old = self._refs.get(path)
            if old != refs:
                if old is not None:
                    self.using.subtract(json.loads(old))
                self.using.update(json.loads(refs))
        for path in self._refs.keys() - current.keys():
            self.using.subtract(json.loads(self._refs[path]))
        self._refs = current

    def rarity(self, name: str) -> float:
        """1 for a name no file uses, falling towards 0 for one that every file uses."""
        if self.files < 2:
            return 1.0
        return math.log((self.files + 1) / (self.using[name] + 1)) / math.log(self.files + 1)


class _PathIndex:
    """Indexed paths by file name and by file stem, so a mentioned path or dotted module is
    matched against the few files of that name, not every path in the repository."""

    def __init__(self, paths: list[str]) -> None:
        self.by_name: dict[str, list[str]] = {}
        self.by_stem: dict[str, list[str]] = {}
        for path in paths:
            name = path.rsplit("/", 1)[-1]
            self.by_name.setdefault(name, []).append(path)
            stem = name.rsplit(".", 1)[0]
            if stem == "__init__":
                parent = path.rsplit("/", 2)
                stem = parent[-2] if len(parent) >= 2 else stem
            self.by_stem.setdefault(stem, []).append(path)

    def match(self, fragment: str) -> list[str]:
        """Indexed paths a mentioned path or dotted module refers to (suffix match on whole parts)."""
        fragment = fragment.replace("\\", "/").lstrip("./")
        if not fragment:
            return []
        suffix = "/" + fragment
        last = fragment.rsplit("/", 1)[-1]
        exact = [p for p in self.by_name.get(last, ()) if p == fragment or p.endswith(suffix)]
        if exact or "." in last:
            return exact
        # A module path without extension: pkg/mod -> pkg/mod.py or pkg/mod/__init__.py
        found = []
        for path in self.by_stem.get(last, ()):
            stem = path.rsplit(".", 1)[0]
            if stem.endswith("/__init__"):
                stem = stem[: -len("/__init__")]
            if stem == fragment or stem.endswith(suffix):
                found.append(path)
        return found
