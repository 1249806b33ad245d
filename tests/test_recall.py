"""Recall memory and archival notes: transcripts on disk, resume, search by text and by meaning,
an index that rebuilds itself from the transcripts, torn lines, and two mcode processes at once."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mcode.embed import make_embedder
from mcode.memory.recall import NotesStore, RecallStore
from mcode.memory.sessions import NO_RESULT, SessionLog, SessionNotFound
from mcode.tools import MemoryAccess, builtin_tools


@pytest.fixture
def memory(tmp_path: Path) -> Path:
    """A repo's `.agentmemory/`."""
    return tmp_path / "repo" / ".agentmemory"


def open_recall(memory: Path, embedder=None) -> RecallStore:
    return RecallStore(SessionLog(memory / "sessions"), memory / "index" / "recall", embedder)


def open_notes(memory: Path, embedder=None) -> NotesStore:
    return NotesStore(memory / "notes.jsonl", memory / "index" / "recall", embedder)


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2025, 5, day, hour, tzinfo=UTC)


BASH_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "bash", "arguments": '{"command": "pytest tests/test_parser.py"}'},
}


def test_sessions_are_listed_loaded_and_resumed(memory: Path):
    log = SessionLog(memory / "sessions")
    first = log.new_session(model="openai/gpt-4o")
    log.append(
        first.id, {"role": "user", "content": "Fix the flaky parser test please"}, time=at(1)
    )
    log.append(
        first.id, {"role": "assistant", "content": "", "tool_calls": [BASH_CALL]}, time=at(1)
    )
    log.append(
        first.id, {"role": "tool", "tool_call_id": "call_1", "content": "1 failed"}, time=at(1)
    )
    second = log.new_session(model="anthropic/claude", title="Release notes")
    log.append(second.id, {"role": "user", "content": [{"type": "text", "text": "hi"}]}, time=at(2))
    log.new_session()  # never spoke: leaves nothing behind

    listed = log.sessions()
    assert [s.id for s in listed] == [second.id, first.id]
    assert (listed[0].title, listed[0].messages, listed[0].model) == (
        "Release notes",
        1,
        "anthropic/claude",
    )
    assert (listed[1].title, listed[1].messages) == ("Fix the flaky parser test please", 3)
    assert listed[1].updated == at(1)
    assert log.latest().id == second.id
    assert len(list((memory / "sessions").glob("*.jsonl"))) == 2

    lines = (memory / "sessions" / f"{first.id}.jsonl").read_text().splitlines()
    header, *rows = [json.loads(line) for line in lines]
    assert header["type"] == "session" and header["model"] == "openai/gpt-4o"
    assert rows[1]["tool_calls"] == [BASH_CALL] and rows[2]["tool_call_id"] == "call_1"
    assert set(rows[0]) == {
        "id", "session_id", "time", "role", "content", "tool_calls", "tool_call_id", "name"
    }  # fmt: skip
    assert rows[0]["time"] == "2025-05-01T12:00:00.000Z"

    loaded = log.load(first.id[:-2])  # a unique prefix is enough, as with git
    assert [m.role for m in loaded] == ["user", "assistant", "tool"]
    info, messages = log.resume(first.id)
    assert info.id == first.id
    assert messages[1] == {"role": "assistant", "content": "", "tool_calls": [BASH_CALL]}
    assert messages[2] == {"role": "tool", "content": "1 failed", "tool_call_id": "call_1"}
    assert log.resume()[0].id == second.id  # "latest"

    log.append(first.id, {"role": "user", "content": "and the lexer too"})  # resumed: same file
    assert log.info(first.id).messages == 4

    with pytest.raises(SessionNotFound, match="no session 'nope'; the most recent are"):
        log.load("nope")
    with pytest.raises(SessionNotFound, match="ambiguous"):
        log.load("20")
    with pytest.raises(SessionNotFound):
        log.load("../../etc/passwd")
    with pytest.raises(ValueError, match="role"):
        log.append(first.id, {"content": "no role"})


def test_resume_answers_tool_calls_a_crash_left_open(memory: Path):
    log = SessionLog(memory / "sessions")
    session = log.new_session()
    log.append(session.id, {"role": "user", "content": "run the tests"})
    log.append(session.id, {"role": "tool", "tool_call_id": "stray", "content": "orphan"})
    log.append(session.id, {"role": "assistant", "content": None, "tool_calls": [BASH_CALL]})
    # mcode was killed while the tool ran: no result was ever written
    _, messages = log.resume(session.id)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": NO_RESULT}


