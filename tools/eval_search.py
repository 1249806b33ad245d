#!/usr/bin/env python3
"""Retrieval quality of `mcode search`, next to a whole-file BM25 baseline computed in the same run.

Four tasks, all offline once the corpus is on disk (tools/README.md says how to fetch one):

  stdlib   A docstring is the query; its function, with the docstring removed from the corpus, is the
           target. Corpus: the top-level modules of this Python's standard library (override: --corpus).
  git      A commit message is the query; the files that commit changed (and that still exist) are the
           targets. Corpus: any git repository at HEAD (default: this one).
  patches  A patch's message (git format-patch or DEP-3, trailers and diffstat removed) is the query;
           the files it patches are the targets. Corpus: a Debian source package's upstream tree,
           unpacked with its patches not applied, without debian/.
  bugs     A bug report as its reporter wrote it (tools/data/bugs.json) is the query; the non-test files
           its fix changed are the targets. Corpus: each repository at the fix's parent commit.

For each, Acc@1/5/10 (is a target among the first k results) for the file level — mcode's hybrid search
pooled to files against BM25 over whole files — and, for stdlib, mcode's symbol level too. The
ablations show what each signal is worth: lexical only against hybrid, and for bugs, `--ablation`
ranks each report's candidates again with each ranking signal switched off (indexed once per tree).
`--weights fts=1,symbol=2,...` ranks with other weights than the shipped ones (tools/fit_search.py
fits them).

For stdlib, git and patches, `--summaries` also measures module summaries (issue 13) in the same
run: off, structural (the sleep pass without a model, over the corpus as indexed: for stdlib, the
one whose query docstrings were removed), and model (the pass with `sleep_model` set to a scripted
stand-in on 127.0.0.1, tools/summary_server.py, which measures the plumbing, not a real model's
quality). With summaries, each `--summary-weight` is one row: how much a summary hit counts for its
file (`Weights.summary`).

    python tools/eval_search.py stdlib [--sample 600] [--lexical-only] [--weights K=V,...] [--json]
    python tools/eval_search.py git [--repo PATH] [--json]
    python tools/eval_search.py patches --source DIR [--json]
    python tools/eval_search.py bugs [--repos DIR] [--hybrid] [--ablation] [--json]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import inspect
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path

from mcode.embed.local import DEFAULT_MAX_TOKENS
from mcode.index.rows import DEFAULT_EMBEDDING_STYLE, EMBEDDING_STYLES
from mcode.retrieval.ranking import SIGNALS, Candidate, Weights, rank_files

KS = (1, 5, 10)
_TOKEN = re.compile(r"[A-Za-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
    ]
)


# -- the baseline -------------------------------------------------------------------------------


def bm25_tokens(text: str) -> list[str]:
    return [t for t in (m.lower() for m in _TOKEN.findall(text)) if t not in _STOP]


class WholeFileBM25:
    """Okapi BM25 (k1=1.2, b=0.75) over whole files: the baseline the issue asks for."""

    def __init__(self, docs: dict[str, str], k1: float = 1.2, b: float = 0.75) -> None:
        self._build({path: Counter(bm25_tokens(text)) for path, text in docs.items()}, k1, b)

    @classmethod
    def from_counts(cls, tfs: dict[str, Counter[str]]) -> WholeFileBM25:
        """From each file's token counts, which a caller may keep across trees (by blob)."""
        bm25 = cls.__new__(cls)
        bm25._build(tfs, 1.2, 0.75)
        return bm25

    def _build(self, tfs: dict[str, Counter[str]], k1: float, b: float) -> None:
        self.paths = list(tfs)
        self.tfs = [tfs[p] for p in self.paths]
        self.lengths = [sum(tf.values()) for tf in self.tfs]
        self.avg = sum(self.lengths) / max(1, len(self.lengths))
        df: Counter[str] = Counter()
        for tf in self.tfs:
            df.update(tf.keys())
        n = len(self.paths)
        self.idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        self.k1, self.b = k1, b

    def search(self, query: str, k: int) -> list[str]:
        terms = set(bm25_tokens(query))
        scores = []
        for path, tf, length in zip(self.paths, self.tfs, self.lengths, strict=True):
            score = 0.0
            norm = self.k1 * (1 - self.b + self.b * length / self.avg)
            for term in terms:
                f = tf.get(term)
                if f:
                    score += self.idf[term] * f * (self.k1 + 1) / (f + norm)
            if score:
                scores.append((score, path))
        scores.sort(reverse=True)
        return [p for _, p in scores[:k]]


# -- mcode, in process ---------------------------------------------------------------------------


def parse_weights(text: str) -> Weights:
    """`fts=1,symbol=2.5`: the shipped weights with these changed (empty: the shipped ones)."""
    known = [f.name for f in fields(Weights)]
    changed = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = (part.strip() for part in item.partition("="))
        if name not in known:
            raise argparse.ArgumentTypeError(f"unknown signal {name!r} (one of {', '.join(known)})")
        try:
            changed[name] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not NAME=NUMBER") from None
    return Weights(**changed)


def weights_text(weights: Weights) -> str:
    """The `--weights` argument that gives these weights."""
    return ",".join(f"{f.name}={getattr(weights, f.name):g}" for f in fields(Weights))


