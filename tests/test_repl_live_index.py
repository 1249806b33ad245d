"""The REPL keeps archival memory current by itself, end to end: the real `mcode` in a
pseudo-terminal, in a repository nobody indexed, talking to the scripted server.

The first turn is answered while the index is still being built: its vectors are still pending when
the answer is on the screen. They come from an embedding model on the scripted server that takes its
time (seconds a batch, minutes in all) without keeping the machine busy, as a remote provider would. A file the agent creates
in that turn is found by `code_search` in the next, and so is a file the user edits in another
process; a second `mcode` in the same repository reads the first one's index without a lock error.
Every wait polls the terminal's output, the index or the server with a generous deadline.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.cli import run_in_process
from support.llm_server import ScriptedLLMServer
from support.polling import poll
from support.repos import make_repo, model_terminal_env, spawn_mcode

from mcode.store import Manifest

pexpect = pytest.importorskip("pexpect")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")

WAIT = 90  # seconds for anything to appear; the first turn imports litellm (~10 s here)
FILES, FUNCTIONS = 60, 20  # 1,200 chunks: seconds of lexical index
EMBEDDING_DELAY = 2.0  # seconds per batch of 32 vectors: over a minute for all of them
PROMPT = "❯"
CURSOR_QUERY = "\x1b[6n"
CURSOR_AT_TOP = "\x1b[1;1R"


def _letters(*numbers: int) -> str:
    """A word per number (`7, 3` is "ahad"): the embedding model reads words, not digits, and
    chunks that read alike would share one vector and never keep the server busy."""
    return "".join(chr(ord("a") + int(d)) for n in numbers for d in f"{n:02d}")


def big_repo(root: Path) -> Path:
    files = {
        f"pkg/mod_{i:04d}.py": "".join(
            f"def handler_{_letters(i, j)}(request):\n    return request.reply({j})\n\n"
            for j in range(FUNCTIONS)
        )
        for i in range(FILES)
    }
    return make_repo(root, files)


def manifest_of(repo: Path) -> Manifest | None:
    path = repo / ".agentmemory" / "index" / "manifest.db"
    return Manifest(path) if path.exists() else None


def vectors_pending(repo: Path) -> bool:
    manifest = manifest_of(repo)
    if manifest is None:
        return True  # not even the lexical index exists
    try:
        return manifest.pending_chunks() > 0
    finally:
        manifest.close()


def indexed_as_it_is(repo: Path, rel: str) -> bool:
    """Whether the index records the file as it is on disk now."""
    manifest = manifest_of(repo)
    if manifest is None:
        return False
    try:
        state = manifest.states_for([rel]).get(rel)
    finally:
        manifest.close()
    stat = (repo / rel).stat()
    return state is not None and (state.mtime_ns, state.size) == (stat.st_mtime_ns, stat.st_size)


def last_tool_result(server: ScriptedLLMServer) -> str:
    messages = server.requests[-1]["messages"]
    return [m for m in messages if m["role"] == "tool"][-1]["content"]


class Terminal:
    """A spawned `mcode` that answers the cursor-position queries a real terminal answers:
    prompt_toolkit draws the status line only once it knows where the screen ends."""

    def __init__(self, child: Any) -> None:
        self.child = child
        child.logfile_read = io.StringIO()

    def expect(self, text: str) -> None:
        """Wait for `text`; its spaces may be drawn as cursor moves."""
        pattern = r"(?:\s|\x1b\[\d*C)+".join(re.escape(word) for word in text.split())
        while self.child.expect([pattern, re.escape(CURSOR_QUERY)]) == 1:
            self.child.send(CURSOR_AT_TOP)

    def ask(self, text: str, answer: str) -> None:
        self.child.send(text + "\r")
        self.expect(answer)

    def leave(self) -> int:
        self.child.send("/exit\r")
        while self.child.expect([pexpect.EOF, re.escape(CURSOR_QUERY)]) == 1:
            self.child.send(CURSOR_AT_TOP)
        self.child.close()
        return self.child.exitstatus

    @property
    def output(self) -> str:
        return self.child.logfile_read.getvalue()


@pytest.fixture
def spawn(tmp_path: Path, llm_server: ScriptedLLMServer) -> Iterator[Any]:
    started: list[Any] = []
    env = model_terminal_env(
        tmp_path / "home",
        llm_server.url,
        MCODE_EMBEDDING_MODEL="openai/mock-embedding",  # served by llm_server, slowly
    )
    llm_server.embedding_delay = EMBEDDING_DELAY
    del env["PROMPT_TOOLKIT_NO_CPR"]  # Terminal answers

    def start(repo: Path) -> Terminal:
        child = spawn_mcode(["--permission-mode", "accept-edits"], repo, env, WAIT)
        started.append(child)
        terminal = Terminal(child)
        terminal.expect(PROMPT)
        return terminal

    yield start
    for child in started:
        if child.isalive():
            child.terminate(force=True)


def test_the_repl_indexes_and_watches_by_itself_and_a_second_session_reads(
    tmp_path: Path, spawn, llm_server: ScriptedLLMServer
) -> None:
    repo = big_repo(tmp_path / "repo")
    created = "def frobnicate_widgets(count):\n    return count * 2\n"
    llm_server.reply_tool_calls([("create_file", {"path": "pkg/widgets.py", "content": created})])
    llm_server.reply_text("Created it.")
    first = spawn(repo)

    first.ask("add frobnicate_widgets", "Created it.")
    assert vectors_pending(repo)  # answered before the index was finished …
    first.expect("vectors")  # … as the status line says: "vectors 12%"

    llm_server.reply_tool_calls([("code_search", {"query": "frobnicate_widgets"})])
    llm_server.reply_text("It is in widgets.")
    first.ask("where is frobnicate_widgets?", "It is in widgets.")
    assert last_tool_result(llm_server).startswith("1. pkg/widgets.py:1-2")

    edited = repo / "pkg" / "mod_0007.py"
    edited.write_text(edited.read_text() + "def quixotic_handler(request):\n    return None\n")
    assert poll(lambda: indexed_as_it_is(repo, "pkg/mod_0007.py"), WAIT)  # by the watcher
    llm_server.reply_tool_calls([("code_search", {"query": "quixotic_handler"})])
    llm_server.reply_text("It is in mod_0007.")
    first.ask("where is quixotic_handler?", "It is in mod_0007.")
    assert last_tool_result(llm_server).startswith("1. pkg/mod_0007.py:")

    second = spawn(repo)
    second.expect("kept by mcode session")  # its status line: the first session writes
    llm_server.reply_tool_calls([("code_search", {"query": "frobnicate_widgets"})])
    llm_server.reply_text("Found from the second session.")
    second.ask("where is frobnicate_widgets?", "Found from the second session.")
    assert last_tool_result(llm_server).startswith("1. pkg/widgets.py:1-2")
    lock = repo / ".agentmemory" / "index" / "write.lock"
    assert lock.read_text() == f"mcode session (pid {first.child.pid})"
    assert second.leave() == 0
    assert "being written" not in second.output
    assert first.leave() == 0


def test_the_repl_keeps_module_summaries_current_once_files_are_quiet(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    """As `mcode watch` does: a sleep pass once files have been quiet (here 1 s), at the start for
    what changed while nobody watched, then after an edit made in another process."""
    repo = make_repo(tmp_path / "repo", {"pkg/api.py": "def fetch_page(url):\n    return url\n"})
    env = model_terminal_env(
        tmp_path / "home",
        llm_server.url,
        MCODE_EMBEDDING_MODEL="none",
        MCODE_SLEEP_QUIET_SECONDS="1",
    )
    del env["PROMPT_TOOLKIT_NO_CPR"]
    session = Terminal(spawn_mcode([], repo, env, WAIT))
    try:
        session.expect(PROMPT)

        def summary_names(name: str) -> bool:
            shown = run_in_process(["summary", "pkg/api.py", "--json", "--repo", str(repo)], env)
            if shown.returncode != 0:
                return False
            found = json.loads(shown.stdout)
            return found["current"] and name in found["text"]

        assert poll(lambda: summary_names("fetch_page"), WAIT)
        api = repo / "pkg" / "api.py"
        api.write_text(api.read_text() + "\ndef parse_quixotic_header(raw):\n    return raw\n")
        assert poll(lambda: summary_names("parse_quixotic_header"), WAIT)
        assert session.leave() == 0
    finally:
        if session.child.isalive():
            session.child.terminate(force=True)
