"""A session end to end: real repositories, real memory stores and the real tools, with a scripted
model in the test process (`ScriptedModel`); what depends on HTTP (streaming through litellm,
retries, errors, keys in headers, switching models) talks to the scripted server instead. The
step loop itself is tested in test_loop.py."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.llm_server import ScriptedLLMServer
from support.repos import git, make_repo
from support.scripted_model import ScriptedModel

from mcode.agent.events import Event, Notice, TextDelta, ToolFinished, ToolStarted, TurnFinished
from mcode.agent.hooks import note
from mcode.agent.loop import CANCELLED_RESULT
from mcode.agent.session import AgentSession
from mcode.config import Paths, Settings, load_settings
from mcode.memory.archival import MergedArchival
from mcode.memory.sessions import SessionLog

MODEL = "openai/mock-model"
APP = "def add(a, b):\n    return a + b\n"
UTIL = "def double(x):\n    return 2 * x\n"
CORRECTION_REMINDER = note("correction", lessons="lessons")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"app.py": APP, "util.py": UTIL})


def settings_for(repo: Path, api_base: str = "http://127.0.0.1:9/v1", **env: str) -> Settings:
    """The agent's own behaviour, on a repository the session does not index by itself (that is
    test_live_index.py's)."""
    base = {
        "MCODE_MODEL": MODEL,
        "MCODE_API_BASE": api_base,
        "OPENAI_API_KEY": "sk-test",
        "MCODE_EMBEDDING_MODEL": "none",
        "MCODE_AUTO_INDEX": "0",
    }
    return load_settings(Paths.for_repo(repo), env={k: v for k, v in {**base, **env}.items() if v})


class Events(list[Event]):
    def of(self, kind: type) -> list[Any]:
        return [e for e in self if isinstance(e, kind)]

    def notices(self) -> str:
        return "\n".join(e.text for e in self.of(Notice))


@pytest.fixture
def sessions() -> Iterator[list[AgentSession]]:
    opened: list[AgentSession] = []
    yield opened
    for session in opened:
        session.close()


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel(MODEL)


@pytest.fixture
def open_session(repo: Path, model: ScriptedModel, sessions: list[AgentSession]):
    """Open a session on `repo` answered by `model` (or, with client=None, by the provider the
    settings name)."""

    def open_(**kwargs: Any) -> tuple[AgentSession, Events]:
        events = Events()
        settings = kwargs.pop("settings", None) or settings_for(repo)
        also = kwargs.pop("on_event", lambda event: None)
        kwargs.setdefault("permission_mode", "auto")
        kwargs.setdefault("client", model)

        def on_event(event: Event) -> None:
            events.append(event)
            also(event)

        session = AgentSession.open(settings, on_event=on_event, **kwargs)
        sessions.append(session)
        return session, events

    return open_


@pytest.fixture
def open_http_session(repo: Path, llm_server: ScriptedLLMServer, open_session):
    """Open a session whose model is reached through litellm's HTTP path on `llm_server`."""

    def open_(**kwargs: Any) -> tuple[AgentSession, Events]:
        kwargs.setdefault("settings", settings_for(repo, llm_server.url))
        return open_session(client=None, **kwargs)

    return open_


def undone(session: AgentSession) -> list[tuple[str, str]]:
    return [(u.path, u.outcome) for u in session.undo()]


def tool_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request["messages"] if m["role"] == "tool"]


# --- a turn -------------------------------------------------------------------------------------


def test_a_turn_streams_text_and_counts_tokens(open_http_session, llm_server) -> None:
    session, events = open_http_session()
    llm_server.reply_text("Hello from mcode!", chunks=3)

    result = session.run_turn("Say hello")

    assert result.stop_reason == "done" and result.error is None
    assert result.text == "Hello from mcode!"
    deltas = [e.text for e in events.of(TextDelta)]
    assert len(deltas) == 3 and "".join(deltas) == "Hello from mcode!"
    assert result.usage.prompt_tokens == 11 and result.usage.completion_tokens == 7
    finished = events.of(TurnFinished)
    assert len(finished) == 1 and finished[0].stop_reason == "done"
    assert finished[0].session_tokens == 18
    sent = llm_server.requests[0]
    assert sent["messages"][0]["role"] == "system"
    assert '<block label="lessons"' in sent["messages"][0]["content"]
    assert sent["messages"][-1] == {"role": "user", "content": "Say hello"}
    assert {t["function"]["name"] for t in sent["tools"]} >= {"edit_file", "memory_insert"}

    llm_server.reply_text("Again!")
    session.run_turn("Once more")
    status = session.status()
    assert status.session_tokens == 36 and status.model == MODEL
    assert status.index == "not indexed"


