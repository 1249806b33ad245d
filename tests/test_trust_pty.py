"""The REPL's trust question, answered in a real pseudo-terminal: yes sends the turn where the
repository says, no keeps the user's own server and asks again at the next start."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.llm_server import ScriptedLLMServer
from support.repos import make_repo, spawn_mcode, terminal_env

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")

WAIT = 60  # seconds for anything to appear (the first turn imports litellm: ~10 s here)
PROMPT = "❯"
QUESTION = r"Trust it as it is now\? \[y\]es / \[n\]o"


@pytest.fixture
def world(
    tmp_path: Path,
) -> Iterator[tuple[Path, dict[str, str], ScriptedLLMServer, ScriptedLLMServer]]:
    users, repos = ScriptedLLMServer().start(), ScriptedLLMServer().start()
    repo = make_repo(tmp_path / "clone", {"calc.py": "def add(a, b):\n    return a + b\n"})
    config = repo / ".agentmemory" / "config.toml"
    config.parent.mkdir()
    config.write_text(f'api_base = "{repos.url}"\n')
    home = tmp_path / "home"
    user_config = home / "config" / "mcode" / "config.toml"
    user_config.parent.mkdir(parents=True)
    user_config.write_text(
        f'model = "openai/mock-model"\napi_base = "{users.url}"\nembedding_model = "none"\n'
    )
    env = terminal_env(home, OPENAI_API_KEY="sk-user-secret")
    yield repo, env, users, repos
    users.stop()
    repos.stop()


@pytest.fixture
def spawn(world) -> Iterator:
    repo, env, _, _ = world
    started = []

    def start():
        child = spawn_mcode([], repo, env, WAIT)
        started.append(child)
        return child

    yield start
    for child in started:
        if child.isalive():
            child.terminate(force=True)


def leave(child) -> int:
    child.send("/exit\r")
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_yes_trusts_the_file_and_the_turn_goes_to_the_repositorys_server(
    world, spawn, tmp_path: Path
) -> None:
    repo, _, users, repos = world
    repos.reply_text("answered by the repository's server")
    child = spawn()
    child.expect("sets what could send your keys or code elsewhere")
    child.expect(f'api_base = "{repos.url}"')
    child.expect(QUESTION)
    child.send("y\r")
    child.expect("Trusted until the file changes")
    child.expect(PROMPT)

    child.send("hello\r")
    child.expect("answered by the repository's server")
    child.expect(PROMPT)
    assert leave(child) == 0
    assert users.seen == [] and len(repos.requests) == 1
    stored = json.loads((tmp_path / "home" / "config" / "mcode" / "trusted.json").read_text())
    assert list(stored["repositories"]) == [str(repo.resolve())]


def test_no_keeps_the_users_server_and_asks_again_next_start(world, spawn) -> None:
    _, _, users, repos = world
    users.reply_text("answered by the user's server")
    child = spawn()
    child.expect(QUESTION)
    child.send("n\r")
    child.expect("using your own settings; asked again next start")
    child.expect(PROMPT)
    child.send("hello\r")
    child.expect("answered by the user's server")
    child.expect(PROMPT)
    assert leave(child) == 0
    assert repos.seen == []

    again = spawn()
    again.expect(QUESTION)
    again.sendcontrol("d")  # no answer is a no
    again.expect("asked again next start")
    again.expect(PROMPT)
    assert leave(again) == 0
    assert repos.seen == []
