"""The REPL without a terminal: slash commands against a fake session that records its calls,
completion, `@path` attachments, and the turn runner's threads (questions, Ctrl-C)."""

from __future__ import annotations

import _thread
import io
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from rich.console import Console
from support.repos import git, make_repo, plant_git_traps

from mcode.agent.events import TextDelta, TurnFinished, TurnResult
from mcode.agent.messages import Usage
from mcode.config import Paths, Settings, load_settings
from mcode.memory.sessions import SessionLog
from mcode.repl.app import Repl, StatusLine, TurnRunner
from mcode.repl.commands import (
    COMMANDS,
    COMMIT_PROMPT,
    CommandContext,
    Exit,
    Submit,
    command_help,
    run_command,
)
from mcode.repl.completion import ReplCompleter, RepoFiles, attach_mentions, rank_paths
from mcode.repl.render import Renderer
from mcode.tools import FileUndo, RepoAccess, Request, TurnCheckpoint, write_file

DESIGN_COMMANDS = [
    "help",
    "model",
    "memory",
    "remember",
    "search",
    "map",
    "context",
    "compact",
    "undo",
    "diff",
    "commit",
    "clear",
    "resume",
    "init",
    "exit",
]

# A fake session ----------------------------------------------------------------------------------


@dataclass
class Hit:
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    snippet: str


@dataclass
class FakeCode:
    hits: list[Hit] = field(default_factory=list)
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def search(self, query: str, k: int, level: str) -> list[Hit]:
        self.calls.append(("search", query, k, level))
        return self.hits

    def repo_map(self, tokens: int, *, focus: Any = (), query: str = "") -> str:
        self.calls.append(("repo_map", tokens))
        return "src/main.py:\n  def main()\n"


@dataclass
class FakeStatus:
    session_id: str
    model: str
    session_tokens: int = 1234
    session_cost_usd: float = 0.0125
    index: str = "indexed just now, up to date"
    permission_mode: str = "ask"


class FakeSession:
    """Records every call; `turn` decides what a turn does (by default: answers "ok")."""

    def __init__(self, session_id: str = "s-1", code: FakeCode | None = None) -> None:
        self.session_id = session_id
        self.model = "openai/mock-model"
        self.code = code
        self.calls: list[tuple[Any, ...]] = []
        self.undone: list[FileUndo] = []
        self.cancelled = threading.Event()
        self.turn = lambda text: TurnResult("ok", "done")

    def run_turn(self, user_text: str, *, max_steps: int | None = None) -> TurnResult:
        self.calls.append(("run_turn", user_text))
        return self.turn(user_text)

    def cancel(self) -> None:
        self.calls.append(("cancel",))
        self.cancelled.set()

    def undo(self) -> list[FileUndo]:
        self.calls.append(("undo",))
        undone, self.undone = self.undone, []
        return undone

    def switch_model(self, name: str) -> None:
        self.calls.append(("switch_model", name))
        if " " in name:
            raise ValueError(f"invalid model name {name!r}")
        self.model = name

    def context_report(self) -> str:
        self.calls.append(("context_report",))
        return "system prompt 1,200 tokens\nconversation 300 tokens"

    def compact(self) -> str:
        self.calls.append(("compact",))
        return "Summarised 4 messages."

    def remember(self, text: str) -> None:
        self.calls.append(("remember", text))

    def status(self) -> FakeStatus:
        return FakeStatus(self.session_id, self.model)

    def close(self) -> None:
        self.calls.append(("close",))


def console() -> Console:
    return Console(width=80, file=io.StringIO(), force_terminal=False, color_system=None)


def text_of(out: Console) -> str:
    assert isinstance(out.file, io.StringIO)
    return "\n".join(line.rstrip() for line in out.file.getvalue().splitlines())


# Fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {"greet.py": 'print("hello")\n', "src/main.py": "def main():\n    pass\n"},
    )


@pytest.fixture
def settings(repo: Path) -> Settings:
    return load_settings(Paths.for_repo(repo))


@dataclass
class World:
    ctx: CommandContext
    session: FakeSession
    out: Console
    opened: list[str | None]

    def run(self, line: str) -> Any:
        return run_command(self.ctx, line)

    @property
    def text(self) -> str:
        return text_of(self.out)


