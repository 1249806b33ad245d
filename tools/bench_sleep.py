#!/usr/bin/env python3
"""Benchmark the sleep-time pass on the standard library: structural summaries of every module and
directory against the cold lexical index of the same corpus, then a pass after one edit.

The corpus and the cold build are `bench_index.py`'s (a git copy of this interpreter's standard
library, lexical index without vectors). The summary pass runs in this process, vectors off (they
come after the summaries, as the index's do). The issue's target: covering the repository costs
about what its lexical index costs. Last, a dry run with a model configured counts the tokens a
model pass over every module would send (nothing is called).

    python tools/bench_sleep.py [--json] [--corpus PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from bench_index import cold_build, copy_corpus, make_settings

from mcode.sleep import PassOptions, run_pass
from mcode.store.summaries import SummaryStore

TARGET_RATIO = 1.5  # summary pass / cold lexical index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--corpus", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
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

        target = repo / "json" / "decoder.py"
        target.write_text(target.read_text() + "\n\ndef bench_added(value):\n    return value\n")
        from mcode.retrieval.workspace import open_writer

        indexer, lock = open_writer(make_settings(work, repo))  # the cold build's embedder
        try:
            indexer.process_changes(["json/decoder.py"], embed=False)
        finally:
            indexer.manifest.close()
            lock.release()
        started = time.perf_counter()
        edit = run_pass(settings).as_json()
        latency = time.perf_counter() - started
        fresh = SummaryStore(settings.paths.summaries).get("file", "json/decoder.py")
        assert fresh is not None and "bench_added" in fresh.text
        say(
            f"pass after one edit: {latency:.2f} s ({len(edit['files'])} file, {edit['dirs']} "
            "directories): what a save costs after the quiet period"
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
            "model_tokens_all_modules": everything["tokens"],
            "model_tokens_per_file": round(per_file, 1),
        }
        print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
