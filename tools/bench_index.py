#!/usr/bin/env python3
"""Benchmark archival memory on a large real corpus: index speed, update latency, search latency, RSS.

The corpus is a copy of this interpreter's standard library (~1,800 Python files), made a git repository
so that discovery takes its real path. Everything mcode writes (index, embedding cache, config) lives in
one temporary directory. Each figure is printed next to its target and, where the issue defines one, next
to a baseline measured in the same run: the raw tree-sitter parse of the same files is the floor for the
cold index, `python -c pass` the floor for `mcode --help`, and the cold build itself the measure of the
content scan for secrets (which every build runs over every file it reads).

Embedding all ~50k chunks with the local model takes 15-40 minutes on 2 cores, so by default only a
seeded sample is embedded with the real model (that gives the throughput); the remaining rows get
deterministic synthetic vectors, written through the same `Indexer.embed_pending` path and the same
embedding cache, so the table, its ANN index and the cache have the shape of a fully embedded index and
the update and search latencies are measured against it. `--full-embed` embeds everything for real.

    /work/venv/bin/python tools/bench_index.py [--json] [--full-embed] [--cold-only] [--corpus PATH]
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcode.config import Paths, Settings
from mcode.embed.base import text_hash
from mcode.embed.cache import CachedEmbedder
from mcode.embed.local import LocalEmbedder
from mcode.index.discover import discover, read_source
from mcode.index.languages import LANGUAGE_SPECS, language_for_path
from mcode.index.pipeline import EXACT_WITHIN_UPDATES, OPTIMIZE_EVERY_WRITES, Indexer
from mcode.index.rows import DEFAULT_EMBEDDING_STYLE, embedding_text
from mcode.retrieval.outline import repo_map_from_manifest
from mcode.retrieval.resident import ResidentChunks
from mcode.retrieval.search import Searcher
from mcode.retrieval.workspace import Workspace, open_writer
from mcode.secrets import find_secrets

TARGET_COLD_RATIO = 1.5
TARGET_UPDATE_P95_MS = 300.0
TARGET_SEARCH_P50_MS = 30.0
TARGET_SEARCH_AT_CHUNKS = 50_000
TARGET_REPORT_P95_MS = 1000.0  # issue 16: a ~3 kB bug report at 50k chunks, on 2 cores
TARGET_HELP_S = 0.3
TARGET_SECRET_SCAN_SHARE = 0.10
BEFORE_TOKENS = 256  # what the local model read of each chunk before issue 12
UPDATE_DEADLINE_S = 5.0  # process_changes is synchronous: a miss is a ranking, not a lag
GIT = ["git", "-c", "user.email=bench@example.invalid", "-c", "user.name=bench"]
GIT += ["-c", "commit.gpgsign=false", "-c", "core.autocrlf=false"]


# -- output ------------------------------------------------------------------------------------


@dataclass
class Report:
    """Human lines go to stdout (stderr under --json); every figure also lands in `data`."""

    as_json: bool
    data: dict[str, Any] = field(default_factory=dict)

    def line(self, label: str, text: str) -> None:
        out = sys.stderr if self.as_json else sys.stdout
        print(f"{label:<22} {text}", file=out, flush=True)

    def note(self, text: str) -> None:
        self.line("", text)

    def mark(self, stage: str) -> None:
        """Peak RSS so far, after each stage: says which stage set the final peak."""
        self.data.setdefault("peak_rss_after_mb", {})[stage] = round(max_rss_mb(), 1)


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, so p95 of 40 samples is an observed value, not an interpolation."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def max_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


# -- peak RSS of worker processes ----------------------------------------------------------------


class DescendantPeak:
    """Polls /proc for the descendants of process `root` and remembers their peak RSS (VmHWM).

    The indexer's workers are children of a forkserver, not of us, so RUSAGE_CHILDREN never sees them.
    """

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root = root
        self.interval = interval
        self.peak_kb: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DescendantPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for pid in _descendants(self.root):
                status = _proc_status(pid)
                if "VmHWM" in status:
                    kb = int(status["VmHWM"].split()[0])
                    name = status.get("Name", "?")
                    if kb > self.peak_kb.get(pid, ("", 0))[1]:
                        self.peak_kb[pid] = (name, kb)

    def worst(self) -> tuple[str, float]:
        if not self.peak_kb:
            return "none", 0.0
        name, kb = max(self.peak_kb.values(), key=lambda item: item[1])
        return name, kb / 1024


def _proc_status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


# -- corpus ----------------------------------------------------------------------------------------


def copy_corpus(source: Path, repo: Path) -> tuple[int, float]:
    """Copy without site-packages and bytecode; the copy becomes a one-commit git repository."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        skip = {"__pycache__"}
        if Path(directory).resolve() == source.resolve():
            skip.add("site-packages")
        return skip & set(names)

    started = time.perf_counter()
    shutil.copytree(source, repo, symlinks=True, ignore=ignore)
    quiet = {"capture_output": True, "check": True, "cwd": repo}
    subprocess.run([*GIT, "init", "-q", "-b", "main"], **quiet)
    subprocess.run([*GIT, "add", "-A"], **quiet)
    subprocess.run([*GIT, "commit", "-q", "-m", "corpus"], **quiet)
    files = sum(1 for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts)
    return files, time.perf_counter() - started


def make_settings(work: Path, repo: Path) -> Settings:
    """Explicit paths, defaults for everything else: no user config or MCODE_* variable leaks in."""
    paths = Paths(repo=repo, user_config=work / "config" / "mcode", cache=work / "cache" / "mcode")
    return Settings(paths=paths, embedding_model="local")


# -- stage 1: the floor ----------------------------------------------------------------------------


@dataclass
class ParseInputs:
    languages: list[str]
    data: list[bytes]

    @property
    def nbytes(self) -> int:
        return sum(len(d) for d in self.data)


def parser_inputs(settings: Settings) -> ParseInputs:
    """Exactly the bytes the chunker hands tree-sitter: same discovery, same reads and checks."""
    found = discover(settings.paths.repo, settings.max_file_bytes)
    inputs = ParseInputs([], [])
    for source in found.files:
        text = read_source(source.abspath, source.path, settings.max_file_bytes).text
        if text is None or not text.strip():
            continue
        language = language_for_path(source.path, text[:200].split("\n", 1)[0])
        spec = LANGUAGE_SPECS.get(language) if language else None
        if spec is None:
            continue
        inputs.languages.append(spec.name)
        inputs.data.append(text.encode("utf-8", "surrogatepass"))
    return inputs