def test_torn_last_line_is_skipped_and_the_next_message_starts_clean(
    memory: Path, caplog: pytest.LogCaptureFixture
):
    store = open_recall(memory)
    session = store.log.new_session()
    store.record(session.id, {"role": "user", "content": "remember the lexer bug"})
    path = memory / "sessions" / f"{session.id}.jsonl"
    with path.open("ab") as handle:  # a crash in the middle of a write
        handle.write(b'{"id": "msg-torn", "session_id": "' + session.id.encode() + b'", "ro')

    with caplog.at_level(logging.WARNING):
        assert [m.content for m in store.log.load(session.id)] == ["remember the lexer bug"]
    assert "skipped a damaged line" in caplog.text

    store.record(session.id, {"role": "assistant", "content": "the lexer bug is fixed"})
    assert [m.content for m in store.log.load(session.id)][-1] == "the lexer bug is fixed"
    reopened = open_recall(memory)
    assert reopened.count() == 2
    assert reopened.search("fixed")[0]["content"] == "the lexer bug is fixed"


def test_search_by_text_with_role_and_date_filters(memory: Path):
    store = open_recall(memory)
    one = store.log.new_session()
    two = store.log.new_session()
    store.record(
        one.id, {"role": "user", "content": "The login page crashes on Safari"}, time=at(1)
    )
    store.record(
        one.id, {"role": "assistant", "content": None, "tool_calls": [BASH_CALL]}, time=at(1, 13)
    )
    store.record(
        one.id, {"role": "tool", "tool_call_id": "call_1", "content": "Safari ok"}, time=at(1, 14)
    )
    store.record(two.id, {"role": "user", "content": "Safari login works now, thanks"}, time=at(3))
    long_output = "noise " * 400 + "the sentinel value overflowed " + "noise " * 400
    store.record(two.id, {"role": "tool", "tool_call_id": "x", "content": long_output}, time=at(4))

    hits = store.search("safari login")
    assert {h["role"] for h in hits} == {"user", "tool"}
    assert set(hits[0]) == {"session_id", "time", "role", "content", "score"}
    users = store.search("safari", roles=["user"])
    assert {h["session_id"] for h in users} == {one.id, two.id}
    assert {h["role"] for h in users} == {"user"}
    users = store.search("safari", roles=["user"], start_date=at(2, 0))
    assert [(h["session_id"], h["content"]) for h in users] == [
        (two.id, "Safari login works now, thanks")
    ]
    day_one = store.search("safari", end_date=datetime(2025, 5, 1, 23, 59, 59, tzinfo=UTC))
    assert {h["role"] for h in day_one} == {"user", "tool"} and len(day_one) == 2
    assert store.search("safari", start_date=at(5)) == []

    # tool calls are searchable by what they ran
    assert store.search("pytest")[0]["role"] == "assistant"
    # a long message shows the part that matched
    found = store.search("sentinel")[0]["content"]
    assert "sentinel value overflowed" in found and len(found) <= 502
    # no words: the newest messages that pass the filters
    newest = store.search("", roles=["user"], limit=1)
    assert newest[0]["content"] == "Safari login works now, thanks"


def test_memory_tools_search_through_the_stores(memory: Path, tmp_path: Path):
    store = open_recall(memory)
    session = store.log.new_session()
    store.record(
        session.id, {"role": "user", "content": "We chose Postgres over MySQL"}, time=at(1)
    )
    notes = open_notes(memory)
    tools = builtin_tools()
    context = MemoryAccess(blocks=None, archival=notes, recall=store)  # type: ignore[arg-type]

    out = tools.run("conversation_search", context, {"query": "postgres", "end_date": "2025-05-01"})
    assert "We chose Postgres over MySQL" in out
    assert tools.run(
        "conversation_search", context, {"query": "postgres", "start_date": "2025-05-02"}
    ) == ("No results found.")
    tools.run("archival_memory_insert", context, {"content": "DB is Postgres 16", "tags": ["db"]})
    assert "Postgres 16" in tools.run("archival_memory_search", context, {"query": "postgres"})


def test_index_rebuilds_from_transcripts_when_deleted_damaged_or_behind(memory: Path):
    store = open_recall(memory)
    session = store.log.new_session()
    store.record(session.id, {"role": "user", "content": "the cache invalidation bug is in redis"})
    index = memory / "index" / "recall"

    shutil.rmtree(memory / "index")
    reopened = open_recall(memory)
    assert reopened.count() == 1
    assert reopened.search("redis")[0]["content"] == "the cache invalidation bug is in redis"

    for version in (index / "messages.lance" / "_versions").iterdir():
        version.write_bytes(b"garbage")
    assert open_recall(memory).search("invalidation")[0]["session_id"] == session.id

    # a message written to the transcript but never indexed (a crash between the two)
    store.log.append(session.id, {"role": "assistant", "content": "flushing redis fixed it"})
    caught_up = open_recall(memory)
    assert caught_up.count() == 2
    assert caught_up.search("flushing")[0]["role"] == "assistant"

    # deleted under a running store: the next search rebuilds it
    shutil.rmtree(memory / "index")
    assert caught_up.search("flushing")[0]["content"] == "flushing redis fixed it"