def test_an_unindexed_repo_gets_a_notice_suggesting_mcode_index(open_session) -> None:
    _, events = open_session()
    assert "mcode index" in events.notices()


def test_an_edit_is_undone_and_the_users_other_changes_stay(open_session, model, repo) -> None:
    (repo / "util.py").write_text(UTIL + "# the user's own unfinished work\n")
    session, events = open_session()
    model.reply_tool_calls(
        [("edit_file", {"path": "app.py", "old_string": "a + b", "new_string": "a - b"})]
    )
    model.reply_text("add now subtracts.")
    model.reply_tool_calls(
        [("edit_file", {"path": "app.py", "old_string": "a - b", "new_string": "a * b"})]
    )
    model.reply_text("add now multiplies.")

    first = session.run_turn("Make add subtract")
    second = session.run_turn("Make it multiply instead")

    assert first.stop_reason == second.stop_reason == "done"
    assert "a * b" in (repo / "app.py").read_text()
    assert [e.error for e in events.of(ToolFinished)] == [False, False]
    assert undone(session) == [("app.py", "restored")]
    assert "a - b" in (repo / "app.py").read_text()
    assert undone(session) == [("app.py", "restored")]
    assert (repo / "app.py").read_text() == APP
    assert session.undo() == []
    assert (repo / "util.py").read_text().endswith("# the user's own unfinished work\n")
    assert git(repo, "status", "--porcelain", "--untracked-files=no").strip() == "M util.py"


def test_undo_keeps_the_users_later_edits_and_tells_the_model(open_session, model, repo) -> None:
    session, _ = open_session()
    model.reply_tool_calls(
        [
            ("edit_file", {"path": "app.py", "old_string": "a + b", "new_string": "a - b"}),
            ("edit_file", {"path": "util.py", "old_string": "2 * x", "new_string": "x + x"}),
            ("create_file", {"path": "extra.py", "content": "EXTRA = 1\n"}),
        ]
    )
    model.reply_text("Done.")
    session.run_turn("Change all three")
    (repo / "app.py").write_text("# the user's header\n" + (repo / "app.py").read_text())
    (repo / "util.py").write_text("def double(x):\n    return x + x  # verified\n")
    (repo / "extra.py").write_text("EXTRA = 1\nMORE = 2\n")

    assert undone(session) == [("app.py", "merged"), ("util.py", "conflict"), ("extra.py", "kept")]
    assert (repo / "app.py").read_text() == "# the user's header\n" + APP
    assert (repo / "util.py").read_text() == "def double(x):\n    return x + x  # verified\n"
    assert (repo / "extra.py").read_text() == "EXTRA = 1\nMORE = 2\n"

    model.reply_text("Noted.")
    session.run_turn("Carry on")
    told = model.requests[-1]["messages"][-1]["content"]
    assert "reverted in: app.py" in told
    assert "as the user left them, not reverted: util.py, extra.py" in told


def test_a_turn_without_edits_leaves_nothing_to_undo(open_session, model) -> None:
    session, _ = open_session()
    model.reply_tool_calls([("read_file", {"path": "app.py"})])
    model.reply_text("It adds.")
    session.run_turn("What does add do?")
    assert session.undo() == []


def test_a_rate_limit_is_retried_with_a_notice(open_http_session, llm_server) -> None:
    session, events = open_http_session()
    llm_server.reply_error(429, "slow down", headers={"Retry-After": "0"})
    llm_server.reply_text("Made it.")

    result = session.run_turn("Hello?")

    assert result.stop_reason == "done" and result.text == "Made it."
    assert "retrying" in events.notices()
    assert len(llm_server.requests) == 2


def test_a_bad_key_fails_the_turn_with_one_line_and_the_session_goes_on(
    open_http_session, llm_server
) -> None:
    session, events = open_http_session()
    llm_server.reply_error(401, "Incorrect API key provided: sk-bad*****1234")

    result = session.run_turn("Hello?")

    assert result.stop_reason == "error"
    assert result.error is not None and "\n" not in result.error
    assert "authentication failed" in result.error
    assert events.of(TurnFinished)[-1].stop_reason == "error"
    llm_server.reply_text("Working now.")
    assert session.run_turn("Hello again").text == "Working now."


def test_every_message_is_in_recall_after_the_turn(open_session, model, repo) -> None:
    session, _ = open_session()
    model.reply_tool_calls([("grep", {"pattern": "def add"})])
    model.reply_text("add is in app.py.")

    session.run_turn("Where is add defined?")

    stored = SessionLog(Paths.for_repo(repo).sessions).load(session.session_id)
    assert [m.role for m in stored] == ["user", "assistant", "tool", "assistant"]
    assert stored[0].content == "Where is add defined?"
    assert stored[1].tool_calls and stored[1].tool_calls[0]["function"]["name"] == "grep"
    assert "app.py" in str(stored[2].content) and stored[2].name == "grep"
    assert stored[3].content == "add is in app.py."
    found = session.memory.recall.search("defined", None, 5, None, None)
    assert any("Where is add defined" in hit["content"] for hit in found)