@pytest.fixture
def world(settings: Settings) -> World:
    out = console()
    session = FakeSession(code=FakeCode())
    opened: list[str | None] = []

    def open_session(ref: str | None) -> FakeSession:
        opened.append(ref)
        return FakeSession(session_id=ref or f"new-{len(opened)}")

    return World(CommandContext(session, settings, out, open_session), session, out, opened)


# The registry --------------------------------------------------------------------------------------


def test_the_registry_has_the_commands_users_expect_each_with_help() -> None:
    assert list(COMMANDS) == DESIGN_COMMANDS
    for name, command in COMMANDS.items():
        assert command.name == name
        assert command.help, f"/{name} has no docstring for /help"


def test_help_lists_every_command_with_its_docstring(world: World) -> None:
    assert world.run("/help") is None
    for command in COMMANDS.values():
        assert f"/{command.name}" in world.text
        assert command.help in world.text
    assert "/memory [list | show LABEL]" in world.text


def test_an_unknown_command_is_reported(world: World) -> None:
    assert world.run("/frobnicate now") is None
    assert "Error: unknown command /frobnicate; /help lists the commands" in world.text


def test_model_shows_or_switches(world: World) -> None:
    world.run("/model")
    assert "Model: openai/mock-model" in world.text
    world.run("/model anthropic/claude-sonnet-4")
    assert ("switch_model", "anthropic/claude-sonnet-4") in world.session.calls
    assert "Switched to anthropic/claude-sonnet-4 for this session." in world.text
    world.run("/model not a model")
    assert "Error: invalid model name 'not a model'" in world.text


def test_memory_lists_and_shows_blocks(world: World) -> None:
    world.run("/memory")
    for label in ("persona", "human", "project", "lessons"):
        assert re.search(rf"^{label}\s+(project|user)\s+\d+/\d+", world.text, re.M), label
    world.run("/memory show nosuch")
    assert "Error:" in world.text and "nosuch" in world.text
    world.run("/memory show project")
    assert re.search(r"^project \(project, \d+/\d+ chars\)$", world.text, re.M)
    world.run("/memory drop project")
    assert "Error: usage: /memory [list | show LABEL]" in world.text


def test_remember_adds_a_lesson_line(world: World) -> None:
    world.run("/remember run the tests with make test")
    world.run("/remember - already a list item")
    world.run("/remember")
    remembered = [c for c in world.session.calls if c[0] == "remember"]
    assert remembered == [
        ("remember", "- run the tests with make test"),
        ("remember", "- already a list item"),
    ]
    assert "Remembered in lessons." in world.text
    assert "Error: usage: /remember TEXT" in world.text


def test_search_and_map_use_the_code_index(world: World) -> None:
    code = world.session.code
    assert code is not None
    code.hits = [Hit("src/main.py", 1, 2, "main", "function", "def main():\n    pass")]
    world.run("/search where is main")
    world.run("/map 512")
    world.run("/map lots")
    assert code.calls == [("search", "where is main", 8, "symbol"), ("repo_map", 512)]
    assert "src/main.py:1-2  main (function)\n    def main():" in world.text
    assert "src/main.py:\n  def main()" in world.text
    assert "Error: usage: /map [TOKENS]" in world.text


def test_search_without_an_index_says_how_to_get_one(world: World) -> None:
    world.session.code = None
    world.run("/search anything")
    world.run("/map")
    assert world.text.count("The code index is not ready yet") == 2
    assert "`mcode index` in a shell" in world.text


def test_context_and_compact_print_the_session_reports(world: World) -> None:
    world.run("/context")
    world.run("/compact")
    assert "system prompt 1,200 tokens\nconversation 300 tokens" in world.text
    assert "Summarised 4 messages." in world.text
    assert ("compact",) in world.session.calls


def test_undo_says_what_it_restored(world: World) -> None:
    world.run("/undo")
    assert "Nothing to undo" in world.text
    world.session.undone = [FileUndo("greet.py", "restored"), FileUndo("new.py", "removed")]
    world.run("/undo")
    assert "greet.py: restored as it was before the turn." in world.text
    assert "new.py: removed (the turn created it)." in world.text


