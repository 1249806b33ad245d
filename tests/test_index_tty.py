"""`mcode index` on a terminal shows its progress; piped, it prints only the summary."""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect
from support.cli import run_in_process
from support.llm_server import ScriptedLLMServer
from support.repos import make_repo, mcode_env


def repo_with(tmp_path: Path, count: int) -> Path:
    files = {
        f"pkg/m{i}.py": f"def function_{i}(value):\n    return value * {i}\n" for i in range(count)
    }
    return make_repo(tmp_path / "repo", files)


def spawn_index(repo: Path, env: dict[str, str]) -> pexpect.spawn:
    """`mcode index` in a pseudo-terminal of 100 x 24."""
    return pexpect.spawn(
        sys.executable,
        ["-m", "mcode", "index", "--repo", str(repo)],
        env=env,
        encoding="utf-8",
        dimensions=(24, 100),
        timeout=120,
    )


def test_progress_is_drawn_on_a_terminal(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, 300)
    env = mcode_env(tmp_path / "home", MCODE_EMBEDDING_MODEL="none", TERM="xterm")
    child = spawn_index(repo, env)
    child.expect(r"parse.*\d+/300")
    child.expect(r"indexed 300 files")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_no_progress_when_piped(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, 60)
    env = mcode_env(tmp_path / "home", MCODE_EMBEDDING_MODEL="none")
    out = run_in_process(["index", "--repo", str(repo)], env)
    assert out.returncode == 0
    assert out.stderr == ""
    assert out.stdout.startswith("indexed 60 files")


def test_vectors_are_announced_as_optional_and_ctrl_c_keeps_the_index(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    files = {
        f"pkg/{a}_{b}.py": f"def {a}_{b}_handler(value):\n    return value\n"
        for a in words
        for b in words
    }
    repo = make_repo(tmp_path / "repo", files)
    env = mcode_env(
        tmp_path / "home",
        TERM="xterm",
        MCODE_EMBEDDING_MODEL="openai/mock-embedding",
        MCODE_API_BASE=llm_server.url,
        OPENAI_API_KEY="sk-test",
    )
    llm_server.embedding_free = 1  # the embedder's dimension probe; then …
    llm_server.embedding_delay = 60.0  # … the vectors do not come before the Ctrl-C
    child = spawn_index(repo, env)
    child.expect(r"searchable by words now; vectors for 64 chunks follow")
    child.sendintr()
    child.expect(r"interrupted: what was written is kept; run `mcode index` again to finish")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130

    llm_server.embedding_delay = 0.0
    found = run_in_process(["search", "golf hotel handler", "--repo", str(repo)], env)
    assert found.returncode == 0 and found.stdout.startswith("pkg/golf_hotel.py:1-2")

    again = run_in_process(["index", "--repo", str(repo)], env)
    assert again.returncode == 0
    assert "vectors: 64 computed, 0 pending" in again.stdout
