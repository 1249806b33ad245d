#!/usr/bin/env python3
"""Benchmark the sleep-time pass on the standard library: structural summaries of every module and
directory against the cold lexical index of the same corpus, then a pass after one edit.

The corpus and the cold build are `bench_index.py`'s (a git copy of this interpreter's standard
library, lexical index without vectors). The summary pass runs in this process, vectors off (they
come after the summaries, as the index's do). The issue's target: covering the repository costs
about what its lexical index costs.

Then what summaries add to a search (each result's summary line; at the file level, summary hits
at `--summary-weight`), beside the same searches without them. Then save → refreshed summary, as
`mcode watch` wires it (a watcher that re-indexes, and a `QuietTrigger` whose pass runs once edits
pause, here after `--quiet` seconds): `--edits` saves of one file, one at a time, each timed from
the write until its summary row holds the new content, minus the quiet period; p50/p95. Then
tokens per pass with `sleep_model` set to the scripted stand-in (tools/summary_server.py, on
127.0.0.1, counting what it is sent and answers): a pass after one edit, and a pass over the corpus
at the default per-pass cap. Last, a dry run counts the tokens a model pass over every module would
send (nothing is called). Figures only: nothing here is a pass or fail but the coverage target.

    python tools/bench_sleep.py [--json] [--corpus PATH] [--edits N] [--quiet SECONDS]
                                [--summary-weight W]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from bench_index import cold_build, copy_corpus, make_settings
from summary_server import SummaryServer

from mcode.config import Settings
from mcode.retrieval.ranking import Weights
from mcode.retrieval.workspace import open_writer
from mcode.sleep import PassOptions, run_pass
from mcode.store.summaries import SummaryStore

TARGET_RATIO = 1.5  # summary pass / cold lexical index
EDITED = "json/decoder.py"  # few top-level definitions: an added one shows in its summary
WAIT_SECONDS = 300  # a ceiling for one save to reach its summary, not an expectation


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def save_to_summary(work: Path, repo: Path, settings: Settings, edits: int, quiet: float) -> list:
    """Seconds from each save of EDITED to its refreshed summary, the quiet period taken off:
    the watcher and the trigger wired as `mcode watch` wires them, in this process."""
    from mcode.sleep.trigger import QuietTrigger
    from mcode.watch import IndexFollower

    indexer, lock = open_writer(make_settings(work, repo), purpose="bench watch")
    errors: list[BaseException] = []
    trigger = QuietTrigger(
        lambda: run_pass(settings, should_stop=trigger.edited), quiet, on_error=errors.append
    )
    follower = IndexFollower(indexer, on_update=lambda *_: trigger.mark(), embed=False)
    store = SummaryStore(settings.paths.summaries)
    target = repo / EDITED
    latencies = []
    try:
        with follower:
            trigger.start()
            for i in range(edits):
                added = f"\n\ndef bench_saved_{i}(value):\n    return value\n"
                data = target.read_bytes() + added.encode()
                content_hash = hashlib.sha256(data).hexdigest()  # what the index calls it
                written = time.monotonic()
                target.write_bytes(data)
                while True:
                    summary = store.get("file", EDITED)
                    if summary is not None and summary.file_hash == content_hash:
                        break
                    if errors or time.monotonic() - written > WAIT_SECONDS:
                        raise SystemExit(f"no refreshed summary for save {i}: {errors}")
                    time.sleep(0.005)
                latencies.append(time.monotonic() - written - quiet)
    finally:
        trigger.stop(timeout=30)
        indexer.manifest.close()
        lock.release()
    return latencies


QUERIES = [
    "decode a JSON document",
    "parse an HTTP cookie header",
    "compress data with zlib",
    "walk a directory tree",
    "format a date as text",
    "read a CSV file",
    "resolve a relative URL",
    "lock a file between processes",
    "quote a shell argument",
    "retry on a timeout",
    "TextWrapper",
    "scanstring",
    "make a temporary directory",
    "send an email over SMTP",
    "base64 encode bytes",
    "split words like a shell",
    "find the longest matching subsequence",
    "load a pickled object",
    "start a thread pool",
    "hash a password",
]


def search_cost(work: Path, repo: Path, weight: float) -> dict:
    """Median ms of a search with the summary lines and, at the file level, summary hits at
    `weight`, beside the same searches without summaries (same process, taking turns)."""
    from mcode.retrieval.workspace import Workspace

    workspace = Workspace.open_reader(make_settings(work, repo))
    try:
        plain = workspace.searcher(summaries=False)
        with_lines = workspace.searcher()
        ranked = workspace.searcher()
        ranked.weights = Weights(summary=weight)
        runs = {"off": [], "lines": [], "off_file": [], "ranked_file": []}
        for searcher in (plain, with_lines, ranked):  # a warm-up each
            searcher.search(QUERIES[0], 10, "file")
        # What the lines cost a reader: one per file, with its first result (as code_search
        # and the prompt's retrieved code show them), at four characters a token.
        lines = [
            {hit.path: hit.summary for hit in with_lines.search(query, 10) if hit.summary}
            for query in QUERIES
        ]
        shown = [len(text) for found in lines for text in found.values()]
        for _ in range(3):
            for query in QUERIES:
                for key, searcher, level in (
                    ("off", plain, "symbol"),
                    ("lines", with_lines, "symbol"),
                    ("off_file", plain, "file"),
                    ("ranked_file", ranked, "file"),
                ):
                    started = time.perf_counter()
                    searcher.search(query, 10, level)
                    runs[key].append((time.perf_counter() - started) * 1000)
        cost = {key: round(statistics.median(ms), 1) for key, ms in runs.items()}
        cost["lines_per_search"] = round(len(shown) / len(QUERIES), 1)
        cost["tokens_per_line"] = round(statistics.mean(shown) / 4, 1) if shown else 0.0
        return cost
    finally:
        workspace.manifest.close()


def with_scripted_model(settings: Settings, server: SummaryServer) -> Settings:
    return dataclasses.replace(
        settings,
        sleep_model=server.model,
        api_base=server.url,
        api_keys={"OPENAI_API_KEY": "sk-scripted"},
    )


def model_passes(work: Path, repo: Path, settings: Settings) -> dict:
    """Tokens per pass with the scripted model: after one edit, then over the corpus at the
    default caps (a pass redoes structural summaries, newest change first, until its cap)."""
    server = SummaryServer().start()
    try:
        priced = with_scripted_model(settings, server)
        target = repo / EDITED
        target.write_text(target.read_text() + "\n\ndef bench_priced(value):\n    return value\n")
        reindex(work, repo, [EDITED])
        one = run_pass(priced, PassOptions(paths=(EDITED,))).as_json()
        one_server = server.prompt_tokens + server.completion_tokens
        calls = server.calls
        started = time.perf_counter()
        capped = run_pass(priced).as_json()
        seconds = time.perf_counter() - started
        return {
            "one_edit": {
                "files": len(one["files"]),
                "tokens": one["tokens"],
                "server_tokens": one_server,
                "requests": calls,
            },
            "default_cap": {
                "cap": settings.sleep_pass_tokens,
                "files": len(capped["files"]),
                "tokens": capped["tokens"],
                "server_tokens": server.prompt_tokens + server.completion_tokens - one_server,
                "requests": server.calls - calls,
                "stopped_by": capped["note"],
                "seconds": round(seconds, 2),
            },
        }
    finally:
        server.stop()


def reindex(work: Path, repo: Path, paths: list[str]) -> None:
    indexer, lock = open_writer(make_settings(work, repo))  # the cold build's embedder
    try:
        indexer.process_changes(paths, embed=False)
    finally:
        indexer.manifest.close()
        lock.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--corpus", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--edits", type=int, default=10, help="saves timed under the watcher")
    parser.add_argument("--quiet", type=float, default=0.5, help="the quiet period, in seconds")
    parser.add_argument(
        "--summary-weight", type=float, default=0.5, help="summary hits' weight in the search stage"
    )
    args = parser.parse_args()
    say = (lambda text: print(text, file=sys.stderr)) if args.json else print
    with tempfile.TemporaryDirectory(prefix="mcode-bench-sleep-") as tmp:
        work, repo = Path(tmp), Path(tmp) / "corpus"
        files, _ = copy_corpus(args.corpus, repo)
        say(f"corpus: {files} files")
        lexical, report, _ = cold_build(work, repo)
        say(f"cold lexical index: {lexical:.1f} s ({report['total_chunks']} chunks)")
        settings = dataclasses.replace(make_settings(work, repo), embedding_model="none")

        started = time.perf_counter()
        cold = run_pass(settings).as_json()
        seconds = time.perf_counter() - started
        ratio = seconds / lexical
        verdict = "ok" if ratio <= TARGET_RATIO else "over"
        say(
            f"structural summaries: {len(cold['files'])} files, {cold['dirs']} directories in "
            f"{seconds:.1f} s = {ratio:.2f}x the lexical index (target <= {TARGET_RATIO}x: "
            f"{verdict})"
        )

        started = time.perf_counter()
        noop = run_pass(settings).as_json()
        idle = time.perf_counter() - started
        say(f"pass with nothing changed: {idle:.2f} s ({len(noop['files'])} files)")

        target = repo / EDITED
        target.write_text(target.read_text() + "\n\ndef bench_added(value):\n    return value\n")
        reindex(work, repo, [EDITED])
        started = time.perf_counter()
        edit = run_pass(settings).as_json()
        latency = time.perf_counter() - started
        fresh = SummaryStore(settings.paths.summaries).get("file", EDITED)
        assert fresh is not None and "bench_added" in fresh.text
        say(
            f"pass after one edit: {latency:.2f} s ({len(edit['files'])} file, {edit['dirs']} "
            "directories): what a save costs after the quiet period"
        )

        cost = search_cost(work, repo, args.summary_weight)
        say(
            f"search, median of {3 * len(QUERIES)}: symbol level {cost['off']} ms without "
            f"summaries, {cost['lines']} ms with each result's summary line; file level "
            f"{cost['off_file']} ms without, {cost['ranked_file']} ms with summary hits at "
            f"w={args.summary_weight:g} and the lines; {cost['lines_per_search']} summary lines "
            f"a search (10 results), ~{cost['tokens_per_line']} tokens each"
        )

        saves = save_to_summary(work, repo, settings, args.edits, args.quiet)
        say(
            f"save -> refreshed summary under a watcher, quiet period ({args.quiet:g} s) taken "
            f"off: p50 {statistics.median(saves):.2f} s, p95 {percentile(saves, 0.95):.2f} s "
            f"over {len(saves)} saves"
        )

        tokens = model_passes(work, repo, settings)
        one, capped = tokens["one_edit"], tokens["default_cap"]
        say(
            f"scripted model, a pass after one edit: {one['tokens']:,} tokens charged, "
            f"{one['server_tokens']:,} counted by the server ({one['requests']} request)"
        )
        say(
            f"scripted model, a pass at the default cap of {capped['cap']:,}: {capped['files']} "
            f"files, {capped['tokens']:,} tokens charged, {capped['server_tokens']:,} counted by "
            f"the server ({capped['requests']} requests, {capped['seconds']:.1f} s; "
            f"{capped['stopped_by'] or 'not stopped by a cap'})"
        )
        # What a model would be sent, counted as the pass counts it before each call.
        priced = dataclasses.replace(
            settings,
            sleep_model="openai/gpt-4.1-mini",
            api_keys={"OPENAI_API_KEY": "not-used"},  # a dry run calls nothing
            sleep_budget_tokens_per_day=10**12,
        )
        everything = run_pass(priced, PassOptions(dry_run=True, budget_tokens=10**12)).as_json()
        per_file = everything["tokens"] / max(1, len(everything["files"]))
        per_pass = int(priced.sleep_pass_tokens // per_file)
        say(
            f"a model pass over every module: {everything['tokens']:,} tokens "
            f"(~{per_file:,.0f} a file); the default cap of {priced.sleep_pass_tokens:,} a pass "
            f"covers ~{per_pass} files, the default {settings.sleep_budget_tokens_per_day:,} a day "
            f"~{int(settings.sleep_budget_tokens_per_day // per_file)}"
        )
    if args.json:
        data = {
            "files": files,
            "lexical_seconds": round(lexical, 3),
            "summary_seconds": round(seconds, 3),
            "ratio": round(ratio, 3),
            "summarised_files": len(cold["files"]),
            "summarised_dirs": cold["dirs"],
            "noop_seconds": round(idle, 3),
            "edit_seconds": round(latency, 3),
            "save_to_summary_seconds": [round(x, 3) for x in saves],
            "save_to_summary_p50": round(statistics.median(saves), 3),
            "save_to_summary_p95": round(percentile(saves, 0.95), 3),
            "quiet_seconds": args.quiet,
            "model_pass_tokens": tokens,
            "search_ms": cost,
            "model_tokens_all_modules": everything["tokens"],
            "model_tokens_per_file": round(per_file, 1),
        }
        print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
