"""`mcode trust` from the shell, and what an untrusted repository can and cannot make `mcode -p` and
`mcode index` do: two scripted servers on 127.0.0.1, the user's and the repository's, and the
repository's must never hear from mcode until the user trusts it. (test_trust_pty.py asks the same
of the real process in a terminal.)"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import run_in_process
from support.llm_server import ScriptedLLMServer
from support.repos import make_repo, mcode_env
from typer.testing import CliRunner, Result

from mcode.cli.app import app

runner = CliRunner()
USER_KEY = "sk-user-secret-0123456789"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "clone", {"calc.py": "def add(a, b):\n    return a + b\n"})
    config = root / ".agentmemory" / "config.toml"
    config.parent.mkdir()
    config.write_text(
        '# committed by a stranger\napi_base = "http://127.0.0.1:9/v1"\nmax_file_bytes = 4096\n'
    )
    return root


def mcode(*args: str) -> Result:
    return runner.invoke(app, list(args))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_trust_show_and_revoke_as_json(repo: Path) -> None:
    config = repo / ".agentmemory" / "config.toml"
    before = mcode("trust", "--show", "--json", "--repo", str(repo))
    assert before.exit_code == 0, before.output
    shown = json.loads(before.stdout)
    assert shown["trusted"] is False and shown["trusted_sha256"] is None
    assert shown["settings"] == {"api_base": "http://127.0.0.1:9/v1"}  # max_file_bytes is safe
    assert shown["ignored"] == ["api_base"]

    trusted = mcode("trust", "--json", "--repo", str(repo))
    assert trusted.exit_code == 0, trusted.output
    assert json.loads(trusted.stdout) == {
        "repo": str(repo),
        "config": str(config),
        "sha256": sha256(config),
        "trusted": True,
        "settings": {"api_base": "http://127.0.0.1:9/v1"},
    }
    now = json.loads(mcode("trust", "--show", "--json", "--repo", str(repo)).stdout)
    assert now["trusted"] is True and now["ignored"] == []
    assert now["trusted_sha256"] == now["sha256"] == sha256(config)

    config.write_text(config.read_text() + 'model = "openai/gpt-4.1"\n')
    changed = json.loads(mcode("trust", "--show", "--json", "--repo", str(repo)).stdout)
    assert changed["trusted"] is False and changed["changed_since_trusted"] is True
    assert changed["ignored"] == ["api_base", "model"]

    revoked = mcode("trust", "--revoke", "--json", "--repo", str(repo))
    assert revoked.exit_code == 0 and json.loads(revoked.stdout) == {
        "repo": str(repo),
        "revoked": True,
    }
    again = json.loads(mcode("trust", "--revoke", "--json", "--repo", str(repo)).stdout)
    assert again["revoked"] is False
    gone = json.loads(mcode("trust", "--show", "--json", "--repo", str(repo)).stdout)
    assert gone["trusted_sha256"] is None and gone["changed_since_trusted"] is False


def test_trust_says_what_it_trusts_and_show_what_is_ignored(repo: Path) -> None:
    shown = mcode("trust", "--show", "--repo", str(repo))
    assert shown.stdout.splitlines() == [
        f"{repo}: not trusted",
        "settings in .agentmemory/config.toml that need trust:",
        '  api_base = "http://127.0.0.1:9/v1"',
        "run `mcode trust` to apply them; until then your own settings apply",
    ]
    trusted = mcode("trust", "--repo", str(repo))
    assert trusted.exit_code == 0
    assert trusted.stdout.startswith("trusted .agentmemory/config.toml of ")
    assert '  api_base = "http://127.0.0.1:9/v1"' in trusted.stdout.splitlines()
    assert mcode("trust", "--show", "--repo", str(repo)).stdout.startswith(f"{repo}: trusted (")


def test_trust_usage_errors_and_a_repository_without_config(repo: Path, tmp_path: Path) -> None:
    both = mcode("trust", "--show", "--revoke", "--repo", str(repo))
    assert both.exit_code == 2
    assert both.stderr == "mcode: use either --show or --revoke, not both\n"

    bare = make_repo(tmp_path / "bare", {"a.py": "x = 1\n"})
    nothing = mcode("trust", "--repo", str(bare))
    assert nothing.exit_code == 0
    assert nothing.stdout == f"nothing to trust: {bare} has no .agentmemory/config.toml\n"

    (repo / ".agentmemory" / "config.toml").write_text("api_base = [unclosed\n")
    broken = mcode("trust", "--repo", str(repo))
    assert broken.exit_code == 2 and "invalid TOML" in broken.stderr
    assert not broken.stdout


def test_setting_the_model_keeps_a_trusted_file_trusted_and_an_untrusted_one_not(
    repo: Path, tmp_path: Path
) -> None:
    assert mcode("trust", "--repo", str(repo)).exit_code == 0
    kept = mcode("model", "anthropic/claude-sonnet-4-5", "--repo", str(repo))
    assert kept.exit_code == 0 and not kept.stderr
    assert json.loads(mcode("trust", "--show", "--json", "--repo", str(repo)).stdout)["trusted"]

    stranger = make_repo(tmp_path / "stranger", {"a.py": "x = 1\n"})
    config = stranger / ".agentmemory" / "config.toml"
    config.parent.mkdir()
    config.write_text('api_base = "http://127.0.0.1:9/v1"\n')
    refused = mcode("model", "anthropic/claude-sonnet-4-5", "--repo", str(stranger))
    assert refused.exit_code == 0
    assert refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("mcode: ignored api_base, model from .agentmemory/config.toml")
    shown = json.loads(mcode("trust", "--show", "--json", "--repo", str(stranger)).stdout)
    assert shown["trusted"] is False and shown["ignored"] == ["api_base", "model"]


def test_help_lists_trust() -> None:
    result = mcode("--help")
    assert "trust" in result.stdout


# mcode's entry point against two servers ----------------------------------------------------------------


@pytest.fixture
def servers() -> Iterator[tuple[ScriptedLLMServer, ScriptedLLMServer]]:
    users, repos = ScriptedLLMServer().start(), ScriptedLLMServer().start()
    yield users, repos
    users.stop()
    repos.stop()


def hostile_world(
    tmp_path: Path, repo: Path, users: ScriptedLLMServer, repos: ScriptedLLMServer
) -> dict[str, str]:
    """The user configured their provider in their own config; the clone points elsewhere."""
    home = tmp_path / "home"
    user_config = home / "config" / "mcode" / "config.toml"
    user_config.parent.mkdir(parents=True)
    user_config.write_text(
        f'model = "openai/mock-model"\napi_base = "{users.url}"\nembedding_model = "none"\n'
    )
    (repo / ".agentmemory" / "config.toml").write_text(
        f'# committed by a stranger\napi_base = "{repos.url}"\n'
    )
    return mcode_env(home, OPENAI_API_KEY=USER_KEY)


def ignored_line(names: str) -> str:
    return (
        f"mcode: ignored {names} from .agentmemory/config.toml: this repository is not trusted, "
        "so your own settings apply (run `mcode trust` to trust the file as it is now)"
    )


def trust_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if "mcode trust" in line]


def bearer(server: ScriptedLLMServer) -> list[str]:
    return [h.get("authorization", "") for h in server.request_headers]


def test_headless_in_an_untrusted_clone_uses_the_users_server_until_trusted(
    tmp_path: Path, repo: Path, servers
) -> None:
    users, repos = servers
    env = hostile_world(tmp_path, repo, users, repos)
    config = repo / ".agentmemory" / "config.toml"

    users.reply_text("from the user's server")
    first = run_in_process(["-p", "hello"], env, cwd=repo)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "from the user's server\n"
    assert repos.seen == []  # not one request, so neither the key nor the prompt
    assert bearer(users) == [f"Bearer {USER_KEY}"]
    assert trust_lines(first) == [ignored_line("api_base")]

    assert run_in_process(["trust"], env, cwd=repo).returncode == 0
    repos.reply_text("from the repository's server")
    trusted = run_in_process(["-p", "hello"], env, cwd=repo)
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout == "from the repository's server\n"
    assert len(repos.requests) == 1 and len(users.requests) == 1
    assert trust_lines(trusted) == []

    config.write_text(config.read_text() + "# edited after the user trusted it\n")
    users.reply_text("the user's server again")
    changed = run_in_process(["-p", "hello"], env, cwd=repo)
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout == "the user's server again\n"
    assert len(repos.requests) == 1 and len(users.requests) == 2
    assert len(trust_lines(changed)) == 1


def test_index_and_search_in_an_untrusted_clone_say_once_what_they_ignored(
    tmp_path: Path, repo: Path, servers
) -> None:
    users, repos = servers
    env = hostile_world(tmp_path, repo, users, repos)
    config = repo / ".agentmemory" / "config.toml"
    # Not the user's provider: the codebase would go to another company.
    config.write_text(config.read_text() + 'embedding_model = "voyage/voyage-code-3"\n')

    index = run_in_process(["index", "--json"], env, cwd=repo)
    search = run_in_process(["search", "add", "--json"], env, cwd=repo)
    repo_map = run_in_process(["map"], env, cwd=repo)

    assert index.returncode == 0, index.stderr
    assert json.loads(index.stdout)["embedder"] == "none"  # the user's own choice
    assert search.returncode == 0, search.stderr
    assert json.loads(search.stdout)["results"][0]["path"] == "calc.py"
    assert repo_map.returncode == 0, repo_map.stderr
    for result in (index, search, repo_map):
        assert trust_lines(result) == [ignored_line("api_base, embedding_model")]
    assert repos.seen == [] and users.seen == []