def build_index(repo: Path, args: argparse.Namespace, embed: bool) -> tuple[dict, object]:
    """Index `repo` with mcode's real pipeline; vectors cached in `args.cache` across runs.

    The vectors come from the local model reading `args.embed_tokens` tokens of each chunk's text in
    `args.embedding_text` style (mcode's defaults unless the flags say otherwise), so that the
    quality of each variant can be measured by name."""
    index = RepoIndex(repo, args, embed)
    try:
        info = index.update()
    finally:
        index.close()
    return info, index.workspace()


class RepoIndex:
    """mcode's index of one working tree, kept open so that each `update` after the tree changed
    (another commit checked out) re-indexes only the files that changed."""

    def __init__(self, repo: Path, args: argparse.Namespace, embed: bool) -> None:
        os.environ["XDG_CACHE_HOME"] = str(Path(args.cache))
        os.environ["XDG_CONFIG_HOME"] = str(repo.parent / "config")
        from mcode.config import Paths, load_settings
        from mcode.embed import CachedEmbedder, EmbeddingCache, LocalEmbedder
        from mcode.index.pipeline import open_index

        self.settings = load_settings(
            Paths.for_repo(repo), overrides={"embedding_model": "local" if embed else "none"}
        )
        self.embed = embed
        self.embedder = None
        if embed:
            local = LocalEmbedder(max_tokens=args.embed_tokens, cache_dir=self.settings.paths.cache)
            self.embedder = CachedEmbedder(local, EmbeddingCache.in_dir(self.settings.paths.cache))
        self.embedding_text = args.embedding_text
        self.indexer, self.lock = open_index(
            self.settings, self.embedder, embedding_style=args.embedding_text
        )

    def update(self) -> dict:
        started = time.perf_counter()
        report = self.indexer.update(embed=self.embed)
        return {
            "files": report.files,
            "chunks": report.total_chunks,
            "seconds": round(time.perf_counter() - started, 1),
            "embedder": report.embedder,
            "embedding_text": self.embedding_text,
        }

    def workspace(self):  # -> mcode.retrieval.workspace.Workspace
        from mcode.retrieval.workspace import Workspace

        return Workspace(self.settings, self.indexer.store, self.indexer.manifest, self.embedder)

    def close(self) -> None:
        self.lock.release()


SUMMARY_MODES = ("off", "structural", "model")
SUMMARY_WEIGHTS = [0.5, 1.0, 2.0]


def summary_modes(text: str) -> list[str]:
    """The modes asked for, in the order they can be run: a model pass redoes structural summaries,
    but a structural pass leaves model ones in place."""
    modes = {m.strip() for m in text.split(",") if m.strip()}
    if not modes or not modes <= set(SUMMARY_MODES):
        raise argparse.ArgumentTypeError(f"use some of {', '.join(SUMMARY_MODES)}, comma-separated")
    return [m for m in SUMMARY_MODES if m in modes]


def weights(text: str) -> list[float]:
    return [float(w) for w in text.split(",") if w.strip()]


def summarise(workspace, mode: str, server) -> dict:
    """Bring the index's module summaries to `mode` with one sleep pass (vectors off: search reads
    summaries by full text). A model pass after a structural one redoes every file."""
    from mcode.sleep import run_pass

    settings = replace(workspace.settings, embedding_model="none")
    if mode == "model":
        settings = replace(
            settings,
            sleep_model=server.model,
            api_base=server.url,
            api_keys={"OPENAI_API_KEY": "sk-scripted"},
            sleep_budget_tokens_per_day=10**12,
            sleep_pass_tokens=10**12,
        )
    started = time.perf_counter()
    report = run_pass(settings)
    return {
        "files": len(report.files),
        "dirs": report.dirs,
        "generators": report.generators,
        "tokens": report.tokens,
        "seconds": round(time.perf_counter() - started, 1),
        "note": report.note,
    }


def summary_variants(
    workspace, args: argparse.Namespace, results: dict, tag: str
) -> Iterator[tuple[str, object]]:
    """(row name, searcher) for each summary mode and weight asked for, the pass for each mode
    run just before its rows; what each pass did goes into `results`."""
    shutil.rmtree(workspace.settings.paths.summaries, ignore_errors=True)  # a fresh start
    server = None
    try:
        for mode in args.summaries:
            if mode == "off":
                searcher = workspace.searcher(summaries=False)
                searcher.weights = args.weights
                yield f"mcode {tag}", searcher
                continue
            if mode == "model" and server is None:
                from summary_server import SummaryServer

                server = SummaryServer().start()
            results.setdefault("summary_passes", {})[f"{tag}, {mode}"] = summarise(
                workspace, mode, server
            )
            if server is not None:
                results["summary_passes"][f"{tag}, {mode}"]["server_tokens"] = (
                    server.prompt_tokens + server.completion_tokens
                )
            for weight in args.summary_weight:
                searcher = workspace.searcher()
                searcher.weights = replace(args.weights, summary=weight)
                yield f"mcode {tag}, {mode} summaries w={weight:g}", searcher
    finally:
        if server is not None:
            server.stop()


