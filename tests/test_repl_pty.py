"""The REPL end to end: the real `mcode` in a pseudo-terminal, talking to the scripted server.

The model's tool call edits a file and /undo puts it back; Ctrl-C stops a slow answer, a hung
request and a running command, and the program carries on; Ctrl-D leaves, even during a turn. Every wait polls the terminal's output with a deadline.
"""

from __future__ import annotations

import importlib.util
import io
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.llm_server import ScriptedLLMServer
from support.polling import poll
from support.repos import make_repo, model_terminal_env, spawn_mcode

pexpect = pytest.importorskip("pexpect")

AGENT_READY = importlib.util.find_spec("mcode.agent.session") is not None
pytestmark = [
    pytest.mark.skipif(not AGENT_READY, reason="mcode.agent.session is not importable yet"),
    pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal"),
]

WAIT = 60  # seconds for anything to appear (the first turn imports litellm: ~10 s here)
START = 60  # the first prompt: the process imports the agent and opens its stores
PROMPT = "❯"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(
        tmp_path / "repo",
        {"greet.py": 'print("hello")\n', "notes.txt": "first draft\n"},
    )
    (root / "notes.txt").write_text("first draft, edited by me\n")  # not mcode's to undo
    return root


@pytest.fixture
def spawn(tmp_path: Path, repo: Path, llm_server: ScriptedLLMServer) -> Iterator:
    started = []

    def start(*args: str):
        env = model_terminal_env(
            tmp_path / "home",
            llm_server.url,
            MCODE_EMBEDDING_MODEL="none",
        )
        child = spawn_mcode(list(args), repo, env, WAIT)
        started.append(child)
        child.expect(PROMPT, timeout=START)
        return child

    yield start
    for child in started:
        if child.isalive():
            child.terminate(force=True)


def finish(child) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_an_edit_is_asked_for_undone_and_a_slow_answer_cancelled(
    spawn, repo: Path, llm_server: ScriptedLLMServer
) -> None:
    llm_server.reply_tool_calls(
        [("edit_file", {"path": "greet.py", "old_string": "hello", "new_string": "goodbye"})]
    )
    llm_server.reply_text("Changed it.")
    words = " ".join(f"word{i}" for i in range(200))
    llm_server.reply_text(words, chunks=200, chunk_delay=0.1)
    child = spawn()

    child.send("change hello to goodbye\r")
    child.expect("edit_file")  # styles sit between a tool's name and its argument
    child.expect("greet.py")
    child.expect(r"Allow\? \[y\]es / \[n\]o")
    child.send("y\r")
    child.expect("Changed it.")
    assert (repo / "greet.py").read_text() == 'print("goodbye")\n'
    child.expect(PROMPT)

    child.send("/undo\r")
    child.expect("greet.py: restored as it was before the turn")
    assert (repo / "greet.py").read_text() == 'print("hello")\n'
    assert (repo / "notes.txt").read_text() == "first draft, edited by me\n"
    child.expect(PROMPT)

    child.send("tell me a long story\r")
    child.expect("word3")
    child.sendcontrol("c")
    child.expect("cancelled")
    child.expect(PROMPT)
    assert child.isalive()
    assert llm_server.pending() == 0

    child.send("/exit\r")
    assert finish(child) == 0


def test_ctrl_c_clears_the_line_and_ctrl_d_leaves(spawn) -> None:
    child = spawn("--permission-mode", "accept-edits")
    child.send("half a thought")
    child.expect("thought")
    child.sendcontrol("c")  # clears the line; Ctrl-D below only leaves from an empty prompt
    # Which redraw of the prompt follows the Ctrl-C cannot be told apart in the byte stream, so
    # Ctrl-D is repeated until the program leaves: it never would if the line were not cleared.
    for _ in range(WAIT):
        child.sendcontrol("d")
        if child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=1) == 0:
            break
    child.close()
    assert child.exitstatus == 0


def test_a_long_answer_arrives_whole_with_its_paths_verbatim(
    spawn, llm_server: ScriptedLLMServer
) -> None:
    """200 KB streamed in 1,000 pieces: prose, a long line, a code block; every part reaches the
    terminal, and a path with dunders is not turned into bold."""
    prose = "".join(
        f"Paragraph {i} says the parser in json/__init__.py reads it.\n" for i in range(1500)
    )
    line = " ".join(f"long{i}" for i in range(8000))
    code = "".join(f"value_{i} = compute({i})\n" for i in range(3000))
    answer = f"Edited json/__init__.py\n\n{prose}\n{line}\n\n```python\n{code}```\n\nTHE END"
    assert len(answer) > 200_000
    llm_server.reply_text(answer, chunks=1000)
    child = spawn()
    seen = io.StringIO()
    child.logfile_read = seen

    child.send("write a lot\r")
    child.expect("THE END", timeout=WAIT * 5)
    child.expect(PROMPT)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.getvalue())
    assert "Edited json/__init__.py" in shown
    for marker in ("Paragraph 0 ", "Paragraph 1499 ", "long0 ", "long7999", "value_2999 = "):
        assert marker in shown
    child.send("/exit\r")
    assert finish(child) == 0


def _running(pid: int) -> bool:
    """Whether the process is alive (a zombie waiting for its parent's wait is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_ctrl_c_gives_up_a_hung_request_and_stops_a_running_command(
    spawn, repo: Path, llm_server: ScriptedLLMServer
) -> None:
    llm_server.reply_hang()  # accepts the request and never answers
    llm_server.reply_tool_calls(
        [("run_shell", {"command": "sleep 300 & echo $! > sleeper.pid; wait"})]
    )
    llm_server.reply_text("All quiet.")
    child = spawn("--permission-mode", "auto")

    child.send("are you there?\r")
    assert poll(lambda: len(llm_server.requests) == 1, WAIT)
    child.sendcontrol("c")
    child.expect("cancelled")
    child.expect(PROMPT)

    child.send("wait for it\r")
    pid_file = repo / "sleeper.pid"
    assert poll(lambda: pid_file.is_file() and pid_file.read_text().strip() != "", WAIT)
    sleeper = int(pid_file.read_text())
    child.sendcontrol("c")
    child.expect("cancelled")
    child.expect(PROMPT)
    # the background sleep ignores SIGINT (bash -c sets it so): SIGKILL after the grace ends it
    assert poll(lambda: not _running(sleeper), WAIT)

    child.send("status?\r")
    child.expect("All quiet.")
    child.expect(PROMPT)
    assert len(llm_server.requests) == 3  # nothing was retried after a cancel
    child.send("/exit\r")
    assert finish(child) == 0


def test_ctrl_d_leaves_while_a_request_hangs(spawn, llm_server: ScriptedLLMServer) -> None:
    llm_server.reply_hang()
    child = spawn()
    child.send("are you there?\r")
    assert poll(lambda: len(llm_server.requests) == 1, WAIT)
    child.sendcontrol("d")
    assert finish(child) == 0