def test_a_resumed_session_continues_the_conversation(open_session, model) -> None:
    first, _ = open_session()
    model.reply_text("The answer is 42.")
    first.run_turn("What is the answer?")
    first.close()

    second, _ = open_session(resume="latest")
    model.reply_text("I said 42.")
    second.run_turn("What did you say?")

    assert second.session_id == first.session_id
    contents = [m.get("content") for m in model.requests[-1]["messages"][1:]]
    assert contents == ["What is the answer?", "The answer is 42.", "What did you say?"]


def test_a_lesson_recorded_in_one_session_is_in_the_next_ones_prompt(open_session, model) -> None:
    lesson = "Run the tests with `pytest -q`; unittest discovery finds nothing here."
    first, events = open_session()
    model.reply_tool_calls([("memory_insert", {"label": "lessons", "text": lesson})])
    model.reply_text("Noted.")
    first.run_turn("No, use pytest, not unittest")
    assert "lesson recorded" in events.notices()
    assert CORRECTION_REMINDER in model.requests[0]["messages"][-1]["content"]
    first.close()

    second, _ = open_session()
    model.reply_text("Hi.")
    second.run_turn("Hi")

    system = model.requests[-1]["messages"][0]["content"]
    assert lesson in system
    stored = SessionLog(second.settings.paths.sessions).load(first.session_id)
    assert stored[0].content == "No, use pytest, not unittest"  # recall keeps the user's words


def test_remember_appends_to_the_lessons_block(open_session, model) -> None:
    session, _ = open_session()
    session.remember("Never edit generated files under build/.")
    model.reply_text("OK.")
    session.run_turn("Hi")
    assert "Never edit generated files under build/." in model.requests[0]["messages"][0]["content"]
    history = session.memory.blocks.log("lessons")
    assert history[-1].actor == "user"


def test_cancel_between_tool_calls_answers_every_call_and_keeps_undo(
    open_session, model, repo
) -> None:
    opened: list[AgentSession] = []

    def cancel_on_first_tool(event: Event) -> None:
        if isinstance(event, ToolStarted) and opened:
            opened.pop().cancel()

    session, events = open_session(on_event=cancel_on_first_tool)
    opened.append(session)
    model.reply_tool_calls(
        [
            ("edit_file", {"path": "app.py", "old_string": "a + b", "new_string": "a - b"}),
            ("edit_file", {"path": "util.py", "old_string": "2 * x", "new_string": "x + x"}),
        ]
    )

    result = session.run_turn("Change both")

    assert result.stop_reason == "cancelled"
    assert "a - b" in (repo / "app.py").read_text() and (repo / "util.py").read_text() == UTIL
    stored = SessionLog(session.settings.paths.sessions).load(session.session_id)
    assert [m.role for m in stored] == ["user", "assistant", "tool", "tool"]
    assert stored[3].content == CANCELLED_RESULT
    assert [e.call_id for e in events.of(ToolFinished)] == ["call_0"]
    assert undone(session) == [("app.py", "restored")] and (repo / "app.py").read_text() == APP
    model.reply_text("Understood.")
    assert session.run_turn("Never mind").stop_reason == "done"


def test_ask_mode_without_a_user_refuses_edits_and_says_so(open_session, model, repo) -> None:
    session, events = open_session(permission_mode="ask")
    model.reply_tool_calls(
        [("edit_file", {"path": "app.py", "old_string": "a + b", "new_string": "a - b"})]
    )
    model.reply_text("I could not edit it.")

    result = session.run_turn("Make add subtract")

    assert result.stop_reason == "done"
    refusal = events.of(ToolFinished)[0]
    assert refusal.error and "cannot ask" in refusal.result
    assert (repo / "app.py").read_text() == APP


def test_a_key_from_the_user_config_is_sent(repo, llm_server, sessions) -> None:
    paths = Paths.for_repo(repo)
    paths.user_config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.user_config_file.write_text('[keys]\nOPENAI_API_KEY = "sk-from-user-config"\n')
    settings = settings_for(repo, llm_server.url, OPENAI_API_KEY="")
    session = AgentSession.open(settings, permission_mode="auto")
    sessions.append(session)
    llm_server.reply_text("Hi.")
    session.run_turn("Hi")
    assert llm_server.request_headers[0]["authorization"] == "Bearer sk-from-user-config"


