"""Shared fixtures. Keep this file small: helpers live in tests/support/."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from support.llm_server import ScriptedLLMServer


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C is what many tests send (to the REPL, to `mcode watch`). A suite started in the
    background by a non-interactive shell (`.ci/run &`) inherits SIGINT ignored, and so would
    every process it starts: give it Python's own handler, which children reset to the default."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def llm_server() -> Iterator[ScriptedLLMServer]:
    """A scripted OpenAI-compatible server on 127.0.0.1; queue replies, then point a client at
    `llm_server.url` with model "openai/mock-model" and api_key "sk-test"."""
    server = ScriptedLLMServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _isolated_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads or writes the developer's own ~/.config/mcode or ~/.cache/mcode."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    for var in [v for v in os.environ if v.startswith("MCODE_")]:
        monkeypatch.delenv(var)
