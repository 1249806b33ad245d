"""Hybrid code search: full-text and vector candidates fused by rank, then weighed by the structure of
code — definitions the query names (names defined in fewer places and used by fewer files count more),
paths and stack-trace frames it mentions — and pooled to files when asked for files.

Every signal contributes in reciprocal-rank units, weight / (RRF_K + rank), so they add up on one scale
without calibrating BM25 scores against cosine distances.
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
from mcode.store import Manifest

if TYPE_CHECKING:
    import numpy as np

    from mcode.embed import Embedder

RRF_K = 10
# Full-text candidates cost time roughly in proportion; 50 scored the same as 100 on
# tools/eval_search.py (stdlib, n=300), where a rank past 50 adds under 1/60 to a fused score.
FTS_CANDIDATES = 50
VECTOR_CANDIDATES = 100  # free in memory: the dot product covers every row anyway
W_FTS = 1.0
W_VECTOR = 2.0  # measured on tools/eval_search.py: meaning beats words on prose queries
W_SYMBOL = 1.5  # the query names a symbol this chunk defines
W_PATH = 1.0  # the query names this chunk's file
W_FRAME = 2.0  # a stack-trace frame points inside this chunk
# A file's module summary matches the query: off. On tools/eval_search.py (file Acc@1, w=0.5, n~200)
# it moved stdlib +5.0 lexical / +1.5 hybrid and git (mcode's history) -2.0 / +1.0: too small and
# mixed to turn on. `--summary-weight` measures it again; the summaries still label every result.
W_SUMMARY = 0.0
SUMMARY_CANDIDATES = 20
MAX_DEFS_PER_NAME = 25  # a name defined in more places than this says little
TEST_PENALTY = 0.6
SNIPPET_LINES = 12
FILE_POOL_DEPTH = 20

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


class _Scores:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.score: dict[str, float] = {}

    def add(self, row: dict[str, Any], weight: float, rank: int = 0) -> None:
        key = row["id"]
        self.rows.setdefault(key, row)
        self.score[key] = self.score.get(key, 0.0) + weight / (RRF_K + rank)

    def add_ranked(self, rows: Iterable[dict[str, Any]], weight: float) -> None:
        for rank, row in enumerate(rows):
            self.add(row, weight, rank)


class ChunkReads(Protocol):
    """The reads ranking makes: `ChunkStore` (one query each) or `ResidentChunks` (from memory)."""

    def full_text(self, query: str, k: int) -> list[dict[str, Any]]: ...
    def nearest(self, vector: np.ndarray, k: int) -> list[dict[str, Any]]: ...
    def rows_for_paths(
        self, paths: Sequence[str], limit: int = ..., *, symbols: Sequence[str] = ...
    ) -> list[dict[str, Any]]: ...
    def text_heads(self, ids: Sequence[str], lines: int) -> dict[str, str]: ...


class SummaryReads(Protocol):
    """The reads of module summaries ranking makes (`store.summaries.SummaryStore`)."""

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
        summaries: SummaryReads | None = None,
        summary_weight: float = W_SUMMARY,
    ) -> None:
        self.repo = repo
        self._root = str(repo)
        self.chunks = chunks
        self.manifest = manifest
        self.embedder = embedder
        self.summaries = summaries
        self.summary_weight = summary_weight
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
        analysis = analyze(query)
        scores = _Scores()
        nearest = None
        if self.embedder is not None and analysis.text.strip():
            # The model, LanceDB and numpy all run outside the GIL: the vector leg (embed the
            # query, then find its neighbours) runs beside full-text search.
            nearest = self._pool().submit(self._vector_leg, analysis.vector_text)
        scores.add_ranked(self.chunks.full_text(" ".join(analysis.terms), FTS_CANDIDATES), W_FTS)
        # The vector leg takes longest (the model alone ~7 ms): weigh the structure meanwhile, and
        # add it after the vectors, so every score sums its parts in the same order.
        evidence = [*self._symbol_evidence(analysis), *self._path_evidence(analysis)]
        self.vectors_failed = None
        if nearest is not None:
            try:
                scores.add_ranked(nearest.result(), W_VECTOR)
            except EmbedderUnavailable as exc:  # the words still answer
                self.vectors_failed = str(exc)
        for row, weight in evidence:
            scores.add(row, weight)
        if level == "file" and self.summaries is not None and self.summary_weight > 0:
            # Files only: credited to a file's best chunk, a summary hit lifts that chunk above
            # the symbols a query names (tools/eval_search.py stdlib: symbol Acc@10 fell).
            found = self.summaries.search_files(" ".join(analysis.terms), SUMMARY_CANDIDATES)
            for row, rank in self._file_evidence(scores, found):
                scores.add(row, self.summary_weight, rank)
        if level == "file":
            # Enough chunks to fill k files and give each its bonus for other good chunks.
            ranked = self._pool_files(self._finalise(analysis, scores, k * FILE_POOL_DEPTH), k)
        else:
            ranked = self._finalise(analysis, scores, k)
        return self._with_snippets(ranked)

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

    def _symbol_evidence(self, analysis: QueryAnalysis) -> list[tuple[dict[str, Any], float]]:
        """(row, weight) for the chunks that define names the query mentions."""
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
        wanted: dict[str, list[tuple[str, float]]] = {}  # path -> [(symbol, weight)]
        spread = self._reference_spread() if by_name else None
        for name, rows in by_name.items():
            files = {d.path for d in rows}
            if len(files) > MAX_DEFS_PER_NAME:
                continue
            weight = W_SYMBOL * names[name] / math.sqrt(len(files))
            if spread is not None:
                # A name the whole repository uses (`click.command`, `attrs.define`) turns up in
                # the example code of most reports, whatever they are about: it says little.
                weight *= spread.rarity(name)
            for d in rows:
                wanted.setdefault(d.path, []).append((d.symbol, weight))
        if not wanted:
            return []
        # The strongest few files only: each costs a lookup. Equals in path order, not in the
        # order the manifest happens to hold them (which follows the index's history).
        top = sorted(wanted, key=lambda p: (-max(w for _, w in wanted[p]), p))[:30]
        symbols = sorted({symbol for path in top for symbol, _ in wanted[path]})
        return [
            (row, weight)
            for row in self.chunks.rows_for_paths(top, symbols=symbols)
            for symbol, weight in wanted.get(row["path"], ())
            if row["symbol"] == symbol
        ]

    def _file_evidence(
        self, scores: _Scores, paths: Sequence[str]
    ) -> list[tuple[dict[str, Any], int]]:
        """(row, rank) crediting each of `paths` (ranked best first) to its file: to the file's
        best chunk so far, or to its first chunk when none is a candidate yet."""
        best: dict[str, tuple[float, str]] = {}
        for key, score in scores.score.items():
            path = scores.rows[key]["path"]
            if path not in best or score > best[path][0]:
                best[path] = (score, key)
        missing = [path for path in paths if path not in best]
        first: dict[str, dict[str, Any]] = {}
        for row in self.chunks.rows_for_paths(missing):
            held = first.get(row["path"])
            if held is None or (row["start_line"], row["id"]) < (held["start_line"], held["id"]):
                first[row["path"]] = row
        evidence = []
        for rank, path in enumerate(paths):
            row = scores.rows[best[path][1]] if path in best else first.get(path)
            if row is not None:
                evidence.append((row, rank))
        return evidence

    def _path_evidence(self, analysis: QueryAnalysis) -> list[tuple[dict[str, Any], float]]:
        """(row, weight) for the chunks of files the query names, most for a frame's lines."""
        if not analysis.paths and not analysis.frames:
            return []
        indexed = self._path_index()
        file_weight: dict[str, float] = {}
        frame_lines: dict[str, list[int]] = {}
        for fragment in analysis.paths:
            matches = indexed.match(fragment)
            if 0 < len(matches) <= 10:
                for path in matches:
                    file_weight[path] = file_weight.get(path, 0.0) + W_PATH / len(matches)
        for frame in analysis.frames:
            matches = indexed.match(frame.path)
            if 0 < len(matches) <= 3:
                for path in matches:
                    file_weight[path] = file_weight.get(path, 0.0) + W_PATH / len(matches)
                    frame_lines.setdefault(path, []).append(frame.line)
        if not file_weight:
            return []
        top = sorted(file_weight, key=lambda p: (-file_weight[p], p))[:20]
        evidence = []
        for row in self.chunks.rows_for_paths(top):
            path = row["path"]
            lines = frame_lines.get(path, ())
            hit = any(row["start_line"] <= line <= row["end_line"] for line in lines)
            weight = file_weight[path] * (0.5 if row["kind"] in ("module", "window") else 0.35)
            if hit:
                weight += W_FRAME
            evidence.append((row, weight))
        return evidence

    # -- ranking --------------------------------------------------------------------------------

    def _finalise(self, analysis: QueryAnalysis, scores: _Scores, limit: int) -> list[SearchResult]:
        """The best `limit` results, best first; only their files are checked on disk."""
        penalised: dict[str, bool] = {}
        final: dict[str, float] = {}
        for key, score in scores.score.items():
            path = scores.rows[key]["path"]
            if path not in penalised:
                penalised[path] = not analysis.mentions_tests and is_test_path(path)
            final[key] = score * TEST_PENALTY if penalised[path] else score
        order = sorted(
            final,
            key=lambda key: (
                -final[key],
                scores.rows[key]["path"],
                scores.rows[key]["start_line"],
                key,
            ),
        )
        results: list[SearchResult] = []
        exists: dict[str, bool] = {}
        for key in order:
            row = scores.rows[key]
            path = row["path"]
            if path not in exists:
                # Never answer with a file that is gone, even if the index has not caught up.
                exists[path] = os.path.isfile(os.path.join(self._root, path))
            if not exists[path]:
                continue
            results.append(
                SearchResult(
                    path=path,
                    start_line=int(row["start_line"]),
                    end_line=int(row["end_line"]),
                    symbol=row["symbol"] or "",
                    kind=row["kind"] or "",
                    score=final[key],
                    snippet="",
                    language=row.get("language") or "",
                    signature=row.get("signature") or "",
                    chunk_id=key,
                )
            )
            if len(results) >= limit:
                break
        return results

    @staticmethod
    def _pool_files(ranked: list[SearchResult], k: int) -> list[SearchResult]:
        """One row per file: its best chunk, scored by that chunk plus a little for its others."""
        best: dict[str, SearchResult] = {}
        extra: dict[str, list[float]] = {}
        for result in ranked:
            if result.path not in best:
                best[result.path] = result
            else:
                extra.setdefault(result.path, []).append(result.score)
        pooled = []
        for path, result in best.items():
            bonus = sum(s * 0.5 ** (i + 1) for i, s in enumerate(extra.get(path, [])[:3]))
            pooled.append(replace(result, score=result.score + 0.5 * bonus))
        pooled.sort(key=lambda r: (-r.score, r.path))
        return pooled[:k]


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