def test_a_key_in_the_project_config_is_refused_with_a_warning(
    repo, llm_server, open_http_session
) -> None:
    config = Paths.for_repo(repo).project_config
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('api_key = "sk-committed-by-mistake"\n')
    session, events = open_http_session()
    llm_server.reply_text("Hi.")
    session.run_turn("Hi")
    assert "never read from the repository" in events.notices()
    assert llm_server.request_headers[0]["authorization"] == "Bearer sk-test"


def test_context_report_and_compact(open_session, model) -> None:
    session, _ = open_session()
    model.reply_text("First answer.")
    session.run_turn("First question")
    model.reply_text("Second answer.")
    session.run_turn("Second question")

    report = session.context_report()
    assert "core memory blocks" in report and "conversation" in report

    model.reply_text("Earlier, the user asked a first question; it was answered.")
    summary = session.compact()
    assert "Summarised 2 messages" in summary
    assert "first question" in summary
    assert session.compact().startswith("Nothing to compact")


def test_switch_model_uses_the_new_model_from_the_next_request(
    open_http_session, llm_server
) -> None:
    session, _ = open_http_session()
    session.switch_model("openai/other-model")
    llm_server.reply_text("Hi from the other model.")
    session.run_turn("Hi")
    assert llm_server.requests[0]["model"] == "other-model"
    assert session.status().model == "openai/other-model"


# --- memory in use with an index -------------------------------------------------------------------


def test_an_indexed_repo_gets_retrieved_code_a_repo_map_and_merged_archival_search(
    open_session, model, repo
) -> None:
    from mcode.retrieval.workspace import open_writer

    settings = settings_for(repo)
    indexer, lock = open_writer(settings)
    try:
        indexer.update(embed=False)
    finally:
        lock.release()
    session, events = open_session(settings=settings)
    assert "mcode index" not in events.notices()
    session.memory.notes.insert("double is used by the pricing code to double the fee", ["pricing"])
    model.reply_tool_calls([("archival_memory_search", {"query": "double"})])
    model.reply_text("Found it.")

    session.run_turn("Why does double exist?")

    system = model.requests[0]["messages"][0]["content"]
    assert "retriev" not in events.notices()
    assert "<retrieved_code>" in system and "util.py" in system
    assert "<repo_map>" in system
    result = tool_messages(model.requests[1])[0]["content"]
    lines = [json.loads(line) for line in result.splitlines()[1:]]
    assert lines[0]["source"] == "note"
    assert any(hit["source"] == "code" and hit["path"] == "util.py" for hit in lines)
    assert session.status().index == "indexed just now, up to date"
    (repo / "util.py").write_text(UTIL + "\n\ndef triple(x):\n    return 3 * x\n")
    assert session.status().index == "indexed just now, 1 file changed"


class _Notes:
    def __init__(self, notes: list[dict[str, Any]]) -> None:
        self.notes = notes

    def insert(self, content: str, tags: list[str]) -> str:
        return "note-1"

    def search(self, query: str, tags: list[str] | None = None, k: int = 10) -> list[dict]:
        return self.notes[:k]


class _Hit:
    def __init__(self, path: str) -> None:
        self.path, self.start_line, self.end_line = path, 1, 2
        self.symbol, self.kind, self.snippet = "f", "function", "def f(): ..."


class _Code:
    def search(self, query: str, k: int, level: str) -> list[_Hit]:
        return [_Hit("a.py"), _Hit(".env"), _Hit("b.py")][:k]


def test_archival_search_puts_strong_notes_first_then_code_then_weak_notes() -> None:
    notes = _Notes(
        [{"content": "retry backoff lives in the http client"}, {"content": "unrelated words"}]
    )
    archival = MergedArchival(notes, _Code(), hidden=lambda path: path == ".env")
    found = archival.search("http retry backoff", None, 10)
    assert [h["source"] for h in found] == ["note", "code", "code", "note"]
    assert [h.get("path") for h in found if h["source"] == "code"] == ["a.py", "b.py"]
    assert [h["source"] for h in archival.search("x", ["pricing"], 10)] == ["note", "note"]
    assert len(archival.search("http retry backoff", None, 2)) == 2


# --- import discipline ----------------------------------------------------------------------------


def test_help_does_not_import_litellm() -> None:
    code = (
        "import runpy, sys\n"
        "sys.argv = ['mcode', '--help']\n"
        "try:\n"
        "    runpy.run_module('mcode', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('litellm', 'lancedb', 'git', 'mcode.agent.session') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_only_the_model_client_imports_litellm() -> None:
    src = Path(__file__).resolve().parents[1] / "src" / "mcode"
    importers = sorted(
        str(path.relative_to(src))
        for path in src.rglob("*.py")
        if any(
            line.strip().startswith(("import litellm", "from litellm"))
            for line in path.read_text().splitlines()
        )
    )
    assert importers in (["agent/llm.py"], ["agent/llm.py", "embed/remote.py"])