class BrokenEmbedder:
    id = "broken"
    dim = 8

    def embed_documents(self, texts):
        raise RuntimeError("embedding endpoint is down")

    def embed_query(self, text):
        raise RuntimeError("embedding endpoint is down")


def test_a_failing_embedder_never_loses_a_message(memory: Path):
    store = open_recall(memory, BrokenEmbedder())
    session = store.log.new_session()
    store.record(session.id, {"role": "user", "content": "keep this message"})
    assert store.log.load(session.id)[0].content == "keep this message"
    assert store.search("message")[0]["content"] == "keep this message"


def test_notes_insert_and_search_with_tags(memory: Path):
    notes = open_notes(memory)
    assert notes.count() == 0 and notes.search("anything", None, 5) == []
    auth = notes.insert("Auth tokens are verified in middleware/auth.py, not per view", ["auth"])
    cache = notes.insert("  The cache uses redis with a 5 minute TTL  ", ["cache", "infra"])
    deploy = notes.insert("Deploys go through the infra/deploy.sh script", ["infra"])
    with pytest.raises(ValueError):
        notes.insert("   ", [])

    lines = [json.loads(line) for line in (memory / "notes.jsonl").read_text().splitlines()]
    assert [n["id"] for n in lines[:2]] == [auth, cache]
    assert lines[1]["content"] == "The cache uses redis with a 5 minute TTL"
    assert lines[1]["tags"] == ["cache", "infra"]

    assert notes.search("redis ttl", None, 5)[0]["id"] == cache
    assert notes.search("redis", ["auth"], 5) == []
    assert notes.search("script", ["infra", "nothing"], 5)[0]["id"] == deploy
    assert {n["id"] for n in notes.search("", ["infra"], 10)} == {cache, deploy}
    assert notes.count() == 3

    shutil.rmtree(memory / "index")
    rebuilt = open_notes(memory)
    assert rebuilt.count() == 3
    assert rebuilt.search("middleware", None, 5)[0]["tags"] == ["auth"]


def test_counts_for_the_memory_statistics(memory: Path):
    store = open_recall(memory)
    notes = open_notes(memory)
    assert (store.count(), notes.count()) == (0, 0)
    for n in range(3):
        session = store.log.new_session()
        store.record(session.id, {"role": "user", "content": f"message {n}"})
    notes.insert("one note", [])
    assert (store.count(), notes.count(), len(store.log.sessions())) == (3, 1, 3)
    assert (open_recall(memory).count(), open_notes(memory).count()) == (3, 1)


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mcode.memory.recall import RecallStore
    from mcode.memory.sessions import SessionLog

    memory, session, name, go = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    store = RecallStore(SessionLog(memory / "sessions"), memory / "index" / "recall", None)
    deadline = time.monotonic() + 20
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    for n in range(25):
        store.record(session, {"role": "user", "content": f"{name} says hello {n} " + "x" * 5000})
    """
)


def test_two_processes_append_to_one_session_at_once(memory: Path, tmp_path: Path):
    store = open_recall(memory)
    session = store.log.new_session()
    store.record(session.id, {"role": "user", "content": "start"})
    go = tmp_path / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(memory), session.id, name, str(go)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alpha", "beta")
    ]
    go.touch()
    for writer in writers:
        _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err

    lines = (memory / "sessions" / f"{session.id}.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is whole
    contents = [r["content"] for r in records[1:]]
    for name in ("alpha", "beta"):
        assert sorted(c.split()[3] for c in contents if c.startswith(name)) == sorted(
            str(n) for n in range(25)
        )
    assert len(store.log.load(session.id)) == 51
    assert store.count() == 51 and open_recall(memory).count() == 51
    assert len(store.search("beta hello", limit=50)) >= 25


def test_search_by_meaning_with_the_local_embedder(memory: Path, tmp_path: Path):
    embedder = make_embedder("local", tmp_path / "cache")
    store = open_recall(memory, embedder)
    session = store.log.new_session()
    for text in (
        "the deploy failed because the database migration timed out",
        "I renamed the helper to parse_config and updated the imports",
        "please use tabs, not spaces, in the Makefile",
        "lunch is at noon on Fridays",
    ):
        store.record(session.id, {"role": "user", "content": text})

    hits = store.search("why did the release break?", limit=1)
    assert hits[0]["content"] == "the deploy failed because the database migration timed out"

    # the index rebuilt with lexical rows first gets its vectors back on open
    shutil.rmtree(memory / "index")
    rebuilt = open_recall(memory, embedder)
    again = rebuilt.search("why did the release break?", limit=1)
    assert again[0]["content"] == "the deploy failed because the database migration timed out"
