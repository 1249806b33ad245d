"""Which file a bug report is about: the ranking signals `mcode search --level file` weighs, each shown
on a small repository where it decides the answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cli import run_in_process
from support.repos import make_repo, mcode_env

API = '''"""The public face: what every command module decorates itself with."""


def command(name=None):
    """Register a function as a command."""
    return lambda f: f


def option(flag, default=None):
    """Add an option to a command."""
    return lambda f: f
'''

PAGER = '''"""Paging long output."""


def pipe_pager(lines, cmd):
    """Feed lines to the pager's stdin and restore the terminal afterwards."""
    for line in lines:
        cmd.stdin.write(line)
'''


def user(name: str) -> str:
    return f"""from app.api import command, option


@command()
@option("--{name}")
def {name}_cmd({name}):
    return {name}
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return mcode_env(tmp_path / "home", MCODE_EMBEDDING_MODEL="none")


def files_for(repo: Path, env: dict[str, str], report: str) -> list[str]:
    assert run_in_process(["index", "--repo", str(repo)], env).returncode == 0
    out = run_in_process(
        ["search", "-", "--level", "file", "--json", "--repo", str(repo)], env, stdin=report
    )
    assert out.returncode == 0, out.stderr
    return [r["path"] for r in json.loads(out.stdout)["results"]]


def test_names_every_file_uses_weigh_less_than_the_one_the_report_is_about(tmp_path, env):
    """The reporter's example code names the API everybody calls (`command`, `option`); the one
    rarely used name it mentions (`pipe_pager`) is where the bug is."""
    files = {"app/api.py": API, "app/pager.py": PAGER, "app/__init__.py": ""}
    files |= {f"app/commands/{n}.py": user(n) for n in ("build", "clean", "serve", "deploy")}
    files |= {f"tests/test_{n}.py": user(n) for n in ("build", "serve")}
    repo = make_repo(tmp_path / "repo", files)
    report = """Terminal left broken after paging

```python
@command()
@option("--verbose")
def show(verbose):
    pipe_pager(lines, cmd)
```
"""
    assert files_for(repo, env, report)[0] == "app/pager.py"
