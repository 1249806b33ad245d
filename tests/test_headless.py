"""`mcode -p`, talking to the scripted server (or a fake Ollama) through litellm's HTTP path. The
real command runs in a subprocess where the process is what is tested (its output and exit code;
independent runs go in parallel, since each process pays litellm's start-up); the other cases run
the same command in-process, where litellm is imported once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.llm_server import ScriptedLLMServer
from support.repos import make_repo, mcode_env
from typer.testing import CliRunner

from mcode.cli.app import app
from mcode.cli.common import piped_stdin

TIMEOUT = 240


class Run:
    """One `mcode` process, started at once and waited for later."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mcode", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._stdin = stdin

    def wait(self) -> subprocess.CompletedProcess[str]:
        out, err = self.proc.communicate(self._stdin, timeout=TIMEOUT)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)


@pytest.fixture
def servers() -> Iterator[list[ScriptedLLMServer]]:
    started: list[ScriptedLLMServer] = []
    yield started
    for server in started:
        server.stop()


def world(tmp_path: Path, name: str, servers: list[ScriptedLLMServer], **extra: str):
    """A repository, a scripted server and an environment that points mcode at it."""
    server = ScriptedLLMServer().start()
    servers.append(server)
    repo = make_repo(tmp_path / name, {"calc.py": "def add(a, b):\n    return a + b\n"})
    env = mcode_env(
        tmp_path / f"{name}-home",
        MCODE_MODEL="openai/mock-model",
        MCODE_API_BASE=server.url,
        OPENAI_API_KEY="sk-test",
        MCODE_EMBEDDING_MODEL="none",
        **extra,
    )
    return repo, server, env


def no_keys(env: dict[str, str], **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in env.items() if not k.endswith("_API_KEY") and k != "MCODE_MODEL"}
    return {**clean, **extra}


def test_text_output_of_the_real_command(tmp_path: Path, servers) -> None:
    repo, server, env = world(tmp_path, "text", servers)
    server.reply_text("add returns the sum of a and b.")

    text = Run(["-p", "What does add do?"], env, repo, stdin="def add(a, b): ...\n").wait()

    assert text.returncode == 0, text.stderr
    assert text.stdout == "add returns the sum of a and b.\n"
    # what was piped in follows the prompt
    assert server.requests[0]["messages"][-1]["content"] == (
        "What does add do?\n\ndef add(a, b): ...\n"
    )


def test_json_and_stream_json_output(tmp_path: Path, servers) -> None:
    json_repo, json_server, json_env = world(tmp_path, "json", servers)
    json_server.reply_tool_calls([("read_file", {"path": "calc.py"})])
    json_server.reply_text("It adds.")
    stream_repo, stream_server, stream_env = world(
        tmp_path, "stream", servers, MCODE_AUTO_INDEX="0"
    )
    stream_server.reply_tool_calls([("run_shell", {"command": "echo from-the-shell"})])
    stream_server.reply_text("Ran it.", chunks=2)

    as_json = in_process(["-p", "Read calc.py", "--output-format", "json"], json_env, json_repo)
    stream = in_process(
        ["-p", "-", "--output-format", "stream-json", "--allow", "Bash(echo:*)"],
        stream_env,
        stream_repo,
        stdin="Run echo",
    )

    assert as_json.exit_code == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["result"] == "It adds." and data["stop_reason"] == "done"
    assert data["is_error"] is False and data["num_turns"] == 2
    assert data["usage"]["input_tokens"] == 22 and data["usage"]["output_tokens"] == 14
    assert isinstance(data["total_cost_usd"], float) and isinstance(data["duration_ms"], int)
    assert data["session_id"]

    assert stream.exit_code == 0, stream.stderr
    lines = [json.loads(line) for line in stream.stdout.splitlines()]
    types = [line["type"] for line in lines]
    assert types[0] == "system" and types[-1] == "result"
    init = lines[0]
    assert init["model"] == "openai/mock-model" and "edit_file" in init["tools"]
    assert "notice" in types  # the repository is not indexed, and the run leaves it so
    assert types.index("tool_use") < types.index("tool_output") < types.index("tool_result")
    assert {"type": "tool_output", "id": "call_0", "text": "from-the-shell"} in lines
    assert "".join(line["text"] for line in lines if line["type"] == "text") == "Ran it."
    assert lines[-1]["result"] == "Ran it." and lines[-1]["session_id"] == init["session_id"]
    assert stream_server.requests[0]["messages"][-1]["content"] == "Run echo"