def test_undo_says_which_files_keep_the_users_edits_and_shows_what_it_could_not_revert(
    world: World, repo: Path
) -> None:
    checkpoint = TurnCheckpoint()  # a turn the agent ran, then the user's edits
    ctx = RepoAccess(repo, recorder=checkpoint)
    write_file(ctx, (repo / "greet.py").resolve(), b'print("goodbye")\n')
    write_file(ctx, (repo / "src/main.py").resolve(), b"def main():\n    return 0\n")
    write_file(ctx, (repo / "notes.md").resolve(), b"# Notes\n")
    checkpoint.seal()
    (repo / "greet.py").write_text('print("goodbye, world")\n')
    (repo / "src/main.py").write_text("# mine\ndef main():\n    return 0\n")
    (repo / "notes.md").write_text("# Notes\n\n- mine\n")
    world.session.undone = checkpoint.undo(repo)

    world.run("/undo")

    text = world.text
    assert "greet.py: you edited it since, overlapping the turn's change: left as it is" in text
    assert '    -print("hello")\n    +print("goodbye")' in text
    assert "src/main.py: you edited it since: your edits are kept" in text
    assert (repo / "src/main.py").read_text() == "# mine\ndef main():\n    pass\n"
    assert "notes.md: the turn created it and you edited it since: kept as it is." in text
    assert (repo / "greet.py").read_text() == 'print("goodbye, world")\n'


def test_diff_shows_changes_and_untracked_files(world: World, repo: Path) -> None:
    world.run("/diff")
    assert "No changes." in world.text
    (repo / "greet.py").write_text('print("bye")\n')
    (repo / "new.txt").write_text("x\n")
    world.run("/diff")
    assert '-print("hello")\n+print("bye")' in world.text
    assert "Untracked: new.txt" in world.text


