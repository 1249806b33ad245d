"""Providers per project: `mcode model`, where the model comes from, keys, and local Ollama."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.repos import make_repo
from typer.testing import CliRunner, Result

from mcode.agent.providers import (
    NO_MODEL_MESSAGE,
    NoModelError,
    api_key_for,
    detect_ollama,
    resolve_model,
)
from mcode.cli.app import app
from mcode.config import Paths, Settings, load_settings
from mcode.config.toml_edit import set_toml_keys

runner = CliRunner()
CLOSED = "http://127.0.0.1:9"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"main.py": "print('hi')\n"})


@pytest.fixture(autouse=True)
def _no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own keys must not pick a default model in these tests."""
    for var in [v for v in os.environ if v.endswith("_API_KEY")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("MCODE_OLLAMA_URL", CLOSED)


def mcode(repo: Path, *args: str, **env: str) -> Result:
    return runner.invoke(app, ["model", *args, "--repo", str(repo)], env=env)


def settings(repo: Path, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    return load_settings(
        Paths.for_repo(repo), overrides=overrides, env={"MCODE_OLLAMA_URL": CLOSED, **(env or {})}
    )


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_setting_the_model_writes_the_project_config_and_showing_names_its_source(
    repo: Path,
) -> None:
    config = repo / ".agentmemory" / "config.toml"
    write(config, '# team settings\napi_base = "http://proxy:4000"\n\n[review]\nstrict = true\n')
    assert runner.invoke(app, ["trust", "--repo", str(repo)]).exit_code == 0

    set_result = mcode(repo, "openai/gpt-4.1")  # the user's own act: the file stays trusted
    shown = mcode(repo)

    assert set_result.exit_code == 0, set_result.stderr
    assert "model set to openai/gpt-4.1 in .agentmemory/config.toml" in set_result.stdout
    text = config.read_text()
    assert text.startswith(
        '# team settings\napi_base = "http://proxy:4000"\nmodel = "openai/gpt-4.1"\n'
    )
    assert text.endswith("[review]\nstrict = true\n")
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "model: openai/gpt-4.1 (from .agentmemory/config.toml)"
    assert "api base: http://proxy:4000 (from .agentmemory/config.toml)" in lines
    assert "key: OPENAI_API_KEY not set" in lines

    again = mcode(repo, "anthropic/claude-sonnet-4-5")
    assert again.exit_code == 0
    assert config.read_text().count("model =") == 1
    assert 'model = "anthropic/claude-sonnet-4-5"' in config.read_text()


def test_the_environment_overrides_the_project_and_says_so(repo: Path) -> None:
    mcode(repo, "openai/gpt-4.1")

    shown = mcode(repo, "--json", MCODE_MODEL="ollama_chat/qwen2.5-coder")
    again = mcode(repo, "openai/gpt-4o", MCODE_MODEL="ollama_chat/qwen2.5-coder")

    data = json.loads(shown.stdout)
    assert data["model"] == {
        "value": "ollama_chat/qwen2.5-coder",
        "source": "environment variable MCODE_MODEL",
    }
    assert data["effective"]["model"] == "ollama_chat/qwen2.5-coder"
    assert "key" not in data  # a local model needs none
    assert again.exit_code == 0
    assert "MCODE_MODEL=ollama_chat/qwen2.5-coder in the environment takes precedence" in (
        again.stderr
    )


def test_a_model_name_without_a_provider_is_refused(repo: Path) -> None:
    result = mcode(repo, "gpt-4o")
    assert result.exit_code == 2
    assert "provider/model" in result.stderr
    assert not (repo / ".agentmemory" / "config.toml").exists()


def test_precedence_is_flag_then_environment_then_project_then_user(repo: Path) -> None:
    paths = Paths.for_repo(repo)
    write(paths.user_config_file, 'model = "openai/from-user"\n')
    assert resolve_model(settings(repo)).model == "openai/from-user"
    write(paths.project_config, 'model = "openai/from-project"\n')
    assert resolve_model(settings(repo)).model == "openai/from-project"
    from_env = settings(repo, {"MCODE_MODEL": "openai/from-env"})
    assert resolve_model(from_env).model == "openai/from-env"
    assert from_env.sources["model"] == "MCODE_MODEL"
    assert resolve_model(from_env, flag="openai/from-flag").model == "openai/from-flag"
    assert settings(repo, model="openai/override").sources["model"] == "--model"


def test_keys_come_from_the_environment_or_the_user_config_never_the_project(repo: Path) -> None:
    paths = Paths.for_repo(repo)
    write(
        paths.user_config_file,
        'model = "openai/gpt-4o"\n[keys]\nOPENAI_API_KEY = "sk-user"\nANTHROPIC_API_KEY = "sk-a"\n',
    )
    write(
        paths.project_config,
        'model = "openai/gpt-4.1"\napi_key = "sk-leaked"\n[keys]\nX_KEY = "x"\n',
    )

    loaded = settings(repo, {"ANTHROPIC_API_KEY": "sk-env"})

    assert api_key_for(loaded, "openai/gpt-4.1") == "sk-user"
    assert api_key_for(loaded, "anthropic/claude-sonnet-4-5") == "sk-env"  # environment wins
    assert api_key_for(loaded, "ollama_chat/llama3.1") is None
    assert "sk-leaked" not in repr(loaded) and "sk-user" not in repr(loaded)
    assert loaded.model == "openai/gpt-4.1"  # the rest of the project file still counts
    assert "api_key" not in loaded.extra and "keys" not in loaded.extra
    assert len(loaded.warnings) == 1
    assert "`api_key`" in loaded.warnings[0] and "`keys`" in loaded.warnings[0]
    shown = mcode(repo)
    assert "warning:" in shown.stdout and "never read from the repository" in shown.stdout
    key_line = next(line for line in shown.stdout.splitlines() if line.startswith("key:"))
    assert key_line == f"key: OPENAI_API_KEY set (from {paths.user_config_file})"


def test_a_key_without_a_model_picks_that_providers_default(repo: Path) -> None:
    choice = resolve_model(settings(repo, {"ANTHROPIC_API_KEY": "sk-a"}))
    assert choice.model == "anthropic/claude-sonnet-4-5" and choice.api_key == "sk-a"
    assert "ANTHROPIC_API_KEY" in choice.note


class _Tags:
    """A fake Ollama that only lists its models."""

    def __init__(self, models: list[str]) -> None:
        payload = json.dumps({"models": [{"name": m} for m in models]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                ok = self.path == "/api/tags"
                body = payload if ok else b"{}"
                self.send_response(200 if ok else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def ollama() -> Iterator[_Tags]:
    server = _Tags(["qwen2.5-coder:7b", "llama3.1:latest"])
    yield server
    server.stop()


def test_with_nothing_configured_a_local_ollama_is_offered(repo: Path, ollama: _Tags) -> None:
    assert detect_ollama(ollama.url) == ["qwen2.5-coder:7b", "llama3.1:latest"]
    choice = resolve_model(settings(repo, {"MCODE_OLLAMA_URL": ollama.url}))
    assert choice.model == "ollama_chat/qwen2.5-coder:7b"
    assert choice.api_base == ollama.url and choice.api_key is None
    assert "mcode model" in choice.note

    shown = mcode(repo, MCODE_OLLAMA_URL=ollama.url)
    assert "model: not set" in shown.stdout
    assert f"in use: ollama_chat/qwen2.5-coder:7b (Ollama at {ollama.url})" in shown.stdout


def test_with_nothing_at_all_the_advice_says_what_to_set(repo: Path) -> None:
    started = time.monotonic()
    assert detect_ollama(CLOSED) == []
    with pytest.raises(NoModelError) as raised:
        resolve_model(settings(repo))
    assert time.monotonic() - started < 2
    assert str(raised.value) == NO_MODEL_MESSAGE
    shown = mcode(repo)
    assert shown.exit_code == 0
    assert NO_MODEL_MESSAGE in shown.stdout


def test_the_toml_update_keeps_everything_else() -> None:
    text = '# keep me\nmodel = "old"  # note\nweak_model = "w"\n\n[fallback]\nmodel = "x"\n'
    updated = set_toml_keys(text, {"model": "openai/new"})
    assert (
        updated == '# keep me\nmodel = "openai/new"\nweak_model = "w"\n\n[fallback]\nmodel = "x"\n'
    )
    assert set_toml_keys("", {"model": 'a"b'}) == 'model = "a\\"b"\n'
    assert set_toml_keys("[t]\nk = 1\n", {"model": "m"}) == 'model = "m"\n\n[t]\nk = 1\n'