def raw_parse_seconds(inputs: ParseInputs) -> float:
    """Bare `get_parser(lang).parse(bytes)` in this one process, as the chunker calls it."""
    from tree_sitter_language_pack import get_parser

    for language in set(inputs.languages):
        get_parser(language).parse(b"x = 1\n")  # load each grammar outside the timing
    started = time.perf_counter()
    for language, data in zip(inputs.languages, inputs.data, strict=True):
        get_parser(language).parse(data)
    return time.perf_counter() - started


def stage_raw_parse(settings: Settings, out: Report) -> tuple[float, ParseInputs]:
    inputs = parser_inputs(settings)
    seconds = raw_parse_seconds(inputs)
    mb = inputs.nbytes / 1e6
    out.data["raw_parse"] = {
        "files": len(inputs.data),
        "mb": round(mb, 2),
        "seconds": round(seconds, 3),
        "mb_per_s": round(mb / seconds, 2),
    }
    out.line(
        "1 raw parse floor",
        f"{len(inputs.data)} files, {mb:.1f} MB in {seconds:.2f} s = {mb / seconds:.1f} MB/s "
        "(bare tree-sitter parse, 1 process, files already in memory)",
    )
    return seconds, inputs


# -- stage 2: cold lexical index -------------------------------------------------------------------


def timings_text(timings: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in timings.items())


# Five, not three: a single build's ratio ranged from 1.17x to 1.81x in one day, and the median of
# five lands past a threshold by bad luck less often than the median of three.
COLD_RUNS = 5
# One cold build as `mcode index --no-embed` runs it: a fresh process, whose worker pool starts its
# own fork server (which imports that process's main module: here `-c`, for `mcode` a 0.1 s script).
_COLD_BUILD = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from bench_index import make_settings
from mcode.retrieval.workspace import open_writer
indexer, lock = open_writer(make_settings(Path(sys.argv[2]), Path(sys.argv[3])))
try:
    started = time.perf_counter()
    report = indexer.update(embed=False)
    wall = time.perf_counter() - started
finally:
    lock.release()
print(json.dumps({"wall": wall, "report": report.as_json()}))
"""


def cold_build(work: Path, repo: Path) -> tuple[float, dict[str, Any], tuple[str, float]]:
    """Wall time and report of one cold build into an empty index, and its largest worker."""
    shutil.rmtree(make_settings(work, repo).paths.index, ignore_errors=True)
    command = [sys.executable, "-c", _COLD_BUILD, str(Path(__file__).parent), str(work), str(repo)]
    build = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    with build, DescendantPeak(build.pid) as workers:  # the fork server and its workers
        stdout, _ = build.communicate()
    if build.returncode != 0:
        raise SystemExit(f"the cold build failed with exit code {build.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return result["wall"], result["report"], workers.worst()


def stage_cold(work: Path, repo: Path, raw_first: float, inputs: ParseInputs, out: Report) -> None:
    """COLD_RUNS cold builds, each in a fresh process and each between two measures of the floor:
    this machine's speed drifts by up to half within minutes, so each build is compared with the mean
    of the floors measured just before and just after it, and the median ratio is the figure."""
    floors = [raw_first]
    runs = []
    for _ in range(COLD_RUNS):
        wall, report, worker = cold_build(work, repo)
        floors.append(raw_parse_seconds(inputs))
        runs.append((wall, report, worker, wall / ((floors[-2] + floors[-1]) / 2)))
    ratios = sorted(run[3] for run in runs)
    ratio = ratios[len(ratios) // 2]
    wall, report, (worker_name, worker_mb), _ = next(run for run in runs if run[3] == ratio)
    files, chunks, timings = report["files"], report["total_chunks"], report["timings"]
    mb = sum(s.size for s in discover(repo, make_settings(work, repo).max_file_bytes).files) / 1e6
    out.data["cold_lexical"] = {
        "seconds": round(wall, 3),
        "timings": timings,
        "files": files,
        "files_changed": report["changed"],
        "chunks": chunks,
        "files_per_s": round(files / wall, 1),
        "mb_per_s": round(mb / wall, 2),
        "runs": [
            {"seconds": round(w, 3), "ratio": round(r, 3), "timings": rep["timings"]}
            for w, rep, _, r in runs
        ],
        "raw_parse_floors_seconds": [round(f, 3) for f in floors],
        "ratio_to_raw_parse": round(ratio, 2),
        "target_ratio": TARGET_COLD_RATIO,
        "workers": os.cpu_count(),
        "worker_peak_rss_mb": round(worker_mb, 1),
    }
    out.line(
        "2 cold lexical index",
        f"{wall:.2f} s ({timings_text(timings)}); {files} files ({report['changed']} read), "
        f"{chunks} chunks; {files / wall:.0f} files/s, {mb / wall:.1f} MB/s",
    )
    out.note(
        f"= {ratio:.2f}x the raw parse floor, the median of {COLD_RUNS} builds, each in a fresh "
        f"process; target <= {TARGET_COLD_RATIO}x: {verdict(ratio <= TARGET_COLD_RATIO)}"
    )
    out.note(
        "builds "
        + ", ".join(f"{w:.2f} s = {r:.2f}x" for w, _, _, r in runs)
        + "; floors between them "
        + ", ".join(f"{f:.2f}" for f in floors)
        + f" s  (largest worker {worker_mb:.0f} MB [{worker_name}])"
    )


# -- stage 2b: the secret scan -------------------------------------------------------------------

SCAN_RUNS = 3


def stage_secret_scan(settings: Settings, out: Report) -> None:
    """The content scan for secrets alone, over every text the cold build read, in this one process:
    its share of the cold build's wall time (which spreads the same scan over the workers, so the
    share is an upper bound). The median of SCAN_RUNS runs."""
    texts = []
    for source in discover(settings.paths.repo, settings.max_file_bytes).files:
        text = read_source(source.abspath, source.path, settings.max_file_bytes).text
        if text:
            texts.append((source.path, text))
    runs = []
    for _ in range(SCAN_RUNS):
        started = time.perf_counter()
        found = [(path, find_secrets(text)) for path, text in texts]
        runs.append(time.perf_counter() - started)
    seconds = statistics.median(runs)
    cold = out.data["cold_lexical"]["seconds"]
    share = seconds / cold
    mb = sum(len(text) for _, text in texts) / 1e6
    hits = {path: len(secrets) for path, secrets in found if secrets}
    out.data["secret_scan"] = {
        "files": len(texts),
        "mb": round(mb, 2),
        "seconds": round(seconds, 3),
        "runs_s": [round(r, 3) for r in runs],
        "share_of_cold_build": round(share, 3),
        "target_share": TARGET_SECRET_SCAN_SHARE,
        "secrets_found": sum(hits.values()),
        "files_with_secrets": sorted(hits),
    }
    out.line(
        "2b secret scan",
        f"{len(texts)} files, {mb:.1f} MB in {seconds:.2f} s (1 process, median of {SCAN_RUNS}) = "
        f"{share:.1%} of the cold build's {cold:.2f} s; target <= {TARGET_SECRET_SCAN_SHARE:.0%}: "
        f"{verdict(share <= TARGET_SECRET_SCAN_SHARE)}",
    )
    out.note(f"{sum(hits.values())} secret values found in {len(hits)} files")


# -- stage 3: vectors ------------------------------------------------------------------------------


class SyntheticEmbedder:
    """Deterministic unit vectors keyed by text: stands in for the model on rows not in the sample."""

    def __init__(self, embedder_id: str, dim: int) -> None:
        self.id = embedder_id
        self.dim = dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            rng = np.random.default_rng(int(text_hash(text)[:16], 16))
            vector = rng.standard_normal(self.dim).astype(np.float32)
            out[i] = vector / np.linalg.norm(vector)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


@dataclass
class CorpusSample:
    """A seeded sample of rows for the embedding throughput, plus material for search queries."""

    rows: list[dict[str, Any]]
    docstrings: list[str]


def sample_rows(indexer: Indexer, size: int, seed: int) -> CorpusSample:
    """Reservoir-sample chunks over every indexed file, then fetch the sampled chunks' text."""
    rng = random.Random(seed)
    paths = sorted(indexer.manifest.states())
    rows: list[dict[str, Any]] = []
    seen = 0
    for start in range(0, len(paths), 200):
        for row in indexer.store.rows_for_paths(paths[start : start + 200], limit=1_000_000):
            seen += 1
            if len(rows) < size:
                rows.append(row)
            elif (slot := rng.randrange(seen)) < size:
                rows[slot] = row
    if rows and "text" not in rows[0]:
        texts = indexer.store.texts([r["id"] for r in rows])
        rows = [dict(r, text=texts[r["id"]]) for r in rows if r["id"] in texts]
    return CorpusSample(rows, docstrings(indexer.root, paths, rng))