@dataclass
class Scores:
    hits: dict[int, int]
    n: int = 0

    def add(self, ranked: list[bool]) -> None:
        self.n += 1
        for k in KS:
            if any(ranked[:k]):
                self.hits[k] += 1

    def as_dict(self) -> dict[str, float]:
        return {f"acc@{k}": round(self.hits[k] / max(1, self.n), 3) for k in KS}


def new_scores() -> Scores:
    return Scores({k: 0 for k in KS})


def line(name: str, scores: Scores) -> str:
    cells = "  ".join(f"Acc@{k} {scores.hits[k] / max(1, scores.n):6.1%}" for k in KS)
    return f"  {name:<36} {cells}   (n={scores.n})"


# -- task 1: stdlib docstring -> function ------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    path: str
    symbol: str
    line: int
    query: str


def strip_docstrings(
    source: str, path: str, rng: random.Random, want: int
) -> tuple[str, list[Target]]:
    """Remove the docstrings of some documented functions; they become the queries."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source, []
    found: list[tuple[ast.AST, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(child)
                if doc and len(doc) >= 40 and len(child.body) > 1:
                    found.append((child, prefix + child.name))

    visit(tree, "")
    chosen = sorted(rng.sample(found, min(want, len(found))), key=lambda c: c[0].lineno)
    lines = source.split("\n")
    targets = []
    removed = 0  # lines deleted above the current function, which move it up
    for node, symbol in chosen:
        doc_node = node.body[0]
        query = inspect.cleandoc(ast.get_docstring(node) or "")
        targets.append(Target(path, symbol, node.lineno - removed, query))
        removed += doc_node.end_lineno - doc_node.lineno + 1
    for node, _ in reversed(chosen):
        doc_node = node.body[0]
        del lines[doc_node.lineno - 1 : doc_node.end_lineno]
    return "\n".join(lines), targets


def prepare_stdlib(src: Path, dest: Path, sample: int, seed: int) -> list[Target]:
    rng = random.Random(seed)
    files = sorted(p for p in src.glob("*.py") if p.is_file())
    per_file = max(1, math.ceil(sample * 2 / max(1, len(files))))
    targets: list[Target] = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        text, found = strip_docstrings(text, path.name, rng, per_file)
        (dest / path.name).write_text(text, encoding="utf-8")
        targets.extend(found)
    rng.shuffle(targets)
    return sorted(targets[:sample], key=lambda t: (t.path, t.line))


def run_stdlib(args: argparse.Namespace) -> dict:
    corpus = Path(args.corpus or sysconfig.get_paths()["stdlib"])
    work = Path(tempfile.mkdtemp(prefix="mcode-eval-stdlib-"))
    repo = work / "repo"
    repo.mkdir()
    targets = prepare_stdlib(corpus, repo, args.sample, args.seed)
    git_init(repo)
    docs = {p.name: p.read_text(encoding="utf-8") for p in repo.glob("*.py")}
    bm25 = WholeFileBM25(docs)
    results: dict = {
        "task": "stdlib docstring -> function",
        "targets": len(targets),
        "corpus_files": len(docs),
    }
    rows: dict[str, Scores] = {}
    for embed in (False,) if args.lexical_only else (False, True):
        info, workspace = build_index(repo, args, embed)
        results[f"index_{'hybrid' if embed else 'lexical'}"] = info
        tag = "hybrid" if embed else "lexical only"
        for name, searcher in summary_variants(workspace, args, results, tag):
            symbol, files = new_scores(), new_scores()
            misses = 0
            for t in targets:
                hits = searcher.search(t.query, k=10)
                found = [h.path == t.path and h.symbol == t.symbol for h in hits]
                symbol.add(found)
                if embed and not any(found[:1]) and misses < args.show_misses:
                    misses += 1
                    print(f"MISS {t.path}:{t.line} {t.symbol}: {t.query[:100]!r}", file=sys.stderr)
                    for h in hits[:3]:
                        print(
                            f"    {h.path}:{h.start_line}-{h.end_line} {h.symbol} ({h.kind}) "
                            f"{h.score:.4f}",
                            file=sys.stderr,
                        )
                file_hits = searcher.search(t.query, k=10, level="file")
                files.add([h.path == t.path for h in file_hits])
            rows[f"{name}, symbol level"] = symbol
            rows[f"{name}, file level"] = files
    base = new_scores()
    for t in targets:
        base.add([p == t.path for p in bm25.search(t.query, 10)])
    rows["BM25 whole files (baseline)"] = base
    results["scores"] = {name: s.as_dict() for name, s in rows.items()}
    results["report"] = [line(name, s) for name, s in rows.items()]
    shutil.rmtree(work, ignore_errors=True)
    return results


# -- task 2: change description -> changed files ---------------------------------------------------

# Not source: a change that touches only these is not a retrieval target for code search.
_NOT_SOURCE = (".md", ".toml", ".txt", ".json", ".lock", ".yaml", ".yml")
# Trailers and DEP-3 fields: bookkeeping, not description. Lines "Key: value" with these keys are
# dropped from a message, wherever they stand; so are keys ending in "-by", "Bug-*", "X-*" and
# "Autobuild-*".
_TRAILERS = frozenset(
    [
        "author",
        "from",
        "date",
        "origin",
        "bug",
        "forwarded",
        "last-update",
        "applied-upstream",
        "patch-name",
        "gbp-pq",
        "cc",
        "fixes",
        "change-id",
        "link",
        "closes",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "message-id",
        "in-reply-to",
        "references",
    ]
)
_TRAILER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)(?:\([^)]*\))?:\s")
_DIFFSTAT = re.compile(r"^ \S.* \| +(\d+ ?[+-]*|Bin .*)$|^ \d+ files? changed")


def is_trailer(text: str) -> bool:
    match = _TRAILER.match(text)
    if not match:
        return False
    key = match.group(1).lower()
    return key in _TRAILERS or key.endswith("-by") or key.startswith(("bug-", "x-", "autobuild"))


def clean_message(message: str) -> str:
    """A change description as its author wrote it, without trailers, diffstat or cherry-pick notes."""
    kept = []
    for text in message.split("\n"):
        if is_trailer(text) or _DIFFSTAT.match(text) or text.startswith("(cherry picked from"):
            continue
        kept.append(text.rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def strip_area(message: str) -> str:
    """The message without its subject's "area: " prefixes, which often name the changed file."""
    return re.sub(r"^(?:[\w.,/*{}+-]+: )+", "", message, count=1)


