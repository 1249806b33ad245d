"""The index a session keeps by itself (`mcode.retrieval.live`), in process: it builds the index of
an unindexed repository in the background and finds the agent's own edit at its next step; one
process writes while another reads what it writes and takes over once it leaves; a headless run
leaves the lexical index complete and current; `auto_index = false` and `--no-index` leave the
repository alone. The terminal end to end is test_repl_live_index.py's."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
from support.cli import run_in_process
from support.llm_server import ScriptedLLMServer
from support.polling import poll
from support.repos import make_repo, mcode_env
from support.scripted_model import ScriptedModel

from mcode.agent.session import AgentSession
from mcode.config import ConfigError, Paths, Settings, load_settings
from mcode.index.pipeline import open_index
from mcode.retrieval.live import LiveIndex
from mcode.retrieval.workspace import Workspace
from mcode.watch import Turns

WAIT = 120  # a ceiling for anything the background thread does, on a busy machine
MODEL = "openai/mock-model"


def sources(count: int) -> dict[str, str]:
    return {
        f"pkg/mod_{i:03d}.py": f"def handler_{i}(request):\n    return request.reply({i})\n"
        for i in range(count)
    }


def settings_for(repo: Path, **env: str) -> Settings:
    base = {"MCODE_EMBEDDING_MODEL": "none", "MCODE_MODEL": MODEL, "OPENAI_API_KEY": "sk-test"}
    return load_settings(Paths.for_repo(repo), env={**base, **env})


def paths_found(index: LiveIndex, query: str) -> list[str]:
    return [hit.path for hit in index.search(query, 5, "symbol")]


def test_urgent_turns_go_before_polite_ones_and_are_told_apart() -> None:
    turns = Turns()
    order: list[str] = []
    turns.acquire(polite=True)
    assert not turns.wanted()
    urgent = threading.Thread(target=lambda: (turns.acquire(), order.append("urgent")))
    urgent.start()
    assert poll(turns.wanted, WAIT)  # the polite holder sees that it should step aside
    polite = threading.Thread(target=lambda: (turns.acquire(polite=True), order.append("polite")))
    polite.start()
    turns.release()
    urgent.join(WAIT)
    assert order == ["urgent"] and not turns.acquire(timeout=0.01)  # urgent holds it now
    turns.release()
    polite.join(WAIT)
    assert order == ["urgent", "polite"]


def test_a_session_indexes_an_unindexed_repo_and_finds_its_own_edit_at_the_next_step(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo", sources(30))
    model = ScriptedModel(MODEL)
    created = "def frobnicate_widgets(count):\n    return count * 2\n"
    model.reply_tool_calls([("create_file", {"path": "pkg/widgets.py", "content": created})])
    model.reply_tool_calls([("code_search", {"query": "frobnicate_widgets"})])
    model.reply_text("Found it.")

    session = AgentSession.open(settings_for(repo), client=model, permission_mode="auto")
    try:
        result = session.run_turn("Add frobnicate_widgets, then find it")
        assert result.stop_reason == "done"
        found = [m for m in model.requests[2]["messages"] if m["role"] == "tool"][-1]["content"]
        assert found.startswith("1. pkg/widgets.py:1-2 function frobnicate_widgets")
        assert poll(lambda: session.status().index == "indexed just now, up to date", WAIT)
    finally:
        session.close()
    assert (repo / ".agentmemory" / "index" / "manifest.db").is_file()


def test_while_another_process_writes_the_session_reads_its_writes_then_takes_over(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo", sources(5))
    settings = settings_for(repo)
    indexer, lock = open_index(settings, None, purpose="mcode watch")
    notices: list[str] = []
    live = LiveIndex.open(settings, notices.append)
    try:
        assert poll(lambda: "kept by mcode watch (pid" in live.status(), WAIT)
        indexer.update()
        assert poll(lambda: live.code is not None, WAIT)
        assert paths_found(live, "handler_3")[0] == "pkg/mod_003.py"
        (repo / "pkg" / "extra.py").write_text("def quixotic_handler():\n    return 1\n")
        live.sync(["pkg/extra.py"])  # not the writer: leaves it to the other process
        indexer.process_changes(["pkg/extra.py"])
        assert poll(lambda: "pkg/extra.py" in paths_found(live, "quixotic_handler"), WAIT)

        indexer.manifest.close()
        lock.release()  # the other process leaves: this one writes from now on
        (repo / "pkg" / "later.py").write_text("def zanzibar_routine():\n    return 2\n")
        assert poll(lambda: "pkg/later.py" in paths_found(live, "zanzibar_routine"), WAIT)
        assert poll(lambda: live.status() == "indexed just now, up to date", WAIT)
    finally:
        live.close()
    assert notices == []  # no lock error, nothing to report


def test_closing_in_the_middle_of_the_first_pass_stops_it_and_the_next_run_completes(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo", sources(400))
    settings = settings_for(repo)
    live = LiveIndex.open(settings, lambda text: None)
    # Under way (on a fast machine the pass may be over already: then closing has less to stop).
    assert poll(lambda: re.match(r"indexing \d|indexed", live.status()) is not None, WAIT)
    started = time.monotonic()
    live.close()
    assert time.monotonic() - started < WAIT

    indexer, lock = open_index(settings, None)  # the lock is free again
    try:
        indexer.update()
        assert indexer.manifest.file_count() == 400
    finally:
        indexer.manifest.close()
        lock.release()


def process_env(tmp_path: Path, server: ScriptedLLMServer) -> dict[str, str]:
    """The environment of an `mcode` command talking to the scripted server."""
    return mcode_env(
        tmp_path / "home",
        MCODE_MODEL=MODEL,
        MCODE_API_BASE=server.url,
        OPENAI_API_KEY="sk-test",
        MCODE_EMBEDDING_MODEL="none",
    )


def test_a_headless_run_leaves_the_lexical_index_complete_and_current(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    repo = make_repo(tmp_path / "repo", sources(60))
    env = process_env(tmp_path, llm_server)
    # A shell command changes a file no edit tool names: only the watcher, or the last pass, sees it.
    made = "printf 'def made_by_shell():\\n    return 3\\n' > pkg/shell_made.py"
    llm_server.reply_tool_calls([("run_shell", {"command": made})])
    llm_server.reply_text("Made it.")

    run = run_in_process(
        ["-p", "make a file", "--output-format", "json", "--permission-mode", "auto"], env, repo
    )

    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["result"] == "Made it."  # the output stays one JSON object
    workspace = Workspace.open_reader(settings_for(repo))
    try:
        assert workspace.manifest.file_count() == 61
        hits = workspace.searcher().search("made_by_shell", 3)
        assert hits[0].path == "pkg/shell_made.py"
    finally:
        workspace.manifest.close()


def test_auto_index_false_and_no_index_leave_the_repository_unindexed(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    configured = make_repo(tmp_path / "configured", sources(3))
    (configured / ".agentmemory").mkdir()
    (configured / ".agentmemory" / "config.toml").write_text("auto_index = false\n")
    flagged = make_repo(tmp_path / "flagged", sources(3))
    env = process_env(tmp_path, llm_server)
    llm_server.reply_tool_calls([("code_search", {"query": "handler_1"})])
    llm_server.reply_text("No index.")

    headless = run_in_process(["-p", "find handler_1"], env, configured)
    repl = run_in_process(["--no-index"], env, flagged, stdin="/exit\n")

    assert headless.returncode == 0, headless.stderr
    assert "trust" not in headless.stderr  # a safe setting: it applies without asking
    result = next(m for m in llm_server.requests[1]["messages"] if m["role"] == "tool")["content"]
    assert "not available yet" in result and "mcode index" in result
    assert repl.returncode == 0, repl.stderr
    for repo in (configured, flagged):
        assert not (repo / ".agentmemory" / "index" / "manifest.db").exists()


def test_auto_index_reads_as_a_boolean_from_every_layer(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {})
    assert settings_for(repo).auto_index is True
    assert settings_for(repo, MCODE_AUTO_INDEX="off").auto_index is False
    (repo / ".agentmemory").mkdir()
    (repo / ".agentmemory" / "config.toml").write_text("auto_index = false\n")
    settings = settings_for(repo)
    assert settings.auto_index is False and not settings.trust.sensitive
    (repo / ".agentmemory" / "config.toml").write_text('auto_index = "sometimes"\n')
    with pytest.raises(ConfigError, match="auto_index must be true or false"):
        settings_for(repo)
