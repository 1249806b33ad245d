"""Which file a bug report is about: the ranking signals `mcode search --level file` weighs, each shown
on a small repository where it decides the answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cli import run_in_process
from support.repos import indexed_repo, make_repo, mcode_env

from mcode.retrieval.ranking import SIGNALS, Weights, rank_files
from mcode.retrieval.search import Searcher

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


PAGER_FILES = {"app/api.py": API, "app/pager.py": PAGER, "app/__init__.py": ""}
PAGER_FILES |= {f"app/commands/{n}.py": user(n) for n in ("build", "clean", "serve", "deploy")}
PAGER_FILES |= {f"tests/test_{n}.py": user(n) for n in ("build", "serve")}
PAGER_REPORT = """Terminal left broken after paging

```python
@command()
@option("--verbose")
def show(verbose):
    pipe_pager(lines, cmd)
```
"""


def test_names_every_file_uses_weigh_less_than_the_one_the_report_is_about(tmp_path, env):
    """The reporter's example code names the API everybody calls (`command`, `option`); the one
    rarely used name it mentions (`pipe_pager`) is where the bug is."""
    repo = make_repo(tmp_path / "repo", PAGER_FILES)
    assert files_for(repo, env, PAGER_REPORT)[0] == "app/pager.py"


def test_an_evaluation_ranks_one_search_again_under_other_weights(tmp_path):
    """What tools/eval_search.py --ablation and tools/fit_search.py rely on: the candidates a
    search gathered, ranked again, give the search's own answer under the same weights, and the
    answer of a searcher built with other weights under those."""
    with indexed_repo(tmp_path / "repo", PAGER_FILES, tmp_path / "state") as indexer:
        shipped = Searcher(indexer.root, indexer.store, indexer.manifest)
        candidates = shipped.gather(PAGER_REPORT)
        answer = [r.path for r in shipped.search(PAGER_REPORT, level="file")]
        assert answer[0] == "app/pager.py"
        assert [c.path for _, c in rank_files(candidates, Weights(), 10)] == answer

        no_rarity = Weights().without("rarity")
        ablated = Searcher(indexer.root, indexer.store, indexer.manifest, weights=no_rarity)
        answer = [r.path for r in ablated.search(PAGER_REPORT, level="file")]
        # Without the names' rarity, the API every command calls wins again.
        assert answer[0] == "app/api.py"
        assert [c.path for _, c in rank_files(candidates, no_rarity, 10)] == answer


def test_only_known_signals_can_be_switched_off():
    assert Weights().without("test_penalty").test_penalty == SIGNALS["test_penalty"] == 1.0
    with pytest.raises(ValueError, match=r"unknown signal 'recency'.*fts"):
        Weights().without("recency")
