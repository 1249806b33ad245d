"""Consolidation of core memory while a session runs: the REPL (fed its lines on stdin, in this
process) and `mcode -p` against the scripted server, which answers both the agent and
`sleep_model`; what reaches the server, the blocks' history and the sleep log are checked."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.cli import run_in_process
from support.llm_server import ScriptedLLMServer
from support.polling import poll
from support.repos import make_repo, mcode_env, spawn_mcode, terminal_env

from mcode.config import Paths, load_settings
from mcode.fsio import read_json_lines
from mcode.memory import BlockStore
from mcode.store import IndexLock

MODEL = "openai/mock-model"
# The first words of prompts/sleep_consolidate.md: what tells its requests from the agent's.
CONSOLIDATION = "keep a coding agent's long-term memory tidy"
TABS = "- Indent with tabs (2025-05-01)."


@dataclass
class World:
    repo: Path
    server: ScriptedLLMServer
    home: Path
    settings: dict[str, str]  # the environment variables that choose the models

    @property
    def env(self) -> dict[str, str]:
        return mcode_env(self.home, **self.settings)

    @property
    def paths(self) -> Paths:
        return Paths.for_repo(self.repo)

    def repl(self, *lines: str, **env: str) -> subprocess.CompletedProcess[str]:
        """`mcode` in the repository, its user typing `lines` and then Ctrl-D."""
        stdin = "".join(f"{line}\n" for line in lines)
        return run_in_process([], {**self.env, **env}, cwd=self.repo, stdin=stdin)

    def answers(self, count: int) -> None:
        for i in range(count):
            self.server.reply_text(f"Answer {i}.")

    def consolidations(self) -> list[str]:
        """The prompt of each consolidation request, in order."""
        prompts = [r["messages"][0]["content"] for r in self.server.requests]
        return [p for p in prompts if CONSOLIDATION in p]

    def log(self, event: str) -> list[dict]:
        return [e for e in read_json_lines(self.paths.sleep_log) if e["event"] == event]


@pytest.fixture
def world(tmp_path: Path, llm_server: ScriptedLLMServer) -> World:
    repo = make_repo(tmp_path / "repo", {"calc.py": "def add(a, b):\n    return a + b\n"})
    settings = {
        "MCODE_MODEL": MODEL,
        "MCODE_SLEEP_MODEL": MODEL,
        "MCODE_API_BASE": llm_server.url,
        "OPENAI_API_KEY": "sk-test",
        "MCODE_EMBEDDING_MODEL": "none",
    }
    return World(repo, llm_server, tmp_path / "home", settings)


def turns(count: int) -> list[str]:
    return [f"we always indent with tabs, turn {i}" for i in range(count)]


def test_every_fifth_turn_consolidates_in_the_background_and_says_what_changed(
    world: World,
) -> None:
    world.answers(5)
    world.server.reply_tool_calls([("memory_insert", {"label": "lessons", "text": TABS})])
    result = world.repl(*turns(5))
    assert result.returncode == 0, result.stderr
    assert [c for c in world.consolidations() if "turn 0" in c and "turn 4" in c]
    # The sixth request, after the fifth turn's; the session's end found nothing new to ask.
    assert len(world.server.requests) == 6 and len(world.consolidations()) == 1
    assert "memory: lessons +1 line (sleep) — /memory to see, mcode memory revert to undo" in (
        result.stdout
    )
    assert result.stdout.index("Answer 4.") < result.stdout.index("memory: lessons")
    blocks = BlockStore.for_paths(world.paths)
    entry = blocks.log("lessons")[-1]
    assert entry.actor == "sleep" and TABS in blocks.get("lessons").value
    blocks.revert("lessons", entry.id, actor="user")
    assert TABS not in blocks.get("lessons").value
    (mark,) = world.log("consolidate")
    (line,) = world.log("memory")
    assert line["applied"] == ["insert lessons"] and line["session"] == mark["session"]
    assert line["tokens"] == mark["tokens"] > 0


def test_the_end_of_a_session_consolidates_what_it_said_once(world: World) -> None:
    world.answers(2)
    world.server.reply_text("Nothing durable was said.")  # no call: a valid answer
    result = world.repl(*turns(2))
    assert result.returncode == 0, result.stderr
    (prompt,) = world.consolidations()
    assert "turn 0" in prompt and "turn 1" in prompt
    assert "memory:" not in result.stdout  # nothing changed, nothing to say
    assert world.log("consolidate")[0]["messages"] == 4


def test_clear_ends_the_session_it_leaves(world: World) -> None:
    world.answers(1)
    world.server.reply_tool_calls([("memory_insert", {"label": "project", "text": TABS})])
    result = world.repl("we indent with tabs", "/clear")
    assert result.returncode == 0, result.stderr
    (prompt,) = world.consolidations()  # the new session said nothing: nothing more is asked
    assert "we indent with tabs" in prompt
    assert "memory: project +1 line (sleep)" in result.stdout


def test_a_session_that_said_nothing_asks_nothing(world: World) -> None:
    result = world.repl()
    assert result.returncode == 0, result.stderr
    assert world.server.requests == [] and "memory" not in result.stdout


def test_without_a_sleep_model_nothing_is_asked(world: World) -> None:
    world.answers(6)
    result = world.repl(*turns(6), MCODE_SLEEP_MODEL="")
    assert result.returncode == 0, result.stderr
    assert len(world.server.requests) == 6 and world.consolidations() == []
    assert not world.paths.sleep_log.exists()


def test_the_pass_cap_stops_it_before_any_call(world: World) -> None:
    world.answers(5)
    result = world.repl(*turns(5), MCODE_SLEEP_PASS_TOKENS="100")
    assert result.returncode == 0, result.stderr
    assert world.consolidations() == [] and len(world.server.requests) == 5
    assert "memory not consolidated: the pass token budget is spent" in result.stdout
    assert "budget" in world.log("memory")[0]["skipped"]


def test_a_failing_sleep_model_costs_the_session_nothing(world: World) -> None:
    world.answers(5)
    world.server.reply_error(401, "bad key")  # the fifth turn's consolidation
    world.server.reply_error(401, "bad key")  # the session's end, which tries again
    result = world.repl(*turns(5))
    assert result.returncode == 0, result.stderr
    assert all(f"Answer {i}." in result.stdout for i in range(5))
    assert result.stdout.count("memory not consolidated: openai/mock-model:") == 2
    assert world.log("consolidate") == []  # no mark: the next try reads the same turns
    assert len(world.log("memory")) == 2


@pytest.mark.parametrize(
    ("holder", "said"),
    [
        ("editor", "the lessons block is being edited"),
        ("pass", "mcode sleep (pid"),
    ],
)
def test_nothing_runs_while_a_person_edits_a_block_or_another_pass_runs(
    world: World, holder: str, said: str
) -> None:
    world.answers(5)
    if holder == "editor":  # `mcode memory edit lessons`, its editor still open
        held = BlockStore.for_paths(world.paths).editing("lessons")
    else:  # `mcode sleep` or `mcode watch` in the middle of a pass
        held = IndexLock(world.paths.sleep_lock, "mcode sleep")
    with held:
        result = world.repl(*turns(5))
    assert world.consolidations() == []
    assert f"memory not consolidated: {said}" in result.stdout


def test_leaving_waits_for_the_last_consolidation_and_ctrl_c_skips_it(world: World) -> None:
    pexpect = pytest.importorskip("pexpect")
    world.server.reply_text("Tabs it is.")
    world.server.reply_hang()  # the consolidation at the session's end never answers
    child = spawn_mcode([], world.repo, terminal_env(world.home, **world.settings), 120)
    try:
        child.expect("❯")
        child.sendline("we indent with tabs")
        child.expect("Tabs it is.")
        child.expect("❯")
        child.sendcontrol("d")
        child.expect("consolidating memory… \\(Ctrl-C to skip\\)")
        assert poll(lambda: len(world.consolidations()) == 1, 120)  # its request hangs
        child.sendcontrol("c")
        child.expect("memory consolidation skipped")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert world.log("consolidate") == []  # no mark: nothing was recorded as done


def test_a_headless_run_consolidates_at_its_end_within_the_days_cap(world: World) -> None:
    world.server.reply_text("Tabs it is.")
    world.server.reply_tool_calls([("memory_insert", {"label": "project", "text": TABS})])
    args = ["-p", "we indent with tabs", "--output-format", "json"]
    result = run_in_process(args, world.env, cwd=world.repo)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"] == "Tabs it is."  # stdout: the result alone
    assert len(world.consolidations()) == 1
    assert "mcode: memory: project +1 line (sleep)" in result.stderr
    assert BlockStore.for_paths(world.paths).log("project")[-1].actor == "sleep"

    spent = world.log("consolidate")[0]["tokens"]
    cap = {"MCODE_SLEEP_BUDGET_TOKENS_PER_DAY": str(spent + 100)}  # no request fits in 100
    world.server.reply_text("Still tabs.")
    again = run_in_process(["-p", "and spaces in YAML"], {**world.env, **cap}, cwd=world.repo)
    assert again.returncode == 0 and again.stdout == "Still tabs.\n"
    assert len(world.consolidations()) == 1
    assert "the day token budget is spent" in again.stderr
    assert world.log("memory")[-1]["skipped"].startswith("the day token budget")


def test_a_repository_may_consolidate_less_often_but_more_often_waits_for_trust(
    tmp_path: Path,
) -> None:
    paths = Paths(repo=tmp_path / "r", user_config=tmp_path / "config", cache=tmp_path / "cache")
    paths.memory.mkdir(parents=True)
    for value, applies in (("0", True), ("20", True), ("1", False)):
        paths.project_config.write_text(f"sleep_consolidate_every = {value}\n")
        settings = load_settings(paths, env={})
        assert (settings.sleep_consolidate_every == int(value)) is applies
        assert ("sleep_consolidate_every" in settings.trust.ignored) is not applies
