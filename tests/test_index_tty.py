"""`mcode index` on a terminal shows its progress; piped, it prints only the summary."""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect
from support.cli import run_in_process
from support.repos import make_repo, mcode_env


def repo_with(tmp_path: Path, count: int) -> Path:
    files = {
        f"pkg/m{i}.py": f"def function_{i}(value):\n    return value * {i}\n" for i in range(count)
    }
    return make_repo(tmp_path / "repo", files)


def test_progress_is_drawn_on_a_terminal(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, 300)
    env = mcode_env(tmp_path / "home", MCODE_EMBEDDING_MODEL="none", TERM="xterm")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "mcode", "index", "--repo", str(repo)],
        env=env,
        encoding="utf-8",
        dimensions=(24, 100),
        timeout=120,
    )
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
