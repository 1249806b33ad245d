"""The offline part of a review: the memory blocks' rules applied to the lines a change adds.

No model and no network: the rules come from the blocks' front matter (`mcode.memory.rules`), the
lines from the diff. The patterns are a repository's, so they run in a child process
(`matcher`) that is stopped when one rule takes longer than `RULE_SECONDS`: that rule is reported
and skipped, the others still run. Each added line is searched up to `MAX_LINE_CHARS` characters
(a minified line is still checked, only not all of it).
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mcode.memory import BlockStore
from mcode.memory.rules import ReviewRule, block_rules
from mcode.review.diff import FileDiff, Line
from mcode.review.findings import Finding, finding, snippet
from mcode.secrets import redact

MATCHER = Path(__file__).with_name("matcher.py")
RULE_SECONDS = 2.0  # a rule's share, counted from the end of the rule before it
STARTUP_SECONDS = 5.0  # the child interpreter's start, on a busy machine
TOTAL_SECONDS = 10.0  # all restarts together, so a block full of slow rules still ends
MAX_LINE_CHARS = 4000


@dataclass(slots=True)
class RuleRun:
    findings: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line each: ignored or stopped rules
    rules: int = 0
    seconds: float = 0.0


def load_rules(blocks: BlockStore) -> tuple[list[ReviewRule], list[str]]:
    """Every usable rule of the blocks in force, and a line for each one that is not."""
    rules: list[ReviewRule] = []
    problems: list[str] = []
    for block in blocks.blocks():
        found, wrong = block_rules(block.label, block.content.extra)
        rules += found
        problems += wrong
    return rules, problems


def run_rules(rules: Sequence[ReviewRule], files: Sequence[FileDiff]) -> RuleRun:
    """The findings of `rules` on the lines `files` add."""
    started = time.monotonic()
    run = RuleRun(rules=len(rules))
    added: list[tuple[int, Line]] = [(i, line) for i, f in enumerate(files) for line in f.added()]
    if not rules or not added:
        return run
    job = {
        "files": [f.name for f in files],
        "lines": [[i, line.text[:MAX_LINE_CHARS]] for i, line in added],
    }
    pending = list(range(len(rules)))
    while pending:
        if time.monotonic() - started > TOTAL_SECONDS:
            run.problems.append(
                f"{len(pending)} offline rules were not run: the rules took over "
                f"{TOTAL_SECONDS:g} s together"
            )
            break
        batch = [rules[i] for i in pending]
        job["rules"] = [{"pattern": r.pattern, "globs": list(r.paths)} for r in batch]
        results, failure = _run_child(json.dumps(job), len(batch))
        for rule, hits in zip(batch, results, strict=False):
            for index in hits:
                file_index, line = added[index]
                run.findings.append(_finding(rule, files[file_index], line))
        pending = pending[len(results) :]
        if failure is not None and pending:
            culprit = rules[pending.pop(0)]
            run.problems.append(f"rule {culprit.block}/{culprit.id} {failure}; skipped")
    run.seconds = time.monotonic() - started
    return run


def _finding(rule: ReviewRule, file: FileDiff, line: Line) -> Finding:
    return finding(
        path=file.name,
        line=line.number,
        severity=rule.severity,
        message=rule.message,
        basis=f"{rule.id} ({rule.block} block): {rule.pattern}",
        rule=f"{rule.block}/{rule.id}",
        snippet=snippet(redact(line.text)),
    )


def _run_child(payload: str, count: int) -> tuple[list[list[int]], str | None]:
    """Each rule's hits, in order, as far as the child got; why it stopped short, if it did."""
    command = [sys.executable, "-I", "-S", str(MATCHER)]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
    )
    assert process.stdin is not None and process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    results: list[list[int]] = []
    try:
        try:
            process.stdin.write(payload)
            process.stdin.close()
        except OSError:
            pass  # the child is gone; its stderr says why
        wait = RULE_SECONDS + STARTUP_SECONDS
        while len(results) < count:
            try:
                line = lines.get(timeout=wait)
            except queue.Empty:
                return results, f"took longer than {RULE_SECONDS:g} s (its pattern backtracks)"
            if line is None:
                error = (process.stderr.read() if process.stderr else "").strip()
                last = error.splitlines()[-1] if error else f"exit code {process.wait()}"
                return results, f"could not run ({last})"
            results.append(list(json.loads(line)["hits"]))
            wait = RULE_SECONDS
        return results, None
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    try:
        for line in stream:
            lines.put(line)
    except (OSError, ValueError):
        pass
    lines.put(None)