def source_targets(files: list[str], existing: set[str], max_files: int) -> list[str] | None:
    """The changed files a search could return, or None when the change is no usable query."""
    source = [f for f in dict.fromkeys(files) if f in existing and not f.endswith(_NOT_SOURCE)]
    return source if 1 <= len(source) <= max_files else None


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def git_init(repo: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "eval",
        "GIT_AUTHOR_EMAIL": "e@x",
        "GIT_COMMITTER_NAME": "eval",
        "GIT_COMMITTER_EMAIL": "e@x",
    }
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "corpus"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, env=env, capture_output=True)


Change = tuple[str, list[str]]  # (description, target files)


def history(repo: Path, max_files: int) -> list[Change]:
    out = git(repo, "log", "--no-merges", "--name-only", "--format=%x00%H%x01%B%x02")
    existing = set(git(repo, "ls-files").splitlines())
    commits = []
    for record in out.split("\x00")[1:]:
        _, rest = record.split("\x01", 1)
        message, names = rest.split("\x02", 1)
        message = clean_message(message)
        targets = source_targets(names.split("\n"), existing, max_files)
        if len(message) >= 20 and targets:
            commits.append((message, targets))
    return commits


def parse_patch(text: str) -> tuple[str, list[str]]:
    """The description and the patched paths (first component stripped, as quilt's -p1) of a patch.

    Reads `git format-patch` output (mail headers, body, "---", diffstat), `git show` output (its
    message indented by four spaces) and DEP-3 headers (Description/Subject with continuation
    lines). Nothing of the diff goes into the description.
    """
    lines = text.split("\n")
    start = next(
        (
            i
            for i, t in enumerate(lines)
            if t.startswith(("diff ", "Index: ", "==========="))
            or (t.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "))
        ),
        len(lines),
    )
    header, diff = lines[:start], lines[start:]
    if "---" in header:  # format-patch: what follows the separator is the diffstat
        header = header[: header.index("---")]
    if any(re.match(r"commit [0-9a-f]{40}", t) for t in header):
        header = [
            t[4:] if t.startswith("    ") else t for t in header if not t.startswith("commit ")
        ]
    parts: list[str] = []
    field = None  # the field whose continuation lines (led by white space) follow: keep or skip
    for t in header:
        if field and t[:1] in (" ", "\t"):
            if field == "keep":
                parts.append("" if t.strip() == "." else t.strip())
            continue
        field = None
        if re.match(r"From [0-9a-f]{40} ", t):
            continue
        m = _TRAILER.match(t)
        if m and m.group(1).lower() in ("subject", "description"):
            parts.append(re.sub(r"^\[PATCH[^\]]*\]\s*", "", t[m.end() :].strip()))
            field = "keep"
        elif is_trailer(t):
            field = "skip"
        else:
            parts.append(t)
    files = []
    for i, t in enumerate(diff):
        if t.startswith("+++ "):
            path = t[4:].split("\t")[0].strip()
            if path == "/dev/null" and i > 0 and diff[i - 1].startswith("--- "):
                path = diff[i - 1][4:].split("\t")[0].strip()
            if "/" in path:
                files.append(path.split("/", 1)[1])
    return clean_message("\n".join(parts)), files


def debian_patches(
    source: Path, max_files: int, scope: Callable[[str], bool]
) -> tuple[list[Change], int]:
    """Changes from debian/patches (in series order), and how many patches were read.

    A change is kept only when all its targets are in `scope`: a patch that also touches a file left
    out of the corpus is dropped, not shortened.
    """
    patches = source / "debian" / "patches"
    series = patches / "series"
    if series.exists():
        names = [
            t.split()[0]
            for t in series.read_text().splitlines()
            if t.strip() and not t.lstrip().startswith("#")
        ]
    else:
        names = sorted(p.name for p in patches.iterdir() if p.suffix in (".patch", ".diff"))
    existing = set(upstream_files(source))
    changes = []
    for name in names:
        message, files = parse_patch((patches / name).read_text(encoding="utf-8", errors="replace"))
        targets = source_targets(files, existing, max_files)
        if len(message) >= 20 and targets and all(scope(t) for t in targets):
            changes.append((message, targets))
    return changes, len(names)


def upstream_files(source: Path) -> list[str]:
    rels = (p.relative_to(source).as_posix() for p in source.rglob("*") if not p.is_dir())
    return sorted(rel for rel in rels if not is_packaging(rel))


def path_scope(only: list[str], exclude: list[str]) -> Callable[[str], bool]:
    """Whether a path is in the corpus: under one of `only` (if any) and under none of `exclude`."""

    def under(rel: str, prefixes: list[str]) -> bool:
        return any(rel == p.rstrip("/") or rel.startswith(p.rstrip("/") + "/") for p in prefixes)

    return lambda rel: (not only or under(rel, only)) and not under(rel, exclude)


def is_packaging(rel: str) -> bool:
    """debian/ (it holds the patches: the answers) and quilt's state are not the upstream tree."""
    return rel.split("/", 1)[0] in ("debian", ".pc", ".git")


def evaluate_changes(
    repo: Path, changes: list[Change], args: argparse.Namespace, results: dict
) -> dict:
    """mcode (lexical, hybrid) and whole-file BM25 at the file level over the git tree `repo`."""
    if args.strip_area:
        changes = [(strip_area(message), files) for message, files in changes]
    docs = {}
    for rel in git(repo, "ls-files").splitlines():
        try:
            docs[rel] = (repo / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    bm25 = WholeFileBM25(docs)
    results.update(queries=len(changes), corpus_files=len(docs))
    rows: dict[str, Scores] = {}
    for embed in (False,) if args.lexical_only else (False, True):
        info, workspace = build_index(repo, args, embed)
        results[f"index_{'hybrid' if embed else 'lexical'}"] = info
        tag = "hybrid" if embed else "lexical only"
        for name, searcher in summary_variants(workspace, args, results, tag):
            scores = new_scores()
            for message, files in changes:
                scores.add([h.path in files for h in searcher.search(message, k=10, level="file")])
            rows[f"{name}, file level"] = scores
    base = new_scores()
    for message, files in changes:
        base.add([p in files for p in bm25.search(message, 10)])
    rows["BM25 whole files (baseline)"] = base
    results["scores"] = {name: s.as_dict() for name, s in rows.items()}
    results["report"] = [line(name, s) for name, s in rows.items()]
    return results


def run_git(args: argparse.Namespace) -> dict:
    src = Path(args.repo).resolve()
    work = Path(tempfile.mkdtemp(prefix="mcode-eval-git-"))
    repo = work / "repo"
    subprocess.run(["git", "clone", "-q", str(src), str(repo)], check=True)
    results = {"task": "commit message -> changed files", "repo": str(src)}
    evaluate_changes(repo, history(repo, args.max_files), args, results)
    shutil.rmtree(work, ignore_errors=True)
    return results


def run_patches(args: argparse.Namespace) -> dict:
    source = Path(args.source).resolve()
    if not (source / "debian" / "patches").is_dir():
        raise SystemExit(f"{source}: no debian/patches (unpack with dpkg-source --skip-patches -x)")
    applied = source / ".pc" / "applied-patches"
    if applied.exists() and applied.read_text().strip():
        raise SystemExit(f"{source}: patches applied: unpack with dpkg-source --skip-patches -x")
    scope = path_scope(args.only, args.exclude)
    changes, read = debian_patches(source, args.max_files, scope)
    work = Path(tempfile.mkdtemp(prefix="mcode-eval-patches-"))
    repo = work / "repo"
    for rel in filter(scope, upstream_files(source)):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, repo / rel, follow_symlinks=False)
    git_init(repo)
    results = {"task": "patch description -> patched files", "source": str(source), "patches": read}
    if args.only or args.exclude:
        results.update(only=args.only, exclude=args.exclude)
    evaluate_changes(repo, changes, args, results)
    shutil.rmtree(work, ignore_errors=True)
    return results


# -- task 4: bug report -> files its fix changed ----------------------------------------------------

BUGS_DATA = Path(__file__).resolve().parent / "data" / "bugs.json"
# The reports' text is the reporters' own words on GitHub: fetched once (tools/fetch_bug_texts.py),
# kept beside the corpora, never shipped in this repository.
BUG_TEXTS = Path.home() / ".cache" / "mcode-eval" / "bug-texts.json"
HUB_DEPTH = 5  # hubness: how often one file sits in the top 5, whatever the report is about


def bug_query(report: dict) -> str:
    """What a user pastes: the issue's title and its description as the reporter wrote it."""
    return f"{report['title']}\n\n{report['body']}"


def bug_key(report: dict) -> str:
    """`owner/name#N`: how the texts file and the split name a report."""
    return f"{report['repo']}#{report['issue']}"


def bug_split(report: dict) -> str:
    """A stable half of the reports for tuning ("dev") and the other half for checking ("test")."""
    digest = hashlib.sha1(bug_key(report).encode()).digest()
    return "dev" if digest[0] % 2 == 0 else "test"


def find_corpus(name: str, args: argparse.Namespace) -> Path:
    """The git repository `owner/name`: given with --repo, or found under --repos as `owner+name`
    (a clone, or a mirror holding its git directory at `owner+name/repo`)."""
    for given in args.repo:
        key, _, path = given.partition("=")
        if key == name:
            return Path(path).expanduser()
    base = Path(args.repos).expanduser() / name.replace("/", "+")
    for candidate in (base / "repo", base):
        if (candidate / "HEAD").is_file() or (candidate / ".git").exists():
            return candidate
    raise SystemExit(
        f"{name}: no git repository at {base} (clone https://github.com/{name} there, "
        f"or pass --repo {name}=PATH)"
    )


class TreeCounts:
    """Whole-file BM25 token counts for the tracked files of a checked-out tree, kept by blob so
    that moving to the next commit re-reads only the files it changed."""

    def __init__(self) -> None:
        self.by_blob: dict[str, Counter[str] | None] = {}

    def bm25(self, tree: Path) -> WholeFileBM25:
        tfs = {}
        for entry in git(tree, "ls-tree", "-r", "-z", "HEAD").split("\0"):
            if not entry:
                continue
            meta, rel = entry.split("\t", 1)
            mode, kind, blob = meta.split()
            if kind != "blob" or mode == "120000":
                continue
            if blob not in self.by_blob:
                try:
                    text = (tree / rel).read_text(encoding="utf-8")
                    self.by_blob[blob] = Counter(bm25_tokens(text))
                except (OSError, UnicodeDecodeError):
                    self.by_blob[blob] = None
            counts = self.by_blob[blob]
            if counts is not None:
                tfs[rel] = counts
        return WholeFileBM25.from_counts(tfs)


LEXICAL, HYBRID, BM25 = "mcode lexical only", "mcode hybrid", "BM25 whole files (baseline)"


@dataclass
class Ranked:
    """One system's file rankings for the reports, in order, and its search times; for an
    ablation, the system whose candidates it ranks again with a signal off."""

    rankings: list[list[str]]
    seconds: list[float]
    ablates: str = ""


@dataclass
class Gathered:
    """What one mcode system's search gathered for each report, in order, before weighing, and the
    time each search took (gathering, then ranking with the weights of --weights)."""

    candidates: list[list[Candidate]]
    seconds: list[float]


def slim(candidates: list[Candidate]) -> list[Candidate]:
    """The candidates with only what ranking reads of their rows: hundreds of reports' worth stay
    in memory."""
    for c in candidates:
        c.row = {"id": c.row["id"], "path": c.row["path"], "start_line": c.row["start_line"]}
    return candidates


def gather_bugs(
    reports: list[dict], args: argparse.Namespace
) -> tuple[dict[str, Gathered], Ranked]:
    """Each report searched at its fix's parent by mcode (lexical; hybrid with --hybrid), kept as
    its unweighed candidates, and ranked by whole-file BM25. The trees of one repository are visited
    in the order of their fixes, each indexed incrementally from the one before."""
    systems = [LEXICAL] + ([HYBRID] if args.hybrid else [])
    weights = args.weights
    gathered = {name: Gathered([], []) for name in systems}
    base = Ranked([], [])
    work = Path(tempfile.mkdtemp(prefix="mcode-eval-bugs-"))
    try:
        for name in sorted({r["repo"] for r in reports}):
            source = find_corpus(name, args)
            # A working tree per system: an index has one writer, and each keeps its own.
            trees = {s: work / f"{name.replace('/', '+')}-{i}" for i, s in enumerate(systems)}
            for tree in trees.values():
                subprocess.run(
                    ["git", "clone", "-q", "--shared", "--no-checkout", str(source), str(tree)],
                    check=True,
                )
            tree = trees[systems[0]]
            counts = TreeCounts()
            indexes = {s: RepoIndex(trees[s], args, embed=s == HYBRID) for s in systems}
            try:
                for report in (r for r in reports if r["repo"] == name):
                    for checkout in trees.values():
                        git(checkout, "checkout", "-q", "--detach", "--force", report["parent"])
                    query = bug_query(report)
                    for system, index in indexes.items():
                        index.update()
                        searcher = index.workspace().searcher()
                        started = time.perf_counter()
                        candidates = searcher.gather(query)
                        rank_files(candidates, weights, 10)  # timed as `search` would run
                        gathered[system].seconds.append(time.perf_counter() - started)
                        gathered[system].candidates.append(slim(candidates))
                    started = time.perf_counter()
                    base.rankings.append(counts.bm25(tree).search(query, 10))
                    base.seconds.append(time.perf_counter() - started)
                    print(f"  {name}#{report['issue']}", file=sys.stderr, end="\r")
            finally:
                for index in indexes.values():
                    index.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return gathered, base


def top_files(candidates: list[list[Candidate]], weights: Weights) -> list[list[str]]:
    """Each report's first 10 files under `weights`."""
    return [[c.path for _, c in rank_files(found, weights, 10)] for found in candidates]


def rank_bugs(reports: list[dict], args: argparse.Namespace) -> dict[str, Ranked]:
    """Every system's rankings; with --ablation, mcode's again with each signal off in turn
    (`<system>, no <signal>`: no times, since nothing was searched again)."""
    weights = args.weights
    gathered, base = gather_bugs(reports, args)
    ranked = {}
    for system, found in gathered.items():
        ranked[system] = Ranked(top_files(found.candidates, weights), found.seconds)
        for signal in SIGNALS if args.ablation else ():
            unused = system == LEXICAL and signal == "vector"
            if unused or getattr(weights, signal) == SIGNALS[signal]:
                continue  # nothing to switch off
            ablated = top_files(found.candidates, weights.without(signal))
            ranked[f"{system}, no {signal}"] = Ranked(ablated, [], ablates=system)
    ranked[BM25] = base
    return ranked


def acc(reports: list[dict], rankings: list[list[str]], members: list[int]) -> Scores:
    scores = new_scores()
    for i in members:
        scores.add([path in reports[i]["targets"] for path in rankings[i]])
    return scores


def hubness(reports: list[dict], rankings: list[list[str]]) -> dict[str, dict]:
    """Per repository, the file most often in the top 5 and the share of its reports it is in."""
    hubs = {}
    for name in sorted({r["repo"] for r in reports}):
        tops = [
            set(k[:HUB_DEPTH]) for r, k in zip(reports, rankings, strict=True) if r["repo"] == name
        ]
        counts = Counter(path for top in tops for path in top)
        if counts:
            path, n = counts.most_common(1)[0]
            hubs[name] = {"file": path, "share": round(n / len(tops), 3), "reports": len(tops)}
    return hubs


def with_texts(reports: list[dict], texts_path: Path) -> list[dict]:
    """The reports with their title and body, from the file tools/fetch_bug_texts.py writes."""
    try:
        texts = json.loads(texts_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(
            f"{texts_path}: no bug report texts; run tools/fetch_bug_texts.py once (it needs the "
            "network: it reads each issue from api.github.com)"
        ) from None
    missing = [bug_key(r) for r in reports if bug_key(r) not in texts]
    if missing:
        raise SystemExit(
            f"{texts_path}: no text for {', '.join(missing[:5])}"
            f"{' …' if len(missing) > 5 else ''}; run tools/fetch_bug_texts.py again"
        )
    return [{**r, **texts[bug_key(r)]} for r in reports]


def load_bugs(args: argparse.Namespace) -> list[dict]:
    """The reports of --data (narrowed by --only-repo) with their texts, each repository's in the
    order of their fixes."""
    data = json.loads(Path(args.data).read_text(encoding="utf-8"))
    reports = [r for r in data["reports"] if not args.only_repo or r["repo"] in args.only_repo]
    reports = with_texts(reports, Path(args.texts).expanduser())
    reports.sort(key=lambda r: (r["repo"], r["fix_date"]))
    return reports


def bug_groups(reports: list[dict], by_repo: bool = True) -> dict[str, list[int]]:
    """Which reports each figure counts: all, each split and (`by_repo`) each repository."""
    groups: dict[str, list[int]] = {"all": list(range(len(reports)))}
    for split in ("dev", "test"):
        groups[f"split {split}"] = [i for i, r in enumerate(reports) if bug_split(r) == split]
    for i, r in enumerate(reports if by_repo else ()):
        groups.setdefault(r["repo"], []).append(i)
    return groups


def run_bugs(args: argparse.Namespace) -> dict:
    reports = load_bugs(args)
    ranked = rank_bugs(reports, args)
    results: dict = {
        "task": "bug report -> files its fix changed",
        "queries": len(reports),
        "repositories": dict(Counter(r["repo"] for r in reports)),
        "data": str(args.data),
        "weights": weights_text(args.weights),
    }
    results["scores"], results["report"] = {}, []
    for group, members in bug_groups(reports).items():
        results["report"].append(f" {group}:")
        for system, found in ranked.items():
            if found.ablates and not group.startswith(("all", "split")):
                continue  # the ablation for all reports and each split only
            scores = acc(reports, found.rankings, members)
            results["scores"].setdefault(group, {})[system] = scores.as_dict()
            text = line(system, scores)
            if found.ablates:
                full = acc(reports, ranked[found.ablates].rankings, members)
                text += f"  Acc@5 {(scores.hits[5] - full.hits[5]) / max(1, scores.n):+6.1%}"
            results["report"].append(text)
    results["hubness"] = {}
    for system, found in ranked.items():
        if found.ablates:
            continue
        hubs = hubness(reports, found.rankings)
        pooled = sum(h["share"] * h["reports"] for h in hubs.values()) / max(1, len(reports))
        results["hubness"][system] = {"all": round(pooled, 3), **hubs}
        results["report"].append(
            f"  hubness {system:<27} {pooled:6.1%} of reports have their repository's most "
            f"frequent file in the top {HUB_DEPTH}"
        )
        for name, hub in hubs.items():
            results["report"].append(
                f"      {name}: {hub['file']} in {hub['share']:.0%} of {hub['reports']}"
            )
        times = sorted(found.seconds)
        if times:
            p50, p95 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.95))]
            results["report"].append(
                f"  latency {system:<27} p50 {p50 * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms"
            )
    if args.show_misses:
        for i, r in enumerate(reports):
            found = ranked[LEXICAL].rankings[i]
            if not any(p in r["targets"] for p in found[:5]):
                print(f"MISS {bug_key(r)} {r['targets']}: {found[:5]}", file=sys.stderr)
    return results