def test_diff_runs_nothing_a_prepared_repository_config_names(
    world: World, repo: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    (repo / "greet.py").write_text('print("bye")\n')
    plant_git_traps(repo, marker, tmp_path / "elsewhere")
    world.run("/diff")
    assert '-print("hello")\n+print("bye")' in world.text
    assert not marker.exists()


def test_commit_with_a_message_commits_tracked_changes(world: World, repo: Path) -> None:
    (repo / "greet.py").write_text('print("bye")\n')
    world.run("/commit Say bye instead")
    assert git(repo, "log", "-1", "--format=%s").strip() == "Say bye instead"
    assert git(repo, "status", "--porcelain") == ""
    world.run("/commit nothing left")
    assert "Error:" in world.text


def test_commit_without_a_message_asks_the_agent(world: World) -> None:
    assert world.run("/commit") == Submit(COMMIT_PROMPT)


def test_clear_starts_a_new_conversation_and_closes_the_old(world: World) -> None:
    old = world.session
    world.run("/clear")
    assert world.opened == [None]
    assert ("close",) in old.calls
    assert world.ctx.session.session_id == "new-1"
    assert "New conversation (session new-1)." in world.text


def test_resume_lists_recent_sessions_and_resumes_one(world: World, settings: Settings) -> None:
    world.run("/resume")
    assert "No earlier conversations" in world.text
    log = SessionLog(settings.paths.sessions)
    info = log.new_session(model="openai/mock-model")
    log.append(info.id, {"role": "user", "content": "fix the parser"})
    world.run("/resume")
    assert re.search(rf"^{info.id}\s+\S+ \S+\s+1\s+fix the parser$", world.text, re.M)
    world.run(f"/resume {info.id[:12]}")
    assert world.opened == [info.id[:12]]
    assert f"Resumed session {info.id}: fix the parser (1 messages)." in world.text


def test_resume_of_an_unknown_session_keeps_the_current_one(settings: Settings) -> None:
    from mcode.memory.sessions import SessionNotFound

    out = console()
    session = FakeSession()

    def open_session(ref: str | None) -> FakeSession:
        raise SessionNotFound(f"no session {ref!r}")

    ctx = CommandContext(session, settings, out, open_session)
    run_command(ctx, "/resume nope")
    assert ctx.session is session and ("close",) not in session.calls
    assert "Error: no session 'nope'" in text_of(out)


def test_init_fills_the_project_block(world: World, repo: Path) -> None:
    world.run("/init")
    assert re.search(r"project: (created|updated) \(\d+/\d+ chars\)", world.text)
    assert (repo / ".agentmemory" / "blocks" / "project.md").is_file()


def test_exit_ends_the_repl(world: World) -> None:
    assert world.run("/exit") == Exit(0)


# Completion and @mentions -------------------------------------------------------------------------


def complete(completer: ReplCompleter, text: str) -> list[str]:
    """The line as each completion would leave it."""
    document = Document(text, len(text))
    results = []
    for completion in completer.get_completions(document, CompleteEvent()):
        start = len(text) + completion.start_position
        results.append(text[:start] + completion.text)
    return results


def test_slash_commands_complete_at_the_start_of_the_line(repo: Path) -> None:
    completer = ReplCompleter(command_help(), RepoFiles(repo))
    assert complete(completer, "/he") == ["/help"]
    assert complete(completer, "/c") == ["/context", "/compact", "/commit", "/clear"]
    assert complete(completer, "say /he") == []


def test_mentions_complete_from_the_repositorys_files(repo: Path) -> None:
    completer = ReplCompleter(command_help(), RepoFiles(repo))
    assert complete(completer, "look at @src/m") == ["look at @src/main.py"]
    assert complete(completer, "@gr") == ["@greet.py"]
    assert complete(completer, "@main") == ["@src/main.py"]
    assert complete(completer, "mail me@gr") == []


def test_the_file_list_is_cached_and_refreshed_after_a_while(repo: Path) -> None:
    now = [0.0]
    files = RepoFiles(repo, refresh_seconds=5, clock=lambda: now[0])
    assert files.paths() == ["greet.py", "src/main.py"]
    (repo / "added.py").write_text("x = 1\n")
    now[0] = 4.0
    assert "added.py" not in files.paths()
    now[0] = 5.0
    assert "added.py" in files.paths()


def test_rank_paths_prefers_prefixes_then_file_names_then_substrings() -> None:
    paths = ["docs/main.md", "main.py", "src/domain.py", "src/main.py"]
    assert rank_paths(paths, "main") == ["main.py", "docs/main.md", "src/main.py", "src/domain.py"]


def test_a_mention_attaches_the_file_to_the_message(repo: Path) -> None:
    sent = attach_mentions("Why does @src/main.py, not @greet.py. fail? mail a@greet.py", repo)
    assert sent.attached == ["src/main.py", "greet.py"]
    assert sent.text == (
        "Why does @src/main.py, not @greet.py. fail? mail a@greet.py\n\n"
        '<file path="src/main.py">\ndef main():\n    pass\n</file>\n\n'
        '<file path="greet.py">\nprint("hello")\n</file>'
    )


def test_mentions_of_secrets_dirs_and_missing_files_attach_nothing(repo: Path) -> None:
    (repo / ".env").write_text("TOKEN=secret\n")
    sent = attach_mentions("see @.env and @src and @nope/missing.py, and @property", repo)
    assert sent.attached == []
    assert sent.text == "see @.env and @src and @nope/missing.py, and @property"
    assert sent.skipped == [
        ".env: looks like a secret; not attached",
        "nope/missing.py: not found in the repository; not attached",
    ]


def test_a_long_file_is_attached_by_its_first_lines(repo: Path) -> None:
    (repo / "long.txt").write_text("".join(f"line {i}\n" for i in range(1, 1001)))
    sent = attach_mentions("@long.txt", repo, max_lines=3)
    assert sent.text.endswith(
        '<file path="long.txt" (the first 3 of 1000 lines)>\nline 1\nline 2\nline 3\n</file>'
    )


# The REPL loop and its worker thread --------------------------------------------------------------


def no_more_input() -> str:
    """The user's Ctrl-D at the next prompt: a loop that should have ended fails, not spins."""
    raise EOFError


def repl_for(world: World, answers: list[str] | None = None) -> Repl:
    queue = list(answers or [])
    runner = TurnRunner(Renderer(world.out), lambda question: queue.pop(0))
    return Repl(world.ctx, runner, no_more_input, StatusLine())


def test_a_message_with_a_mention_reaches_the_session_with_the_file(world: World) -> None:
    repl = repl_for(world)
    assert repl.handle("explain @greet.py") is None
    [(_, sent)] = [c for c in world.session.calls if c[0] == "run_turn"]
    assert sent.startswith('explain @greet.py\n\n<file path="greet.py">')
    assert "attached greet.py" in world.text


def test_commit_without_a_message_runs_a_turn(world: World) -> None:
    repl = repl_for(world)
    repl.handle("/commit")
    assert ("run_turn", COMMIT_PROMPT) in world.session.calls
    assert repl.handle("/exit") == 0


def test_a_question_from_the_worker_is_answered_on_the_main_thread(world: World) -> None:
    runner_threads: list[str] = []
    repl = repl_for(world, answers=["y"])

    def turn(text: str) -> TurnResult:
        runner = repl.runner
        runner.on_event(TextDelta("Editing."))
        answer = runner.ask(Request("edit", "Edit greet.py?", "-a\n+b", "edit_file"))
        runner_threads.append(threading.current_thread().name)
        runner.on_event(TextDelta(f" The user said {answer}."))
        return TurnResult("done", "done")

    world.session.turn = turn
    repl.handle("change it")
    assert runner_threads == ["mcode-turn"]
    assert world.text == "Editing.\nEdit greet.py?\n  -a\n  +b\nThe user said yes."


def test_ctrl_c_during_a_turn_cancels_it_and_the_repl_goes_on(world: World) -> None:
    repl = repl_for(world)

    def turn(text: str) -> TurnResult:
        repl.runner.on_event(TextDelta("Once upon a time"))
        _thread.interrupt_main()  # what Ctrl-C does: KeyboardInterrupt on the main thread
        assert world.session.cancelled.wait(10), "the REPL did not cancel the turn"
        repl.runner.on_event(TurnFinished(Usage(), 0.0, 0, 0.0, "cancelled"))
        return TurnResult("Once upon a time", "cancelled")

    world.session.turn = turn
    assert repl.handle("tell me a story") is None
    assert ("cancel",) in world.session.calls
    assert "Once upon a time" in world.text and "cancelled" in world.text
    world.session.turn = lambda text: TurnResult("fine", "done")
    assert repl.handle("still there?") is None


def test_a_second_ctrl_c_leaves_when_the_turn_does_not_stop(world: World) -> None:
    repl = repl_for(world)
    released = threading.Event()

    def stuck(text: str) -> TurnResult:
        _thread.interrupt_main()
        assert world.session.cancelled.wait(10), "the REPL did not cancel the turn"
        _thread.interrupt_main()  # the turn ignores the cancel: the user presses Ctrl-C again
        released.wait(10)
        return TurnResult("", "cancelled")

    world.session.turn = stuck
    try:
        assert repl.loop("tell me a story") == 130
    finally:
        released.set()
    assert "leaving" in world.text


def test_a_failed_turn_shows_its_error(world: World) -> None:
    repl = repl_for(world)
    world.session.turn = lambda text: TurnResult("", "error", error="the model is unreachable")
    repl.handle("hello")
    assert "Error: the model is unreachable" in world.text


def test_the_status_line_shows_model_tokens_cost_and_index(world: World) -> None:
    status = StatusLine()
    changed = threading.Event()
    status.on_change = changed.set
    status.refresh(world.session)
    assert changed.wait(10)
    assert status() == (
        "openai/mock-model · 1,234 tokens · $0.0125 · indexed just now, up to date · ask"
    )


def test_ctrl_d_leaves_and_ctrl_c_at_the_prompt_does_not(world: World) -> None:
    typed: list[type[BaseException] | str] = [KeyboardInterrupt, "/model", EOFError]

    def read() -> str:
        item = typed.pop(0)
        if isinstance(item, type):
            raise item()
        return item

    runner = TurnRunner(Renderer(world.out), lambda q: "n")
    started = time.monotonic()
    assert Repl(world.ctx, runner, read, StatusLine()).loop() == 0
    assert typed == [] and time.monotonic() - started < 10
    assert "Model: openai/mock-model" in world.text


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("fix it\r", "fix it"),
        ("first line\\\rsecond line\r", "first line\nsecond line"),
        ("first line\x1b\rsecond line\r", "first line\nsecond line"),
        ("a \\ b\r", "a \\ b"),
    ],
)
def test_enter_sends_and_alt_enter_or_a_backslash_starts_a_new_line(
    keys: str, message: str
) -> None:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from mcode.repl.app import key_bindings

    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        prompt: PromptSession[str] = PromptSession(
            input=pipe, output=DummyOutput(), multiline=True, key_bindings=key_bindings()
        )
        assert prompt.prompt("> ") == message