class _FakeOllama:
    """/api/tags lists one model; /api/chat streams one answer the way Ollama does."""

    def __init__(self) -> None:
        self.chats: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/api/tags":
                    self._json({"models": [{"name": "tiny-coder:latest", "size": 1}]})
                else:
                    self._json({"error": "not found"}, 404)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)))
                if self.path != "/api/chat":
                    self._json({"error": "not found"}, 404)
                    return
                fake.chats.append(body)
                chunks = [
                    {"message": {"role": "assistant", "content": "Hello from "}, "done": False},
                    {"message": {"role": "assistant", "content": "Ollama."}, "done": False},
                    {
                        "message": {"role": "assistant", "content": ""},
                        "done": True,
                        "done_reason": "stop",
                        "prompt_eval_count": 5,
                        "eval_count": 3,
                    },
                ]
                data = "".join(
                    json.dumps(
                        {"model": body.get("model"), "created_at": "2025-01-01T00:00:00Z", **c}
                    )
                    + "\n"
                    for c in chunks
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _json(self, payload: Any, status: int = 200) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_bad_usage_exits_2_with_one_line(tmp_path: Path, servers) -> None:
    repo, _, env = world(tmp_path, "usage", servers)
    closed = no_keys(env, MCODE_OLLAMA_URL="http://127.0.0.1:9")
    runs = [
        Run(["-p", "hi", "--output-format", "yaml"], env, repo),
        Run(["-p", "-"], env, repo, stdin="   \n"),
        Run(["-p", "hi", "--permission-mode", "yolo"], env, repo),
        Run(["-p", "hi"], closed, repo),
    ]
    bad_format, empty, bad_mode, no_model = (run.wait() for run in runs)

    for result in (bad_format, empty, bad_mode, no_model):
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1
    assert "unknown output format 'yaml'" in bad_format.stderr
    assert "prompt is empty" in empty.stderr
    assert "permission mode" in bad_mode.stderr
    assert no_model.stderr.strip() == (
        "mcode: no model configured: run `mcode model anthropic/claude-sonnet-4-5` and set "
        "ANTHROPIC_API_KEY, or start Ollama"
    )


def in_process(args: list[str], env: dict[str, str], repo: Path, stdin: str | None = None):
    """The same command in this process (litellm is imported once for all of these)."""
    wanted = {k: v for k, v in env.items() if k.startswith(("MCODE_", "XDG_")) or "_API_" in k}
    unset: dict[str, str | None] = {k: None for k in os.environ if k.endswith("_API_KEY")}
    return CliRunner().invoke(
        app, [*args, "--repo", str(repo)], input=stdin, env={**unset, **wanted}
    )


def test_a_bad_key_exits_1_with_one_line(tmp_path: Path, servers) -> None:
    repo, server, env = world(tmp_path, "badkey", servers)
    server.reply_error(401, "Incorrect API key provided")

    result = in_process(["-p", "hi", "--output-format", "json"], env, repo)

    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["is_error"] is True and data["stop_reason"] == "error"
    assert "authentication failed" in data["error"]
    assert result.stderr.strip().splitlines()[-1].startswith("mcode: authentication failed")


def test_a_local_ollama_is_used_when_nothing_is_configured(tmp_path: Path, servers) -> None:
    repo, _, env = world(tmp_path, "local", servers)
    ollama = _FakeOllama()
    try:
        env = no_keys(env, MCODE_OLLAMA_URL=ollama.url)
        del env["MCODE_API_BASE"]
        result = in_process(["-p", "hi"], env, repo)
    finally:
        ollama.stop()

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Hello from Ollama.\n"
    assert "using ollama_chat/tiny-coder:latest" in result.stderr
    assert ollama.chats and ollama.chats[0]["model"] == "tiny-coder:latest"


def test_continue_resumes_the_latest_session_and_max_turns_exits_1(tmp_path: Path, servers) -> None:
    repo, server, env = world(tmp_path, "again", servers)
    server.reply_text("add returns the sum of a and b.")
    first = in_process(["-p", "What does add do?"], env, repo)
    assert first.exit_code == 0, first.stderr
    server.reply_text("I said it returns the sum.")

    again = in_process(["-p", "-", "--continue", "--output-format", "json"], env, repo, "And?")

    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["result"] == "I said it returns the sum."
    history = [m.get("content") for m in server.requests[-1]["messages"][1:]]
    assert history == ["What does add do?", "add returns the sum of a and b.", "And?"]

    server.reply_tool_calls([("read_file", {"path": "calc.py"})])
    looping = in_process(["-p", "Read it", "--max-turns", "1"], env, repo)
    assert looping.exit_code == 1
    assert "--max-turns" in looping.stderr.strip().splitlines()[-1]


def test_no_key_or_no_model_fails_before_any_request_and_json_says_why(
    tmp_path: Path, servers
) -> None:
    repo, server, env = world(tmp_path, "nokey", servers)
    keyless = no_keys(env, MCODE_MODEL="openai/mock-model", MCODE_OLLAMA_URL="http://127.0.0.1:9")
    nothing = no_keys(env, MCODE_OLLAMA_URL="http://127.0.0.1:9")

    no_key = in_process(["-p", "hi", "--output-format", "json"], keyless, repo)
    no_model = in_process(["-p", "hi", "--output-format", "json"], nothing, repo)

    assert no_key.exit_code == 2
    error = json.loads(no_key.stdout)
    assert error["is_error"] is True and error["error"].startswith(
        "no key for openai/mock-model: set OPENAI_API_KEY"
    )
    assert no_key.stderr.strip() == f"mcode: {error['error']}"
    assert no_model.exit_code == 2
    assert json.loads(no_model.stdout)["error"].startswith("no model configured")
    assert server.requests == []


def test_a_refused_edit_is_listed_and_the_run_exits_1(tmp_path: Path, servers) -> None:
    repo, server, env = world(tmp_path, "refused", servers, MCODE_AUTO_INDEX="0")
    edit = {"path": "calc.py", "old_string": "a + b", "new_string": "a - b"}
    server.reply_tool_calls([("edit_file", edit)])
    server.reply_text("Done.")

    result = in_process(["-p", "make add subtract", "--output-format", "json"], env, repo)

    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["result"] == "Done." and data["stop_reason"] == "done"
    assert data["permission_denials"] == [
        {"tool_name": "edit_file", "tool_use_id": "call_0", "tool_input": edit}
    ]
    assert "mcode: refused: edit_file calc.py" in result.stderr
    assert "edits were refused" in result.stderr.strip().splitlines()[-1]
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"


def test_words_that_are_no_command_start_the_repl_with_that_message(
    tmp_path: Path, servers
) -> None:
    repo, server, env = world(tmp_path, "first", servers, MCODE_AUTO_INDEX="0")
    server.reply_text("Which bug?")

    result = in_process(["fix", "the", "bug"], env, repo, stdin="")  # then end of input: leave
    typo = in_process(["indx"], env, repo)

    assert result.exit_code == 0, result.stderr
    assert "Which bug?" in result.stdout
    assert server.requests[0]["messages"][-1]["content"] == "fix the bug"
    assert typo.exit_code == 2 and "No such command 'indx'" in typo.stderr


def test_shell_completion_can_be_shown_and_completes_commands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Else typer guesses the shell from the processes above this one, which a test runner varies
    # (seen failing in a full run): the user's `--show-completion bash` names it.
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    script = CliRunner().invoke(app, ["--show-completion", "bash"])
    assert script.exit_code == 0 and "_MCODE_COMPLETE" in script.stdout

    env = {"_MCODE_COMPLETE": "complete_bash", "COMP_WORDS": "mcode mem", "COMP_CWORD": "1"}
    completed = CliRunner().invoke(app, [], env=env, prog_name="mcode")
    assert completed.stdout.split() == ["memory"]


def test_a_pipe_left_open_and_silent_on_stdin_is_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read, write = os.pipe()
    with os.fdopen(read) as stream:
        monkeypatch.setattr(sys, "stdin", stream)
        assert piped_stdin(0.1) is None  # a parent that never writes: go on without it
        os.write(write, b"X\n")
        os.close(write)
        assert piped_stdin(0.1) == "X\n"


def test_a_hung_server_times_out_as_configured_and_a_closed_port_fails_at_once(
    tmp_path: Path, servers
) -> None:
    repo, server, env = world(tmp_path, "hung", servers, MCODE_FIRST_TOKEN_TIMEOUT="0.5")
    server.reply_hang()
    server.reply_hang()
    closed_env = {**env, "MCODE_API_BASE": "http://127.0.0.1:9/v1"}

    hung = in_process(["-p", "hi"], env, repo)
    closed = in_process(["-p", "hi"], closed_env, repo)

    assert hung.exit_code == 1
    assert f"openai/mock-model at {server.url} timed out" in hung.stderr
    assert "(first_token_timeout)" in hung.stderr and "gave up after 2 attempts" in hung.stderr
    assert "retrying in 1s (attempt 2 of 2)" in hung.stderr  # the retry is announced
    assert len(server.requests) == 2
    assert closed.exit_code == 1
    assert closed.stderr.strip().splitlines()[-1] == (
        "mcode: cannot connect to openai/mock-model at http://127.0.0.1:9/v1: connection refused "
        "(is the server up?)"
    )


def test_time_out_settings_are_seconds(tmp_path: Path, servers) -> None:
    repo, _, env = world(tmp_path, "seconds", servers, MCODE_CONNECT_TIMEOUT="soon")

    result = in_process(["-p", "hi"], env, repo)

    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "mcode: MCODE_CONNECT_TIMEOUT: connect_timeout must be a number of seconds, got 'soon'"
    )