def add_bug_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the bug reports and their repositories are: for this task and tools/fit_search.py."""
    parser.add_argument("--data", default=str(BUGS_DATA), help="the reports (default: %(default)s)")
    parser.add_argument(
        "--texts",
        default=str(BUG_TEXTS),
        help="their title and body, from tools/fetch_bug_texts.py (default: %(default)s)",
    )
    parser.add_argument(
        "--repos",
        default=str(Path.home() / ".cache" / "mcode-eval" / "repos"),
        help="where the repositories are, as owner+name (default: %(default)s)",
    )
    parser.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="OWNER/NAME=PATH",
        help="a repository's git directory or clone elsewhere (repeatable)",
    )
    parser.add_argument(
        "--only-repo", action="append", default=[], metavar="OWNER/NAME", help="repeatable"
    )
    parser.add_argument("--hybrid", action="store_true", help="also mcode with vectors (slow)")


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    """How mcode indexes and ranks: every task's, and tools/fit_search.py's."""
    parser.add_argument(
        "--cache",
        default=str(Path.home() / ".cache" / "mcode-eval"),
        help="vector cache kept across runs",
    )
    parser.add_argument(
        "--embedding-text",
        choices=sorted(EMBEDDING_STYLES),
        default=DEFAULT_EMBEDDING_STYLE,
        help="what the model reads of a chunk (raw: path, symbol and text as before 'words')",
    )
    parser.add_argument(
        "--embed-tokens",
        type=int,
        default=DEFAULT_MAX_TOKENS,
        help="how many tokens of each chunk the local model reads (256 before 'words')",
    )
    parser.add_argument(
        "--weights",
        type=parse_weights,
        default=Weights(),
        metavar="NAME=W,...",
        help=f"ranking weights to change ({', '.join(SIGNALS)}); default: the shipped ones",
    )
    parser.add_argument("--json", action="store_true")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="task", required=True)
    stdlib = sub.add_parser("stdlib", help="docstring -> function over the standard library")
    stdlib.add_argument(
        "--corpus", help="a directory of Python modules (default: this Python's stdlib)"
    )
    stdlib.add_argument("--sample", type=int, default=600)
    stdlib.add_argument("--seed", type=int, default=7)
    stdlib.add_argument(
        "--show-misses", type=int, default=0, help="print this many misses (stderr)"
    )
    history_task = sub.add_parser("git", help="commit message -> changed files over a git history")
    history_task.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]))
    patches = sub.add_parser(
        "patches", help="patch description -> patched files over a Debian source package"
    )
    patches.add_argument(
        "--source",
        required=True,
        help="an unpacked source package, patches not applied (dpkg-source --skip-patches -x)",
    )
    patches.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="DIR",
        help="index only this sub-tree (repeatable); patches touching anything else are dropped",
    )
    patches.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="DIR",
        help="leave this sub-tree out (repeatable); patches touching it are dropped",
    )
    for p in (stdlib, history_task, patches):
        p.add_argument(
            "--lexical-only", action="store_true", help="skip the hybrid rows (vectors: slow)"
        )
        p.add_argument(
            "--summaries",
            type=summary_modes,
            default=["off"],
            metavar="MODES",
            help="module summaries to measure, comma-separated: off,structural,model",
        )
        p.add_argument(
            "--summary-weight",
            type=weights,
            default=SUMMARY_WEIGHTS,
            metavar="W[,W...]",
            help="how much a summary hit counts for its file (default: %(default)s)",
        )
    for p in (history_task, patches):
        p.add_argument("--max-files", type=int, default=15)
        p.add_argument(
            "--strip-area",
            action="store_true",
            help='drop the "fs/xfs: " style prefix of each subject (an ablation: it often names a file)',
        )
    bugs = sub.add_parser(
        "bugs", help="bug report -> files its fix changed, over each repository at the fix's parent"
    )
    add_bug_arguments(bugs)
    bugs.add_argument(
        "--ablation",
        action="store_true",
        help="also rank with each signal off in turn (all reports and each split)",
    )
    bugs.add_argument("--show-misses", action="store_true", help="print lexical top-5 misses")
    for p in (stdlib, history_task, patches, bugs):
        add_index_arguments(p)
    args = parser.parse_args()
    started = time.perf_counter()
    tasks = {"stdlib": run_stdlib, "git": run_git, "patches": run_patches, "bugs": run_bugs}
    results = tasks[args.task](args)
    results["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        where = (
            f"{len(results['repositories'])} repositories"
            if "repositories" in results
            else f"{results['corpus_files']} files"
        )
        print(
            f"{results['task']}: {results.get('targets', results.get('queries'))} queries over {where} ({results['seconds']} s)"
        )
        if "only" in results:
            print(f"  sub-tree: only {results['only']}, excluding {results['exclude']}")
        for key in ("index_lexical", "index_hybrid"):
            if key in results:
                print(f"  {key}: {results[key]}")
        for name, done in results.get("summary_passes", {}).items():
            print(f"  summary pass ({name}): {done}")
        print("\n".join(results["report"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
