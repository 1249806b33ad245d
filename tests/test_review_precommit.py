"""The review as the pre-commit framework runs it: real `pre-commit`, real `git commit`, the hook
definitions of this repository's `.pre-commit-hooks.yaml`, and the scripted model on 127.0.0.1.

The hook source is a git repository holding this repository's `.pre-commit-hooks.yaml`, so the
hook's id, `pass_filenames`, `require_serial` and stages are the ones users get. The config
overrides only `language` and `entry`: `language: python` would have pre-commit build a virtualenv
and pip-install mcode with every dependency (minutes, and a registry) before the first commit;
`unsupported` runs the mcode under test, with the interpreter running these tests.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from support.llm_server import ScriptedLLMServer
from support.repos import GIT_ENV, git, make_repo, mcode_env, write_files
from support.review import CONVENTION, PROJECT, TODO_MESSAGE, lessons, report

ROOT = Path(__file__).resolve().parents[1]


def commit(repo: Path, env: dict[str, str], message: str) -> subprocess.CompletedProcess[str]:
    """`git commit`, with what it and its hooks printed (git sends hooks' output to stderr) as
    `stdout`."""
    return subprocess.run(
        ["git", "commit", "-m", message],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )


def test_pre_commit_blocks_a_broken_convention_passes_a_clean_commit_caches_and_skips(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    source = make_repo(
        tmp_path / "hook-source",
        {".pre-commit-hooks.yaml": (ROOT / ".pre-commit-hooks.yaml").read_text()},
    )
    rev = git(source, "rev-parse", "HEAD").strip()
    entry = f"{shlex.quote(sys.executable)} -m mcode review"
    config = (
        f"repos:\n- repo: {source}\n  rev: {rev}\n  hooks:\n"
        f"  - id: mcode-review\n    language: unsupported\n    entry: {entry}\n"
    )
    repo = make_repo(
        tmp_path / "project",
        {
            ".pre-commit-config.yaml": config,
            ".agentmemory/blocks/project.md": PROJECT,
            ".agentmemory/blocks/lessons.md": lessons(),
            "lib/calc.py": "def add(a, b):\n    return a + b\n",
        },
    )
    home = tmp_path / "home"
    env = mcode_env(
        home,
        **GIT_ENV,
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
        GIT_CONFIG_GLOBAL=str(home / "gitconfig"),
        GIT_CONFIG_NOSYSTEM="1",
        MCODE_MODEL="openai/mock-model",
        MCODE_API_BASE=llm_server.url,
        MCODE_OLLAMA_URL="http://127.0.0.1:9",  # no Ollama to fall back on
        OPENAI_API_KEY="sk-test",
    )
    install = subprocess.run(
        [sys.executable, "-m", "pre_commit", "install"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert install.returncode == 0, install.stderr

    # A change that breaks the project block's convention is stopped, and the finding shown.
    write_files(repo, {"lib/calc.py": "def add(a, b):\n    print(a, b)\n    return a + b\n"})
    git(repo, "add", "lib/calc.py")
    llm_server.reply_tool_calls(
        report({"line": 2, "severity": "error", "quote": CONVENTION, "message": "print here"})
    )
    blocked = commit(repo, env, "add prints")
    assert blocked.returncode != 0, blocked.stdout
    assert "mcode review" in blocked.stdout and "Failed" in blocked.stdout
    assert "lib/calc.py" in blocked.stdout and "print here" in blocked.stdout
    assert len(llm_server.requests) == 1
    assert git(repo, "log", "--format=%s") == "initial\n"

    # Committing the same change again is answered from the cache: no request reaches the model.
    again = commit(repo, env, "add prints")
    assert again.returncode != 0 and "print here" in again.stdout
    assert len(llm_server.requests) == 1

    # SKIP lets it through without running the review.
    skipped = commit(repo, {**env, "SKIP": "mcode-review"}, "add prints anyway")
    assert skipped.returncode == 0, skipped.stdout
    assert "Skipped" in skipped.stdout
    assert len(llm_server.requests) == 1

    # A clean change passes.
    write_files(repo, {"lib/sub.py": "def sub(a, b):\n    return a - b\n"})
    git(repo, "add", "lib/sub.py")
    llm_server.reply_tool_calls(report())
    clean = commit(repo, env, "add sub")
    assert clean.returncode == 0, clean.stdout
    assert len(llm_server.requests) == 2

    # With no model at all, the lessons block's rule still stops the commit.
    no_model = {k: v for k, v in env.items() if k not in ("MCODE_MODEL", "OPENAI_API_KEY")}
    write_files(repo, {"lib/mul.py": "def mul(a, b):\n    return a * b  # TODO: overflow\n"})
    git(repo, "add", "lib/mul.py")
    ruled = commit(repo, no_model, "add mul")
    assert ruled.returncode != 0, ruled.stdout
    assert "lib/mul.py" in ruled.stdout and TODO_MESSAGE in ruled.stdout
    assert "model review skipped: no model configured" in ruled.stdout
    assert len(llm_server.requests) == 2
    assert git(repo, "log", "--format=%s").splitlines() == [
        "add sub",
        "add prints anyway",
        "initial",
    ]
