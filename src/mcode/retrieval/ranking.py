"""How the signals a search gathered for each chunk add up to a ranking, with every signal's weight
in one place: so that an evaluation can switch any one of them off, or fit them all
(tools/fit_search.py), by ranking the same candidates again instead of searching again.

Every signal contributes in reciprocal-rank units, weight / (RRF_K + rank), so they add up on one scale
without calibrating BM25 scores against cosine distances; evidence that is not a ranking (a name the
query mentions, a path, a frame) counts as rank 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

RRF_K = 10
FILE_POOL_DEPTH = 20  # chunks per wanted file: enough to fill k files and give each its bonus


@dataclass(frozen=True, slots=True)
class Weights:
    """What each signal counts for; the defaults are what ships, measured on tools/eval_search.py.
    They stand until tools/fit_search.py finds weights that find more of the bug reports' test
    split without the stdlib task getting worse. On 343 reports the lexical fit gained on its own
    162 but found no more of the other 181; on the first 41, the hybrid fit (less for vectors,
    none for symbols) found more but lost a third of the stdlib functions it had found first."""

    fts: float = 1.0  # the chunk's rank in full-text search
    vector: float = 2.0  # its rank among the query's nearest vectors: meaning beats words on prose
    symbol: float = 1.5  # the query names a symbol this chunk defines
    rarity: float = 1.0  # exponent on how few files use such a name (0: every name counts alike)
    path: float = 1.0  # the query names this chunk's file
    frame: float = 2.0  # a stack-trace frame points inside this chunk
    test_penalty: float = 0.6  # factor on a test file's chunks, unless the query is about tests
    pool: float = 0.5  # file level: the share of a file's other good chunks added to its best
    # File level: the file's module summary matches the query (its rank among such files). Off: on
    # tools/eval_search.py (file Acc@1, w=0.5, n~200) it moved stdlib +5.0 lexical / +1.5 hybrid
    # and git (mcode's history) -2.0 / +1.0, too small and mixed to turn on.
    summary: float = 0.0

    def without(self, signal: str) -> Weights:
        """These weights with one signal switched off (`SIGNALS` names them)."""
        if signal not in SIGNALS:
            raise ValueError(f"unknown signal {signal!r}: one of {', '.join(SIGNALS)}")
        return replace(self, **{signal: SIGNALS[signal]})


# Each signal's name and the weight that switches it off.
SIGNALS: dict[str, float] = {
    "fts": 0.0,
    "vector": 0.0,
    "symbol": 0.0,
    "rarity": 0.0,
    "path": 0.0,
    "frame": 0.0,
    "test_penalty": 1.0,
    "pool": 0.0,
    "summary": 0.0,
}


@dataclass(slots=True)
class Candidate:
    """One chunk a search found, with what each signal said about it, before any weighing."""

    row: dict[str, Any]
    fts_rank: int | None = None
    vector_rank: int | None = None
    # For each name the query mentions that this chunk defines: how strongly it names it (how
    # code-like, over the square root of the files defining it) and how few files use it (0..1].
    names: list[tuple[float, float]] = field(default_factory=list)
    path_share: float = 0.0  # how clearly the query names this chunk's file
    frame_hit: bool = False
    penalised: bool = False  # a test file, and the query is not about tests
    summary_rank: int | None = None  # its file's rank among those whose summary matches

    @property
    def path(self) -> str:
        return self.row["path"]

    def score(self, weights: Weights) -> float:
        total = 0.0
        if self.fts_rank is not None:
            total += weights.fts / (RRF_K + self.fts_rank)
        if self.vector_rank is not None:
            total += weights.vector / (RRF_K + self.vector_rank)
        named = sum(strength * rarity**weights.rarity for strength, rarity in self.names)
        evidence = weights.symbol * named + weights.path * self.path_share
        if self.frame_hit:
            evidence += weights.frame
        total += evidence / RRF_K
        return total * weights.test_penalty if self.penalised else total


Scored = tuple[float, Candidate]


def rank_chunks(candidates: list[Candidate], weights: Weights) -> list[Scored]:
    """Best first; a chunk no weighed signal speaks for is left out. Equals in path and line order."""
    scored = [(c.score(weights), c) for c in candidates]
    scored = [pair for pair in scored if pair[0] > 0]
    scored.sort(key=lambda p: (-p[0], p[1].path, p[1].row["start_line"], p[1].row["id"]))
    return scored


def rank_files(candidates: list[Candidate], weights: Weights, k: int) -> list[Scored]:
    """One per file, at most `k`: its best chunk, scored by that chunk plus a little for its others."""
    best: dict[str, Scored] = {}
    extra: dict[str, list[float]] = {}
    for score, candidate in rank_chunks(candidates, weights)[: k * FILE_POOL_DEPTH]:
        if candidate.path not in best:
            best[candidate.path] = (score, candidate)
        else:
            extra.setdefault(candidate.path, []).append(score)
    summarised = {}  # path -> (rank, a chunk of it): a summary hit counts for the whole file
    if weights.summary > 0:
        summarised = {c.path: (c.summary_rank, c) for c in candidates if c.summary_rank is not None}
    for path, (_, candidate) in summarised.items():
        best.setdefault(path, (0.0, candidate))
    pooled = []
    for path, (score, candidate) in best.items():
        bonus = sum(s * 0.5 ** (i + 1) for i, s in enumerate(extra.get(path, [])[:3]))
        if path in summarised:
            score += weights.summary / (RRF_K + summarised[path][0])
        pooled.append((score + weights.pool * bonus, candidate))
    pooled.sort(key=lambda p: (-p[0], p[1].path))
    return pooled[:k]