def docstrings(root: Path, paths: list[str], rng: random.Random, files: int = 300) -> list[str]:
    """First sentences of docstrings in random Python files: how people describe code in prose."""
    found = []
    python = [p for p in paths if p.endswith(".py")]
    for path in rng.sample(python, min(files, len(python))):
        try:
            tree = ast.parse((root / path).read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                sentence = first_sentence(ast.get_docstring(node) or "")
                if sentence:
                    found.append(sentence)
    return found


def first_sentence(docstring: str) -> str:
    text = " ".join(docstring.split())
    end = text.find(". ")
    sentence = text if end == -1 else text[: end + 1]
    return sentence if 30 <= len(sentence) <= 160 and sentence[0].isalpha() else ""


def real_embedder(indexer: Indexer) -> CachedEmbedder:
    embedder = indexer.embedder
    if not isinstance(embedder, CachedEmbedder):
        raise SystemExit(f"expected the cached local embedder, got {embedder!r}")
    return embedder


# Issue 12's goal: vectors for a repository of this many chunks in at most this long, on 2 cores.
GOAL_CHUNKS = 45_000
GOAL_SECONDS = 300.0
EMBED_ROUNDS = 4  # the two variants take turns on parts of the sample, so both see the same load


def embed_rates(embedder: CachedEmbedder, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The same sample embedded as mcode does now (`embedder`: the default embedding text and
    length, through the cache) and as it did before (the chunk as written, 256 tokens), the two
    taking turns on parts of the sample; model seconds, chunks/s and mean tokens of each."""
    before = LocalEmbedder(max_tokens=BEFORE_TOKENS, threads=embedder.inner.threads)  # type: ignore[attr-defined]
    variants = {
        "now": (embedder, [embedding_text(r["path"], r["symbol"], r["text"]) for r in rows]),
        "before": (
            before,
            [embedding_text(r["path"], r["symbol"], r["text"], "raw") for r in rows],
        ),
    }
    seconds = dict.fromkeys(variants, 0.0)
    cpu = dict.fromkeys(variants, 0.0)
    for model, _ in variants.values():
        load_model = getattr(model, "load", None)
        if load_model is not None:
            load_model()
    size = max(1, -(-len(rows) // EMBED_ROUNDS))
    for turn, start in enumerate(range(0, len(rows), size)):
        order = list(variants) if turn % 2 == 0 else list(reversed(variants))
        for name in order:
            model, texts = variants[name]
            started, cpu_started = time.perf_counter(), time.process_time()
            model.embed_documents(texts[start : start + size])  # cache misses: the model runs
            seconds[name] += time.perf_counter() - started
            cpu[name] += time.process_time() - cpu_started
    figures = {}
    for name, (model, texts) in variants.items():
        inner = getattr(model, "inner", model)
        tokens = mean_tokens(inner, texts)
        rate = len(texts) / seconds[name]
        # What the model's threads would do on idle cores: the machine is shared, and the CPU time a
        # chunk costs moves far less with the load than the wall time does.
        idle_rate = len(texts) * inner.threads / cpu[name]
        figures[name] = {
            "embedder": model.id,
            "embedding_text": "raw" if name == "before" else DEFAULT_EMBEDDING_STYLE,
            "model_seconds": round(seconds[name], 2),
            "chunks_per_s": round(rate, 1),
            "mean_tokens": round(tokens, 1),
            "projected_goal_seconds": round(GOAL_CHUNKS / rate, 1),
            "cpu_ms_per_chunk": round(cpu[name] / len(texts) * 1000, 2),
            "threads": inner.threads,
            "idle_chunks_per_s": round(idle_rate, 1),
            "idle_projected_goal_seconds": round(GOAL_CHUNKS / idle_rate, 1),
        }
    return figures


def mean_tokens(model: Any, texts: list[str]) -> float:
    """Tokens per text as the model reads them (cut to its document length, [CLS] and [SEP] in)."""
    encodings = model._tokenizer.encode_batch(texts)
    return sum(min(len(e.ids), model.max_tokens) for e in encodings) / max(1, len(texts))


def stage_embed_sample(indexer: Indexer, sample: CorpusSample, out: Report) -> None:
    """The model's throughput on the sample, now and as before, then synthetic vectors for the rest
    via embed_pending."""
    embedder = real_embedder(indexer)
    figures = embed_rates(embedder, sample.rows)
    now, before = figures["now"], figures["before"]
    rate = now["chunks_per_s"]
    total = indexer.store.count()
    stand_in = SyntheticEmbedder(embedder.id, embedder.dim)
    indexer.embedder = CachedEmbedder(stand_in, embedder.cache)
    try:
        started = time.perf_counter()
        written = indexer.embed_pending(batch=4096)  # sample rows hit the cache: real vectors
        fill = time.perf_counter() - started
    finally:
        indexer.embedder = embedder
    projected = total / rate + fill
    goal = now["idle_projected_goal_seconds"]
    out.data["embed"] = {
        "mode": "sample",
        "sample_chunks": len(sample.rows),
        "model_seconds": now["model_seconds"],
        "chunks_per_s": rate,
        "total_chunks": total,
        "synthetic_vectors": written - len(sample.rows),
        "store_fill_seconds": round(fill, 2),
        "projected_full_seconds": round(projected, 1),
        "goal": {"chunks": GOAL_CHUNKS, "seconds": GOAL_SECONDS, "met": goal <= GOAL_SECONDS},
        "now": now,
        "before": before,
    }
    out.line(
        "3 embedding (sample)",
        f"{len(sample.rows)} random chunks, the same ones both ways, taking turns "
        f"({EMBED_ROUNDS} parts):",
    )
    for name, fig in (("now", now), ("before", before)):
        out.note(
            f"{name:<6} {fig['embedder']}, {fig['embedding_text']} text, "
            f"{fig['mean_tokens']:.0f} tokens/chunk: {fig['chunks_per_s']:.1f} chunks/s wall "
            f"({GOAL_CHUNKS} chunks in {fig['projected_goal_seconds'] / 60:.1f} min at this load); "
            f"{fig['cpu_ms_per_chunk']:.1f} ms CPU/chunk = {fig['idle_chunks_per_s']:.0f} chunks/s "
            f"on {fig['threads']} idle cores ({fig['idle_projected_goal_seconds'] / 60:.1f} min)"
        )
    out.note(
        f"= {rate / before['chunks_per_s']:.1f}x wall, "
        f"{now['idle_chunks_per_s'] / before['idle_chunks_per_s']:.1f}x CPU; goal {GOAL_CHUNKS} "
        f"chunks in <= {GOAL_SECONDS / 60:.0f} min on idle cores: {verdict(goal <= GOAL_SECONDS)}; "
        f"all {total} chunks of this corpus at this load: {projected / 60:.1f} min"
    )
    out.note(
        f"the other {written - len(sample.rows)} rows got synthetic vectors through embed_pending "
        f"(store + cache writes alone: {fill:.1f} s), so later stages run on a fully vectored table"
    )


def stage_embed_full(indexer: Indexer, out: Report) -> None:
    total = indexer.store.count()
    started = time.perf_counter()
    written = indexer.embed_pending()
    seconds = time.perf_counter() - started
    out.data["embed"] = {
        "mode": "full",
        "chunks": written,
        "seconds": round(seconds, 1),
        "chunks_per_s": round(written / seconds, 1),
        "total_chunks": total,
    }
    out.line(
        "3 embedding (full)",
        f"{written} chunks embedded for real via embed_pending in {seconds / 60:.1f} min "
        f"= {written / seconds:.1f} chunks/s",
    )


def stage_vector_index(indexer: Indexer, out: Report) -> None:
    """Build the ANN index and settle now (compact, full-text statistics made exact again after the
    vectors rewrote every row), so the no-change re-index does not pay for it."""
    started = time.perf_counter()
    built = indexer.store.ensure_vector_index()
    indexed = time.perf_counter() - started
    indexer.settle()
    total = time.perf_counter() - started
    out.data["vector_index"] = {
        "built": built,
        "index_seconds": round(indexed, 2),
        "with_optimize_seconds": round(total, 2),
    }
    out.line(
        "  vector index",
        f"ANN index {'built' if built else 'not built'} in {indexed:.1f} s, "
        f"+ settle = {total:.1f} s",
    )


# -- stage 4: no-change re-index -------------------------------------------------------------------


def stage_noop(indexer: Indexer, out: Report) -> None:
    started = time.perf_counter()
    report = indexer.update()
    wall = time.perf_counter() - started
    per_file_us = wall / max(report.files, 1) * 1e6
    out.data["noop_reindex"] = {
        "seconds": round(wall, 3),
        "files": report.files,
        "changed": report.changed,
        "us_per_file": round(per_file_us, 1),
        "timings": {k: round(v, 3) for k, v in report.timings.items()},
    }
    out.line(
        "4 no-change re-index",
        f"{wall * 1000:.0f} ms for {report.files} files ({report.changed} changed) = "
        f"{per_file_us:.0f} us/file ({timings_text(report.timings)})",
    )


# -- stage 5: single-file updates ------------------------------------------------------------------


def probe_files(indexer: Indexer, count: int, seed: int) -> list[str]:
    broken = set(indexer.manifest.flagged("syntax_errors"))
    candidates = [p for p in sorted(indexer.manifest.states()) if p.endswith(".py")]
    candidates = [p for p in candidates if p not in broken]
    return random.Random(seed).sample(candidates, min(count, len(candidates)))


def probe_source(name: str, index: int) -> str:
    return (
        f"\n\ndef {name}(value, scale=2):\n"
        f'    """Benchmark probe {index}: scales a value for the latency benchmark."""\n'
        "    return value * scale\n"
    )


def probe_name(rng: random.Random) -> str:
    """Two made-up words: no term shared with the corpus or another probe, so ranking is not tested."""
    letters = "bcdfghjklmnpqrstvwxz"
    return "_".join("".join(rng.choice(letters) for _ in range(7)) for _ in range(2))


@dataclass
class Found:
    found: bool
    searches: int
    seconds: float
    top: list[str]  # "path:symbol" of the last answer, to say what won when the probe did not


def wait_until_found(searcher: Searcher, name: str, deadline: float) -> Found:
    """Poll until `name` is the top result."""
    searches, spent = 0, 0.0
    while True:
        t0 = time.perf_counter()
        results = searcher.search(name, k=3)
        spent += time.perf_counter() - t0
        searches += 1
        if results and results[0].symbol.rsplit(".", 1)[-1] == name:
            return Found(True, searches, spent, [])
        if time.monotonic() > deadline:
            return Found(False, searches, spent, [f"{r.path}:{r.symbol}" for r in results])
        time.sleep(0.005)


@dataclass
class Updates:
    latencies: list[float] = field(default_factory=list)  # ms, write to found
    changes: list[float] = field(default_factory=list)  # ms in process_changes
    searching: list[float] = field(default_factory=list)  # ms searching until found
    stages: dict[str, list[float]] = field(default_factory=dict)  # IndexReport.timings, ms
    misses: list[dict[str, Any]] = field(default_factory=list)
    last_name: str = ""
    slowest: list[tuple[float, dict[str, float]]] = field(default_factory=list)  # ms, stages
    catch_ups: list[float] = field(default_factory=list)  # ms of each catch_up (upkeep)
    catch_up_after: list[int] = field(
        default_factory=list
    )  # the edit (latencies index) before each


def run_updates(indexer: Indexer, edits: int, seed: int) -> Updates:
    """Append a uniquely named function, hand the path over as the watcher would, poll search."""
    # The agent's long-lived searcher: it must follow the index as the watcher writes.
    chunks = ResidentChunks(indexer.store, indexer.manifest)
    searcher = Searcher(indexer.root, chunks, indexer.manifest, indexer.embedder)
    done, rng = Updates(), random.Random(seed)
    for i, path in enumerate(probe_files(indexer, edits, seed)):
        name = probe_name(rng)
        started = time.perf_counter()
        with open(indexer.root / path, "a", encoding="utf-8") as handle:
            handle.write(probe_source(name, i))
        report = indexer.process_changes([path])
        changed = time.perf_counter() - started
        found = wait_until_found(searcher, name, time.monotonic() + UPDATE_DEADLINE_S)
        if not found.found:
            done.misses.append({"path": path, "name": name, "top": found.top})
            continue
        done.latencies.append((time.perf_counter() - started) * 1000)
        done.changes.append(changed * 1000)
        done.searching.append(found.seconds * 1000)
        stages = {stage: seconds * 1000 for stage, seconds in report.timings.items()}
        stages["search"] = found.seconds * 1000
        for stage, ms in stages.items():
            done.stages.setdefault(stage, []).append(ms)
        done.slowest = sorted([*done.slowest, (done.latencies[-1], stages)], reverse=True)[:3]
        done.last_name = name
        # What the follower does next, in its own turn, when an update leaves upkeep due:
        # not part of this edit's wait, but an edit saved meanwhile waits for it.
        if indexer.upkeep_due:
            started = time.perf_counter()
            indexer.catch_up()
            done.catch_ups.append((time.perf_counter() - started) * 1000)
            done.catch_up_after.append(len(done.latencies) - 1)
    return done


def stage_updates(indexer: Indexer, edits: int, seed: int, out: Report) -> str:
    done = run_updates(indexer, edits, seed)
    out.data["update"] = {"edits": len(done.latencies), "not_found": done.misses}
    for miss in done.misses[:3]:
        out.note(f"not found: {miss['name']} in {miss['path']}; top: {', '.join(miss['top'])}")
    if not done.latencies:
        out.line("5 update->searchable", f"no edit became searchable ({len(done.misses)} tried)")
        return ""
    p50, p95 = pct(done.latencies, 50), pct(done.latencies, 95)
    medians = {k: round(statistics.median(v), 1) for k, v in done.stages.items()}
    out.data["update"] |= {
        "p50_ms": round(p50, 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(max(done.latencies), 1),
        "process_changes_p50_ms": round(pct(done.changes, 50), 1),
        "search_until_found_p50_ms": round(pct(done.searching, 50), 1),
        "stage_medians_ms": medians,
        "target_p95_ms": TARGET_UPDATE_P95_MS,
        "embedding": "local model (new chunk), cache for unchanged chunks",
    }
    out.line(
        "5 update->searchable",
        f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {max(done.latencies):.0f} ms over "
        f"{len(done.latencies)} edits ({len(done.misses)} never top), embeddings on; "
        f"target p95 < {TARGET_UPDATE_P95_MS:.0f} ms: {verdict(p95 < TARGET_UPDATE_P95_MS)}",
    )
    out.note(
        f"process_changes p50 {pct(done.changes, 50):.0f} ms + search until top p50 "
        f"{pct(done.searching, 50):.0f} ms; process_changes stage medians (ms): "
        + ", ".join(f"{k} {v:.0f}" for k, v in medians.items())
    )
    out.data["update"]["slowest"] = [
        {"ms": round(ms, 1), "stages_ms": {k: round(v, 1) for k, v in stages.items()}}
        for ms, stages in done.slowest
    ]
    for ms, stages in done.slowest:
        parts = ", ".join(f"{k} {v:.0f}" for k, v in stages.items() if v >= 1)
        out.note(f"slow edit: {ms:.0f} ms = {parts}")
    if done.catch_ups:
        # Before, the update that left upkeep due did it inside process_changes, so its edit
        # became searchable only after the rebuild: the same edits, with that time added.
        inline = list(done.latencies)
        for i, ms in zip(done.catch_up_after, done.catch_ups, strict=True):
            inline[i] += ms
        before = pct(inline, 95)
        out.data["update"] |= {
            "catch_up_ms": [round(ms, 1) for ms in done.catch_ups],
            "p95_ms_with_rebuild_inline": round(before, 1),
        }
        out.note(
            f"upkeep (full-text rebuild after {EXACT_WITHIN_UPDATES} updates in a row, optimize "
            f"every {OPTIMIZE_EVERY_WRITES} writes) in the follower's next turn once the edit is "
            "searchable: "
            + ", ".join(f"{ms:.0f} ms" for ms in done.catch_ups)
            + f"; with it inside the update (as before), p95 would be {before:.0f} ms, max "
            f"{max(inline):.0f} ms (ratio {p95 / before:.2f})"
        )
    return done.last_name


def check_long_lived_reader(reader: Searcher, name: str, out: Report) -> None:
    """A reader opened before the edits (as a separate REPL process or handle would hold it)."""
    found = wait_until_found(reader, name, time.monotonic() + 3.0)
    out.data["update"]["long_lived_reader_sees_update"] = found.found
    seen = "sees the last edit" if found.found else "does NOT see the last edit"
    out.note(
        f"a reader opened with Workspace.open_reader before the edits {seen} "
        f"({found.searches} searches in up to 3 s)"
    )


# -- stage 6: search latency -----------------------------------------------------------------------


def identifier_queries(indexer: Indexer, count: int, rng: random.Random) -> list[str]:
    names = [
        d.symbol
        for _, defs, _ in indexer.manifest.symbols()
        for d in defs
        if len(d.name) >= 4 and not d.name.startswith("mcbench_")
    ]
    return rng.sample(sorted(set(names)), count)


def bug_report(rng: random.Random, frames: list[tuple[str, int, str]], prose: list[str]) -> str:
    """A ~3 kB report as people write them: prose, the code that fails, a Python traceback through
    real corpus files, a log excerpt, the environment."""
    stack = rng.sample(frames, 6)
    lines = ["Traceback (most recent call last):"]
    for path, line, func in stack:
        lines.append(f'  File "/usr/lib/python3.11/{path}", line {line}, in {func}')
        lines.append(f"    result = {func}(*args, **kwargs)")
    lines.append(f"ValueError: unexpected state in {stack[-1][2]}() after retry")
    first = stack[0]
    module = first[0].removesuffix(".py").replace("/", ".")
    paragraphs = [
        "Since upgrading we see this intermittently in production when the worker restarts. "
        + " ".join(rng.sample(prose, 4)),
        "Steps to reproduce: start the service, send a few hundred requests, then reload the "
        "configuration while requests are in flight. Expected the reload to be transparent; "
        "instead the request fails with the traceback below and the worker stays unhealthy.",
        "```python\n"
        f"from {module} import {first[2]}\n\n"
        "for attempt in range(3):\n"
        f"    value = {first[2]}(payload, timeout=attempt + 1)\n"
        "    print(attempt, repr(value))\n"
        "```",
        "\n".join(lines),
        "Log around the failure:\n"
        + "\n".join(
            f"2024-05-{rng.randint(1, 28):02d}T12:{rng.randint(0, 59):02d}:00Z INFO "
            f"{p.rsplit('/', 1)[-1]} {f} finished in {rng.randint(1, 900)} ms"
            for p, _, f in rng.sample(frames, 14)
        ),
        "Environment: Linux x86_64, Python 3.11, 2 vCPU container, 4 GB RAM. "
        + " ".join(rng.sample(prose, 5)),
    ]
    return "\n\n".join(paragraphs)


def search_queries(
    indexer: Indexer, sample: CorpusSample, total: int, seed: int
) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    n_ident = total * 35 // 100
    n_prose = total * 35 // 100
    n_report = total - n_ident - n_prose
    frames = [
        (path, d.line, d.name)
        for path, defs, _ in indexer.manifest.symbols()
        for d in defs
        if d.kind in ("function", "method")
    ]
    prose = rng.sample(sample.docstrings, min(len(sample.docstrings), n_prose + 200))
    queries = [("identifier", q) for q in identifier_queries(indexer, n_ident, rng)]
    queries += [("docstring", q) for q in prose[:n_prose]]
    queries += [("bug report", bug_report(rng, frames, prose[n_prose:])) for _ in range(n_report)]
    rng.shuffle(queries)
    return queries


class SearchClock:
    """Wraps the store, manifest and embedder calls a search makes, to say where its time goes."""

    PARTS = (
        ("embed query", "embedder", "embed_query"),
        ("full text", "chunks", "full_text"),
        ("vector", "chunks", "nearest"),
        ("rows for paths", "chunks", "rows_for_paths"),
        ("chunk texts", "chunks", "text_heads"),
        ("defs lookup", "manifest", "definitions_named"),
        ("manifest paths", "manifest", "states"),
    )

    def __init__(self, searcher: Searcher) -> None:
        self.spent: dict[str, float] = {}
        self._restore: list[tuple[object, str]] = []
        for label, owner_name, method in self.PARTS:
            owner = getattr(searcher, owner_name)
            if owner is not None and hasattr(owner, method):
                setattr(owner, method, self._timed(label, getattr(owner, method)))
                self._restore.append((owner, method))

    def _timed(self, label: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.spent[label] = self.spent.get(label, 0.0) + time.perf_counter() - t0

        return timed

    def close(self) -> None:
        for owner, method in self._restore:
            delattr(owner, method)


def time_searches(searcher: Searcher, queries: list[tuple[str, str]]) -> dict[str, Any]:
    for _, query in queries[:5]:
        searcher.search(query)  # warm-up: model session, table handles, page cache
    clock = SearchClock(searcher)
    by_kind: dict[str, list[float]] = {}
    try:
        for kind, query in queries:
            t0 = time.perf_counter()
            searcher.search(query)
            by_kind.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
    finally:
        clock.close()
    every = [ms for values in by_kind.values() for ms in values]
    return {
        "queries": len(every),
        "p50_ms": round(pct(every, 50), 1),
        "p95_ms": round(pct(every, 95), 1),
        "by_kind": {
            k: {"n": len(v), "p50_ms": round(pct(v, 50), 1), "p95_ms": round(pct(v, 95), 1)}
            for k, v in sorted(by_kind.items())
        },
        "mean_ms_per_part": {k: round(v * 1000 / len(every), 2) for k, v in clock.spent.items()},
    }


def table_state(indexer: Indexer) -> dict[str, Any]:
    """Versions, fragments and rows the indexes do not cover yet: what makes a search slow.

    The fragment count reaches into the store's LanceDB table, which the store does not expose;
    best effort.
    """
    store = indexer.store
    state: dict[str, Any] = {"versions": store.version_count()}
    # Another lancedb version may have moved it: the figure is extra, never essential.
    with contextlib.suppress(Exception):
        state["fragments"] = store._table.stats()["fragment_stats"]["num_fragments"]
    state["unindexed_rows"] = store.unindexed_rows()
    return state


def state_text(state: dict[str, Any]) -> str:
    unindexed = state.get("unindexed_rows") or {}
    worst = max(unindexed.values(), default=0)
    return (
        f"{state['versions']} versions, {state.get('fragments', '?')} fragments, "
        f"up to {worst} rows outside the indexes"
    )


def report_search(
    out: Report, label: str, figures: dict[str, Any], chunks: int, report_chars: int
) -> None:
    hybrid, lexical = figures["hybrid"], figures["lexical_only"]
    ok = hybrid["p50_ms"] < TARGET_SEARCH_P50_MS
    out.line(
        label,
        f"hybrid p50 {hybrid['p50_ms']:.0f} ms, p95 {hybrid['p95_ms']:.0f} ms over "
        f"{hybrid['queries']} queries at {chunks} chunks; target p50 < "
        f"{TARGET_SEARCH_P50_MS:.0f} ms (at {TARGET_SEARCH_AT_CHUNKS}): {verdict(ok)}",
    )
    out.note(f"table: {state_text(figures['table'])}")
    for kind, kind_figures in hybrid["by_kind"].items():
        out.note(
            f"{kind:<11} n={kind_figures['n']:<3} p50 {kind_figures['p50_ms']:.0f} ms, "
            f"p95 {kind_figures['p95_ms']:.0f} ms"
        )
    parts = ", ".join(f"{k} {v:.1f}" for k, v in hybrid["mean_ms_per_part"].items())
    out.note(f"mean ms per query by part (the query embedding may overlap full text): {parts}")
    parts = ", ".join(f"{k} {v:.1f}" for k, v in lexical["mean_ms_per_part"].items())
    out.note(
        f"lexical only (no vector leg): p50 {lexical['p50_ms']:.0f} ms, "
        f"p95 {lexical['p95_ms']:.0f} ms; by part: {parts}"
    )
    one_shot = figures["one_shot"]
    parts = ", ".join(f"{k} {v:.1f}" for k, v in one_shot["mean_ms_per_part"].items())
    out.note(
        f"resident rows and vectors loaded in {figures['resident_load_seconds'] * 1000:.0f} ms; "
        f"without them (one-shot `mcode search`, every part a store query): "
        f"p50 {one_shot['p50_ms']:.0f} ms, p95 {one_shot['p95_ms']:.0f} ms; by part: {parts}"
    )
    reports = hybrid["by_kind"].get("bug report")
    if reports:
        # Issue 16's target holds for both ways a report is searched: the REPL and agent (rows
        # resident) and a one-shot `mcode search -` (every part a store query).
        cold = one_shot["by_kind"]["bug report"]
        ok = max(reports["p95_ms"], cold["p95_ms"]) <= TARGET_REPORT_P95_MS
        out.line(
            "  bug report search",
            f"p50 {reports['p50_ms']:.0f} ms, p95 {reports['p95_ms']:.0f} ms hybrid, resident "
            f"(one-shot: p50 {cold['p50_ms']:.0f} ms, p95 {cold['p95_ms']:.0f} ms) for "
            f"{reports['n']} reports of median {report_chars} chars at {chunks} chunks; "
            f"target p95 <= {TARGET_REPORT_P95_MS:.0f} ms: {verdict(ok)}",
        )


def measure_search(indexer: Indexer, queries: list[tuple[str, str]]) -> dict[str, Any]:
    """A long-lived searcher (rows and vectors resident, as in the REPL and the agent), hybrid and
    lexical only, and the one-shot `mcode search` path that reads the store for every part."""
    store, manifest, root = indexer.store, indexer.manifest, indexer.root
    resident = ResidentChunks(store, manifest)
    started = time.perf_counter()
    resident.refresh()
    load_s = time.perf_counter() - started
    return {
        "table": table_state(indexer),
        "resident_load_seconds": round(load_s, 3),
        "hybrid": time_searches(Searcher(root, resident, manifest, indexer.embedder), queries),
        "lexical_only": time_searches(Searcher(root, resident, manifest, None), queries),
        "one_shot": time_searches(Searcher(root, store, manifest, indexer.embedder), queries),
    }


def stage_search(
    indexer: Indexer, sample: CorpusSample, total: int, seed: int, out: Report, vectors: str
) -> None:
    """Twice: as the single-file updates left the table, and after an optimize folded them in."""
    queries = search_queries(indexer, sample, total, seed)
    chunks = indexer.store.count()
    sizes = [len(q) for k, q in queries if k == "bug report"]
    chars = int(statistics.median(sizes)) if sizes else 0
    after_updates = measure_search(indexer, queries)
    started = time.perf_counter()
    indexer.store.optimize()
    optimize_s = time.perf_counter() - started
    optimized = measure_search(indexer, queries)
    out.data["search"] = {
        "chunks": chunks,
        "vectors": vectors,
        "bug_report_chars_median": chars,
        "after_updates": after_updates,
        "optimize_seconds": round(optimize_s, 2),
        "after_optimize": optimized,
        "target_p50_ms": TARGET_SEARCH_P50_MS,
        "target_bug_report_p95_ms": TARGET_REPORT_P95_MS,
    }
    out.note(
        f"queries: {len(queries)} (identifiers, docstring sentences, bug reports of median "
        f"{out.data['search']['bug_report_chars_median']} chars with a traceback); "
        f"vectors: {vectors}"
    )
    report_search(out, "6 search, after edits", after_updates, chunks, chars)
    out.note(f"store.optimize() took {optimize_s:.1f} s")
    report_search(out, "6 search, optimized", optimized, chunks, chars)


def stage_repo_map(indexer: Indexer, out: Report, runs: int = 5) -> None:
    """Each run builds the graph from the manifest, as a `mcode map` process does."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        repo_map = repo_map_from_manifest(indexer.manifest, 2048)
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    out.data["repo_map"] = {
        "tokens": 2048,
        "seconds": round(seconds, 3),
        "runs_s": [round(t, 3) for t in times],
    }
    out.line(
        "  repo map",
        f"2,048-token map of the whole corpus from the manifest in {seconds * 1000:.0f} ms, "
        f"median of {runs} (best {min(times) * 1000:.0f} ms; {len(repo_map.text)} chars)",
    )


# -- stage 7: `mcode --help` -----------------------------------------------------------------------


def wall_times(argv: list[str], env: dict[str, str], runs: int = 5) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return times


def stage_help(work: Path, out: Report) -> None:
    """As an installed mcode starts: with its bytecode cached. A PYTHONDONTWRITEBYTECODE inherited
    from the shell (some sandboxes set it) would recompile every module of an editable install on
    every run; one untimed run writes the cache."""
    env = dict(os.environ, XDG_CONFIG_HOME=str(work / "config"), XDG_CACHE_HOME=str(work / "cache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    mcode = Path(sys.executable).with_name("mcode")
    argv = [str(mcode), "--help"] if mcode.exists() else [sys.executable, "-m", "mcode", "--help"]
    wall_times(argv, env, runs=1)
    helps = wall_times(argv, env)
    passes = wall_times([sys.executable, "-c", "pass"], env)
    best, median = min(helps), statistics.median(helps)
    out.data["help"] = {
        "best_s": round(best, 3),
        "median_s": round(median, 3),
        "python_pass_best_s": round(min(passes), 3),
        "python_pass_median_s": round(statistics.median(passes), 3),
        "target_s": TARGET_HELP_S,
    }
    out.line(
        "7 mcode --help",
        f"best {best:.3f} s, median {median:.3f} s (python -c pass: best {min(passes):.3f} s, "
        f"median {statistics.median(passes):.3f} s); target < {TARGET_HELP_S} s: "
        f"{verdict(median < TARGET_HELP_S)}",
    )


# -- stage 8: memory -------------------------------------------------------------------------------


def stage_rss(out: Report, children_before_help: float) -> None:
    self_mb = max_rss_mb()
    children_mb = max_rss_mb(resource.RUSAGE_CHILDREN)
    worker_mb = out.data["cold_lexical"]["worker_peak_rss_mb"]
    out.data["rss"] = {
        "self_peak_mb": round(self_mb, 1),
        "index_worker_peak_mb": worker_mb,
        "children_peak_mb": round(children_mb, 1),
        "children_peak_before_help_mb": round(children_before_help, 1),
    }
    marks = out.data["peak_rss_after_mb"]
    out.line(
        "8 peak RSS",
        f"this process {self_mb:.0f} MB; largest index worker {worker_mb:.0f} MB (VmHWM from /proc)",
    )
    out.note(
        "this process, peak so far after each stage (MB): "
        + ", ".join(f"{k} {v:.0f}" for k, v in marks.items())
    )
    out.note(
        f"RUSAGE_CHILDREN {children_mb:.0f} MB ({children_before_help:.0f} MB before the --help runs): "
        "on Linux a child's figure includes the parent's pages at fork, and the pool's workers are "
        "children of the forkserver, so it is an upper bound, not the workers' peak"
    )


# -- the run ---------------------------------------------------------------------------------------


def machine(out: Report, corpus: Path) -> None:
    out.data["machine"] = {
        "cpus": os.cpu_count(),
        "load_start": load(),
        "python": sys.version.split()[0],
        "corpus": str(corpus),
    }
    out.line(
        "machine",
        f"{os.cpu_count()} CPUs, load average {load()} at start, Python {sys.version.split()[0]}",
    )


@contextmanager
def workspace(keep: bool, base: str | None) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="mcode-bench-", dir=base))
    try:
        yield work
    finally:
        if keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, out: Report, work: Path) -> None:
    corpus = Path(args.corpus)
    machine(out, corpus)
    repo = work / "repo"
    files, seconds = copy_corpus(corpus, repo)
    out.line("corpus", f"{corpus}: {files} files copied and committed to git in {seconds:.1f} s")
    settings = make_settings(work, repo)
    if args.embed_only:
        run_embed_only(settings, args, out)
        return
    raw, inputs = stage_raw_parse(settings, out)
    out.mark("raw parse")
    stage_cold(work, repo, raw, inputs, out)
    stage_secret_scan(settings, out)
    if args.cold_only:
        return
    indexer, lock = open_writer(settings)
    try:
        out.mark("cold index")
        sample = sample_rows(indexer, args.sample, args.seed)
        out.mark("sampling")
        if args.full_embed:
            stage_embed_full(indexer, out)
            vectors = "all real (--full-embed)"
        else:
            stage_embed_sample(indexer, sample, out)
            vectors = f"{len(sample.rows)} real (sample), the rest synthetic"
        out.mark("embed")
        stage_vector_index(indexer, out)
        out.mark("vector index")
        stage_noop(indexer, out)
        out.mark("no-change re-index")
        # Lexical only: the check is about seeing new rows, and a second model would skew the RSS.
        opened = Workspace.open_reader(settings)
        resident = ResidentChunks(opened.store, opened.manifest)
        reader = Searcher(settings.paths.repo, resident, opened.manifest, None)
        last = stage_updates(indexer, args.edits, args.seed, out)
        out.mark("updates")
        if last:
            check_long_lived_reader(reader, last, out)
        stage_search(indexer, sample, args.queries, args.seed, out, vectors)
        out.mark("search")
        stage_repo_map(indexer, out)
    finally:
        lock.release()
    children_before_help = max_rss_mb(resource.RUSAGE_CHILDREN)
    stage_help(work, out)
    stage_rss(out, children_before_help)
    out.data["machine"]["load_end"] = load()
    out.line("machine", f"load average {load()} at end")


def run_embed_only(settings: Settings, args: argparse.Namespace, out: Report) -> None:
    """One lexical build in this process, then the embedding stage alone."""
    indexer, lock = open_writer(settings)
    try:
        indexer.update(embed=False)
        stage_embed_sample(indexer, sample_rows(indexer, args.sample, args.seed), out)
    finally:
        lock.release()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=sysconfig.get_paths()["stdlib"], help="tree to copy")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    parser.add_argument("--full-embed", action="store_true", help="embed every chunk for real")
    parser.add_argument("--sample", type=int, default=1000, help="chunks embedded by the model")
    parser.add_argument("--edits", type=int, default=40, help="single-file updates to time")
    parser.add_argument("--queries", type=int, default=100, help="search queries to time")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--cold-only", action="store_true", help="stop after the cold builds and the secret scan"
    )
    parser.add_argument(
        "--embed-only", action="store_true", help="one lexical build, then the embedding stage only"
    )
    parser.add_argument("--tmp", default=None, help="parent of the temporary work directory")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # lance's Rust logger writes deprecation warnings to stderr; keep the figures readable.
    os.environ.setdefault("LANCEDB_LOG", "error")
    out = Report(as_json=args.json)
    started = time.perf_counter()
    with workspace(args.keep, args.tmp) as work:
        run(args, out, work)
    out.data["seconds"] = round(time.perf_counter() - started, 1)
    out.line("run", f"{out.data['seconds']:.0f} s in all")
    if args.json:
        print(json.dumps(out.data, indent=1))


if __name__ == "__main__":
    main()
