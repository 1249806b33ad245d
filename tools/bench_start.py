#!/usr/bin/env python3
"""Benchmark mcode's start: how long until the first request reaches the model, and until the REPL
is ready, next to the floor that no change to mcode can go below (`import litellm`).

In a small fresh git repository, against the scripted model server of the tests (on 127.0.0.1,
answering at once), each run takes turns through:

1. `python -c pass` and `python -c "import litellm"` (with the local cost map, as mcode imports it);
2. `mcode --help`;
3. `mcode -p hello`: the time until the server sees the request (time to first request) and until
   the process has exited (wall);
4. `mcode` in a pseudo-terminal: the time until its prompt shows (REPL ready), then Ctrl-D.

Best and median of `--runs` (default 5) per row; the goal is a time to first request within the
litellm import + 0.5 s. `--importtime` adds the slowest top-level imports of one `mcode -p hello`
(`python -X importtime`), the place to look when a row grows.

    /work/main/.venv/bin/python tools/bench_start.py [--runs N] [--importtime] [--json] [--src DIR]

`--src` measures another checkout (`--src /work/main/src` for the figures before a change).
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the scripted server and the repository helpers

from support.llm_server import ScriptedLLMServer  # noqa: E402
from support.repos import make_repo, terminal_env  # noqa: E402

PROMPT = "❯"
REPL_TIMEOUT = 120


def run(args: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.monotonic()
    subprocess.run(
        args,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
        timeout=300,
    )
    return time.monotonic() - started


def headless(server: ScriptedLLMServer, env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(time to first request, wall) of one `mcode -p hello`."""
    server.reply_text("hello")
    seen = len(server.arrivals)
    started = time.monotonic()
    wall = run([sys.executable, "-m", "mcode", "-p", "hello"], env, cwd)
    return server.arrivals[seen] - started, wall


def repl_ready(env: dict[str, str], cwd: Path) -> float:
    import pexpect

    started = time.monotonic()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "mcode"],
        cwd=str(cwd),
        env=env,
        encoding="utf-8",
        dimensions=(40, 100),
        timeout=REPL_TIMEOUT,
    )
    child.expect(PROMPT)
    ready = time.monotonic() - started
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    return ready


def slowest_imports(env: dict[str, str], cwd: Path, count: int = 12) -> list[tuple[float, str]]:
    """The top-level imports of one `mcode -p hello` that took longest (cumulative seconds)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mcode", "-p", "hello"],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if cumulative.strip().isdigit() and not name.startswith("  "):
            rows.append((int(cumulative) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:count]


def summary(values: list[float]) -> dict[str, float]:
    return {"best": min(values), "median": statistics.median(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--importtime", action="store_true", help="list the slowest imports")
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    parser.add_argument(
        "--src",
        type=Path,
        default=ROOT / "src",
        help="the mcode to measure (another checkout's src)",
    )
    options = parser.parse_args()

    server = ScriptedLLMServer().start()
    with tempfile.TemporaryDirectory(prefix="mcode-bench-start-") as tmp:
        repo = make_repo(Path(tmp) / "repo", {"calc.py": "def add(a, b):\n    return a + b\n"})
        env = terminal_env(
            Path(tmp) / "home",
            MCODE_MODEL="openai/mock-model",
            MCODE_API_BASE=server.url,
            OPENAI_API_KEY="sk-bench",
            MCODE_EMBEDDING_MODEL="none",
            LITELLM_LOCAL_MODEL_COST_MAP="True",
            PYTHONPATH=str(options.src.resolve()),
        )
        rows: dict[str, list[float]] = {}
        load_before = os.getloadavg()
        for _ in range(options.runs):
            python = sys.executable
            rows.setdefault("python -c pass", []).append(run([python, "-c", "pass"], env, repo))
            rows.setdefault("import litellm", []).append(
                run([python, "-c", "import litellm"], env, repo)
            )
            rows.setdefault("mcode --help", []).append(
                run([python, "-m", "mcode", "--help"], env, repo)
            )
            first, wall = headless(server, env, repo)
            rows.setdefault("mcode -p: first request", []).append(first)
            rows.setdefault("mcode -p: wall", []).append(wall)
            rows.setdefault("mcode: REPL ready", []).append(repl_ready(env, repo))
        imports = slowest_imports(env, repo) if options.importtime else []
    server.stop()

    figures: dict[str, Any] = {name: summary(values) for name, values in rows.items()}
    goal = figures["import litellm"]["median"] + 0.5
    report = {
        "figures": figures,
        "goal_first_request": goal,
        "cpus": os.cpu_count(),
        "load": [load_before, os.getloadavg()],
        "slowest_imports": imports,
    }
    if options.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{os.cpu_count()} CPUs, load {load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}")
    for name, values in figures.items():
        print(f"{name:26} best {values['best']:6.2f} s   median {values['median']:6.2f} s")
    first = figures["mcode -p: first request"]["median"]
    verdict = "met" if first <= goal else "not met"
    print(f"goal: first request <= import litellm + 0.5 s = {goal:.2f} s: {verdict}")
    for seconds, name in imports:
        print(f"  import {name:50} {seconds:6.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
