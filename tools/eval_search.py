#!/usr/bin/env python3
"""Retrieval quality of `mcode search`, next to a whole-file BM25 baseline computed in the same run.

Two tasks, both offline:

  stdlib  A docstring is the query; its function, with the docstring removed from the corpus, is the
          target. Corpus: the top-level modules of this Python's standard library (override: --corpus).
  git     A commit message is the query; the files that commit changed (and that still exist) are the
          targets. Corpus: any git repository at HEAD (default: this one).

For each, Acc@1/5/10 (is a target among the first k results) for the file level — mcode's hybrid search
pooled to files against BM25 over whole files — and, for stdlib, mcode's symbol level too. The
ablations (lexical only; no structure) show what each signal is worth.

    python tools/eval_search.py stdlib [--sample 600] [--json]
    python tools/eval_search.py git [--repo PATH] [--json]
"""

from __future__ import annotations

import argparse
import ast
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
from dataclasses import dataclass
from pathlib import Path

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
        self.paths = list(docs)
        self.tfs = [Counter(bm25_tokens(docs[p])) for p in self.paths]
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


def build_index(repo: Path, cache: Path, embed: bool) -> tuple[dict, object]:
    """Index `repo` with mcode's real pipeline; vectors cached in `cache` across runs."""
    os.environ["XDG_CACHE_HOME"] = str(cache)
    os.environ["XDG_CONFIG_HOME"] = str(repo.parent / "config")
    from mcode.config import Paths, load_settings
    from mcode.workspace import Workspace, open_writer

    settings = load_settings(
        Paths.for_repo(repo), overrides={"embedding_model": "local" if embed else "none"}
    )
    started = time.perf_counter()
    indexer, lock = open_writer(settings)
    try:
        report = indexer.update(embed=embed)
    finally:
        lock.release()
    info = {
        "files": report.files,
        "chunks": report.total_chunks,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return info, Workspace.open_reader(settings)


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
    return f"  {name:<34} {cells}   (n={scores.n})"


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
    for embed in (False, True):
        info, workspace = build_index(repo, Path(args.cache), embed)
        results[f"index_{'hybrid' if embed else 'lexical'}"] = info
        searcher = workspace.searcher()
        tag = "hybrid" if embed else "lexical only"
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
                        f"    {h.path}:{h.start_line}-{h.end_line} {h.symbol} ({h.kind}) {h.score:.4f}",
                        file=sys.stderr,
                    )
            files.add([h.path == t.path for h in searcher.search(t.query, k=10, level="file")])
        rows[f"mcode {tag}, symbol level"] = symbol
        rows[f"mcode {tag}, file level"] = files
    base = new_scores()
    for t in targets:
        base.add([p == t.path for p in bm25.search(t.query, 10)])
    rows["BM25 whole files (baseline)"] = base
    results["scores"] = {name: s.as_dict() for name, s in rows.items()}
    results["report"] = [line(name, s) for name, s in rows.items()]
    shutil.rmtree(work, ignore_errors=True)
    return results


# -- task 2: commit message -> changed files ---------------------------------------------------------


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


def history(repo: Path, max_files: int) -> list[tuple[str, list[str]]]:
    out = git(repo, "log", "--no-merges", "--name-only", "--format=%x00%H%x01%B%x02")
    existing = set(git(repo, "ls-files").splitlines())
    commits = []
    for record in out.split("\x00")[1:]:
        _, rest = record.split("\x01", 1)
        message, names = rest.split("\x02", 1)
        files = [n for n in names.split("\n") if n.strip() and n in existing]
        source = [
            f
            for f in files
            if not f.endswith((".md", ".toml", ".txt", ".json", ".lock", ".yaml", ".yml"))
        ]
        if len(message.strip()) >= 20 and 1 <= len(source) <= max_files:
            commits.append((message.strip(), source))
    return commits


def run_git(args: argparse.Namespace) -> dict:
    src = Path(args.repo).resolve()
    work = Path(tempfile.mkdtemp(prefix="mcode-eval-git-"))
    repo = work / "repo"
    subprocess.run(["git", "clone", "-q", str(src), str(repo)], check=True)
    commits = history(repo, args.max_files)
    docs = {}
    for rel in git(repo, "ls-files").splitlines():
        try:
            docs[rel] = (repo / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    bm25 = WholeFileBM25(docs)
    results: dict = {
        "task": "commit message -> changed files",
        "repo": str(src),
        "commits": len(commits),
        "corpus_files": len(docs),
    }
    rows: dict[str, Scores] = {}
    for embed in (False, True):
        info, workspace = build_index(repo, Path(args.cache), embed)
        results[f"index_{'hybrid' if embed else 'lexical'}"] = info
        searcher = workspace.searcher()
        scores = new_scores()
        for message, files in commits:
            scores.add([h.path in files for h in searcher.search(message, k=10, level="file")])
        rows[f"mcode {'hybrid' if embed else 'lexical only'}, file level"] = scores
    base = new_scores()
    for message, files in commits:
        base.add([p in files for p in bm25.search(message, 10)])
    rows["BM25 whole files (baseline)"] = base
    results["scores"] = {name: s.as_dict() for name, s in rows.items()}
    results["report"] = [line(name, s) for name, s in rows.items()]
    shutil.rmtree(work, ignore_errors=True)
    return results


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
    history_task.add_argument("--max-files", type=int, default=15)
    for p in (stdlib, history_task):
        p.add_argument(
            "--cache",
            default=str(Path.home() / ".cache" / "mcode-eval"),
            help="vector cache kept across runs",
        )
        p.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    results = run_stdlib(args) if args.task == "stdlib" else run_git(args)
    results["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(
            f"{results['task']}: {results.get('targets', results.get('commits'))} queries over {results['corpus_files']} files ({results['seconds']} s)"
        )
        for key in ("index_lexical", "index_hybrid"):
            print(f"  {key}: {results[key]}")
        print("\n".join(results["report"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
