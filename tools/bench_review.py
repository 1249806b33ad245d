#!/usr/bin/env python3
"""Benchmark `mcode review` on a real diff: the offline rules, the context built per hunk, the cache.

The corpus is a clone of a repository (this one by default) checked out at the end of a range of
its history (by default d35f678, "Policy out of the loop": 11 files, ~700 lines added), indexed
lexically, with ten typical rules in its lessons block. The review then runs on that range:

1. **offline rules**: the ten rules over every added line, in their time-limited child process
   (median of 5 runs; a child's start is part of it, as in every real run);
2. **context per hunk**: the tokens (chars/4) of code the index adds beside each hunk (symbols it
   changes, their uses and tests, the definitions it uses), and the time to build them;
3. **a whole review with an instant model** (no findings, no network): the cache-miss path without
   the model's own time, and the estimated prompt tokens each file would cost a real model;
4. **cache hit**: the same review again, in process and as `python -m mcode review` (what a hook
   retried on an unchanged diff pays).

    /work/main/.venv/bin/python tools/bench_review.py [--repo PATH] [--range A..B] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from mcode.agent.messages import AssistantTurn, ToolCall, Usage
from mcode.config import Paths, load_settings
from mcode.context import estimate_tokens
from mcode.memory import BlockStore
from mcode.memory.rules import make_rule, with_rule
from mcode.retrieval.workspace import open_writer
from mcode.review import ReviewOptions, Target, review
from mcode.review.context import CodeFacts, ReviewMemory
from mcode.review.model import estimated_tokens, file_messages
from mcode.review.rules import run_rules
from mcode.review.source import read_changes

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RANGE = "d35f678~1..d35f678"
RULES = [
    ("no-print", r"^\s*print\(", ["src/**/*.py"], "Library code logs; print() is for the CLI."),
    ("no-todo", r"\bTODO\b", [], "Open an issue instead of leaving a TODO."),
    ("no-bare-except", r"^\s*except\s*:", ["*.py"], "Catch the exceptions you expect."),
    ("no-star-import", r"^\s*from\s+\S+\s+import\s+\*", ["*.py"], "Import names explicitly."),
    ("no-breakpoint", r"\bbreakpoint\(\)|\bpdb\.set_trace\(", ["*.py"], "Remove the debugger."),
    ("no-sleep-in-tests", r"\btime\.sleep\(", ["tests/**"], "Poll; do not sleep in tests."),
    ("no-subprocess-git", r"subprocess\.\w+\(\s*\[\s*['\"]git['\"]", ["src/**"], "Use mcode.vcs."),
    ("no-litellm-import", r"^\s*(?:import|from)\s+litellm\b", ["src/**"], "Only agent/llm."),
    ("no-env-read", r"os\.environ\.get\(|os\.getenv\(", ["src/**"], "Only config reads env."),
    ("no-long-lines", r"^.{101,}$", ["*.py"], "Lines stay within 100 characters."),
]


class InstantModel:
    """A model that answers at once with no findings: the review's own cost, without a model's."""

    model = "ollama_chat/bench-instant"

    def complete(self, messages: Any, tools: Any = None, on_text: Any = None) -> AssistantTurn:
        call = ToolCall("call_0", "report_findings", '{"findings": []}')
        return AssistantTurn("", [call], Usage(0, 0), "tool_calls", self.model)


def timed(function: Any, runs: int = 1) -> tuple[float, Any]:
    """The median seconds of `runs` calls, and the last result."""
    seconds, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def prepare(source: Path, commit_range: str, workdir: Path) -> Path:
    clone = workdir / "corpus"
    end = commit_range.split("..", 1)[1] or "HEAD"
    subprocess.run(["git", "clone", "-q", str(source), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", end], check=True)
    return clone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--range", dest="commit_range", default=DEFAULT_RANGE)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures: dict[str, Any] = {"range": args.commit_range, "load_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="mcode-bench-review-") as tmp:
        workdir = Path(tmp)
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(workdir / "config"),
            "XDG_CACHE_HOME": str(workdir / "cache"),
            "MCODE_EMBEDDING_MODEL": "none",
            "MCODE_MODEL": "ollama_chat/bench-instant",  # keyless: no key to look for
        }
        repo = prepare(args.repo, args.commit_range, workdir)
        settings = load_settings(Paths.for_repo(repo, env), env=env)
        indexer, lock = open_writer(settings)
        try:
            figures["index_seconds"] = timed(indexer.update)[0]
        finally:
            indexer.manifest.close()
            lock.release()
        blocks = BlockStore.for_paths(settings.paths)
        blocks.ensure_defaults()
        rules = [
            make_rule({"id": i, "pattern": p, "paths": g, "message": m}, "lessons")
            for i, p, g, m in RULES
        ]
        for rule in rules:
            blocks.update(
                "lessons",
                lambda content, rule=rule: replace(content, extra=with_rule(content.extra, rule)),
                actor="bench",
                reason="bench",
                op="rule",
            )
        target = Target("range", args.commit_range)
        files = read_changes(repo, target)
        added = sum(1 for f in files for _ in f.added())
        figures.update(files=len(files), hunks=sum(len(f.hunks) for f in files), added_lines=added)

        seconds, run = timed(lambda: run_rules(rules, files), runs=5)
        figures["rules_seconds"] = seconds
        figures["rule_findings"] = len(run.findings)

        facts = CodeFacts.open(settings)
        assert facts is not None, "the corpus was indexed a moment ago"
        started = time.perf_counter()
        tokens = [estimate_tokens(facts.for_hunk(f, hunk)) for f in files for hunk in f.hunks]
        figures["context_seconds"] = time.perf_counter() - started
        facts.close()
        figures["context_tokens_per_hunk"] = {
            "median": statistics.median(tokens),
            "p90": sorted(tokens)[int(len(tokens) * 0.9)],
            "max": max(tokens),
            "empty": sum(1 for t in tokens if t == 0),
        }
        memory = ReviewMemory.read(blocks)
        prompts = [estimated_tokens(file_messages(memory, f, "")) for f in files if any(f.added())]
        figures["prompt_tokens_per_file_without_context"] = statistics.median(prompts)

        factory = lambda settings, choice: InstantModel()  # noqa: E731
        options = ReviewOptions()
        miss, first = timed(lambda: review(settings, target, options, client_factory=factory))
        hit, second = timed(lambda: review(settings, target, options, client_factory=factory))
        figures["review_miss_seconds"] = miss
        figures["review_calls"] = first.calls
        figures["review_estimated_prompt_tokens"] = sum(first.context_tokens) + sum(prompts)
        figures["cache_hit_seconds"] = hit
        figures["cache_hit_calls"] = second.calls
        command = [sys.executable, "-m", "mcode", "review", "--range", args.commit_range]
        process_seconds, result = timed(
            lambda: subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True),
            runs=3,
        )
        figures["cache_hit_process_seconds"] = process_seconds
        figures["cache_hit_process_summary"] = result.stdout.strip().splitlines()[-1]
    figures["load_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for key, value in figures.items():
        print(f"{key:>40}: {value}")


if __name__ == "__main__":
    main()
