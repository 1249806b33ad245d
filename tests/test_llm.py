"""The model client against a scripted OpenAI-compatible server, via litellm's real HTTP path."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import support.llm_server as llm_server_module
from support.llm_server import ScriptedLLMServer

from mcode.agent import LiteLLMClient, LLMError, count_tokens, model_info
from mcode.agent.llm import DEFAULT_CONTEXT_WINDOW, Cancelled

MODEL = "openai/mock-model"
MESSAGES = [
    {"role": "system", "content": "You are mcode."},
    {"role": "user", "content": "Say hello."},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} tool",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
    }
    for name in ("read_file", "grep")
]


class FakeSleep:
    """Records backoff waits instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client(
    server: ScriptedLLMServer, sleep: FakeSleep | None = None, **kwargs: Any
) -> LiteLLMClient:
    kwargs.setdefault("api_key", "sk-test")
    return LiteLLMClient(
        kwargs.pop("model", MODEL), api_base=server.url, sleep=sleep or FakeSleep(), **kwargs
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_streamed_text_reaches_on_text_in_pieces(llm_server: ScriptedLLMServer) -> None:
    llm_server.reply_text("Hello from the memory-first agent!", chunks=4)
    deltas: list[str] = []

    turn = client(llm_server).complete(MESSAGES, on_text=deltas.append)

    assert len(deltas) == 4
    assert "".join(deltas) == turn.content == "Hello from the memory-first agent!"
    assert turn.tool_calls == []
    assert turn.finish_reason == "stop"
    assert turn.model == MODEL
    sent = llm_server.requests[0]
    assert sent["messages"] == MESSAGES
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert llm_server.request_headers[0]["authorization"] == "Bearer sk-test"


def test_parallel_tool_calls_are_assembled_from_fragments(llm_server: ScriptedLLMServer) -> None:
    calls = [("read_file", {"path": "src/a.py"}), ("grep", {"pattern": "def main", "path": "."})]
    llm_server.reply_tool_calls(calls, text="Let me look.", chunks=4)

    turn = client(llm_server).complete(MESSAGES, tools=TOOLS)

    assert turn.content == "Let me look."
    assert [(c.id, c.name) for c in turn.tool_calls] == [
        ("call_0", "read_file"),
        ("call_1", "grep"),
    ]
    assert [json.loads(c.arguments) for c in turn.tool_calls] == [args for _, args in calls]
    assert turn.finish_reason == "tool_calls"
    assert llm_server.requests[0]["tools"] == TOOLS
    history = turn.to_message()
    assert history["tool_calls"][1]["function"] == {
        "name": "grep",
        "arguments": turn.tool_calls[1].arguments,
    }


class _RawArguments(str):
    """Tool-call arguments the scripted server sends verbatim, however malformed."""


class _RawJson:
    def __getattr__(self, name: str) -> Any:
        return getattr(json, name)

    @staticmethod
    def dumps(value: Any, *args: Any, **kwargs: Any) -> str:
        return (
            str(value) if isinstance(value, _RawArguments) else json.dumps(value, *args, **kwargs)
        )


def test_malformed_tool_call_arguments_arrive_as_the_model_wrote_them(
    llm_server: ScriptedLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tool layer, not the client, decides what to do with arguments that are not JSON."""
    monkeypatch.setattr(llm_server_module, "json", _RawJson())
    llm_server.reply_tool_calls([("read_file", _RawArguments('{"path": "app.py"'))])  # type: ignore[list-item]

    turn = client(llm_server).complete(MESSAGES, tools=TOOLS)

    assert [(c.name, c.arguments) for c in turn.tool_calls] == [("read_file", '{"path": "app.py"')]


@pytest.mark.parametrize(("retry_after", "waited"), [("0", 0.0), ("7", 7.0)])
def test_rate_limit_is_retried_honouring_retry_after(
    llm_server: ScriptedLLMServer, retry_after: str, waited: float
) -> None:
    llm_server.reply_error(429, "slow down", headers={"Retry-After": retry_after})
    llm_server.reply_text("ok")
    sleep = FakeSleep()

    turn = client(llm_server, sleep).complete(MESSAGES)

    assert turn.content == "ok"
    assert sleep.calls == [waited]
    assert len(llm_server.requests) == 2


def test_server_errors_back_off_exponentially(llm_server: ScriptedLLMServer) -> None:
    llm_server.reply_error(500)
    llm_server.reply_error(500)
    llm_server.reply_text("recovered")
    sleep = FakeSleep()

    turn = client(llm_server, sleep, backoff_base=0.5).complete(MESSAGES)

    assert turn.content == "recovered"
    assert sleep.calls == [0.5, 1.0]
    assert len(llm_server.requests) == 3


def test_bad_api_key_fails_at_once_with_one_line(llm_server: ScriptedLLMServer) -> None:
    llm_server.reply_error(401, "invalid api key")
    sleep = FakeSleep()

    with pytest.raises(LLMError) as caught:
        client(llm_server, sleep, fallbacks=["openai/other"]).complete(MESSAGES)

    error = caught.value
    assert error.kind == "auth"
    assert str(error).startswith(f"authentication failed for {MODEL}")
    assert "invalid api key" in str(error)
    assert "\n" not in str(error)
    assert "sk-test" not in str(error)
    assert len(llm_server.requests) == 1  # no retry, no fallback
    assert sleep.calls == []


def test_auth_error_names_the_environment_variable_and_hides_the_key(
    llm_server: ScriptedLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    llm_server.reply_error(401, f"Incorrect API key provided: {secret}")

    with pytest.raises(LLMError) as caught:
        client(llm_server, model="openai/gpt-x", api_key=None).complete(MESSAGES)

    message = str(caught.value)
    assert message.startswith("authentication failed for openai/gpt-x: check OPENAI_API_KEY")
    assert secret not in message
    assert "\n" not in message
    assert llm_server.request_headers[0]["authorization"] == f"Bearer {secret}"


def test_unknown_model_fails_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object) -> None:
        raise AssertionError("the client tried to connect")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    sleep = FakeSleep()

    with pytest.raises(LLMError) as caught:
        LiteLLMClient("nosuchprovider/x", sleep=sleep).complete(MESSAGES)

    assert caught.value.kind == "not_found"
    assert "unknown model 'nosuchprovider/x'" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert sleep.calls == []


@pytest.mark.parametrize(
    ("status", "server_message", "kind"),
    [
        (404, "The model `mock-model` does not exist", "not_found"),
        (400, "This model's maximum context length is 8192 tokens", "context_window"),
        (400, "Invalid schema for function 'grep'", "bad_request"),
    ],
)
def test_client_errors_are_not_retried(
    llm_server: ScriptedLLMServer, status: int, server_message: str, kind: str
) -> None:
    llm_server.reply_error(status, server_message)

    with pytest.raises(LLMError) as caught:
        client(llm_server).complete(MESSAGES)

    assert caught.value.kind == kind
    assert MODEL in str(caught.value)
    assert "\n" not in str(caught.value)
    assert len(llm_server.requests) == 1


def test_fallback_model_answers_after_retries_are_exhausted(
    llm_server: ScriptedLLMServer,
) -> None:
    for _ in range(3):
        llm_server.reply_error(503, "overloaded")
    llm_server.reply_text("fallback here")
    sleep = FakeSleep()

    turn = client(llm_server, sleep, max_retries=2, fallbacks=["openai/mock-small"]).complete(
        MESSAGES
    )

    assert turn.content == "fallback here"
    assert turn.model == "openai/mock-small"
    assert [r["model"] for r in llm_server.requests] == ["mock-model"] * 3 + ["mock-small"]
    assert len(sleep.calls) == 2


def test_error_after_retries_and_fallbacks_says_so(llm_server: ScriptedLLMServer) -> None:
    for _ in range(3):
        llm_server.reply_error(500, "boom")

    with pytest.raises(LLMError) as caught:
        client(llm_server, max_retries=1, fallbacks=["openai/mock-small"]).complete(MESSAGES)

    assert caught.value.kind == "server"
    assert "openai/mock-small" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert llm_server.pending() == 0


def test_a_closed_port_fails_at_once_naming_the_url_and_is_not_retried() -> None:
    sleep = FakeSleep()
    url = f"http://127.0.0.1:{free_port()}/v1"
    llm = LiteLLMClient(MODEL, api_base=url, api_key="sk-test", max_retries=4, sleep=sleep)

    with pytest.raises(LLMError) as caught:
        llm.complete(MESSAGES)

    assert caught.value.kind == "connection"
    assert str(caught.value) == (
        f"cannot connect to {MODEL} at {url}: connection refused (is the server up?)"
    )
    assert sleep.calls == []  # nobody listens: retrying cannot help


def test_slow_server_times_out(llm_server: ScriptedLLMServer) -> None:
    llm_server.reply_stall(2.0)

    with pytest.raises(LLMError) as caught:
        client(llm_server, timeout=0.2, max_retries=0).complete(MESSAGES)

    assert caught.value.kind == "timeout"
    assert str(caught.value) == (
        f"{MODEL} at {llm_server.url} timed out: no answer within 0.2s (first_token_timeout)"
    )


def test_a_hung_server_is_retried_once_visibly_then_reported_as_timed_out(
    llm_server: ScriptedLLMServer,
) -> None:
    llm_server.reply_hang()
    llm_server.reply_hang()
    retries: list[tuple[str, float, int, int]] = []
    sleep = FakeSleep()

    def on_retry(error: LLMError, seconds: float, attempt: int, attempts: int) -> None:
        retries.append((error.kind, seconds, attempt, attempts))

    llm = client(llm_server, sleep, timeout=0.3, max_retries=4, on_retry=on_retry)
    with pytest.raises(LLMError) as caught:
        llm.complete(MESSAGES)

    assert retries == [("timeout", 1.0, 2, 2)]
    assert sleep.calls == [1.0]
    assert "timed out" in str(caught.value) and llm_server.url in str(caught.value)
    assert str(caught.value).endswith("(gave up after 2 attempts)")
    assert len(llm_server.requests) == 2


def test_cancel_gives_up_a_hung_request_at_once_and_never_retries(
    llm_server: ScriptedLLMServer,
) -> None:
    llm_server.reply_hang()
    cancel = threading.Event()
    llm = client(llm_server, timeout=30, cancel=cancel)
    threading.Thread(target=_set_when_asked, args=(llm_server, cancel), daemon=True).start()

    started = time.monotonic()
    with pytest.raises(Cancelled):
        llm.complete(MESSAGES)

    assert time.monotonic() - started < 10  # not the 30 s time-out
    assert len(llm_server.requests) == 1


def test_cancel_ends_the_wait_before_a_retry(llm_server: ScriptedLLMServer) -> None:
    llm_server.reply_error(503)
    cancel = threading.Event()
    llm = client(llm_server, cancel=cancel, backoff_base=30, on_retry=lambda *_: cancel.set())

    started = time.monotonic()
    with pytest.raises(Cancelled):
        llm.complete(MESSAGES)

    assert time.monotonic() - started < 10  # not the 30 s backoff
    assert len(llm_server.requests) == 1


def _set_when_asked(server: ScriptedLLMServer, cancel: threading.Event) -> None:
    deadline = time.monotonic() + 30
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    cancel.set()


def test_keyboard_interrupt_stops_the_stream(llm_server: ScriptedLLMServer) -> None:
    llm_server.reply_text("x" * 40, chunks=40, chunk_delay=0.05)  # two seconds in full
    llm_server.reply_text("next turn")
    llm = client(llm_server)

    def interrupt(_: str) -> None:
        raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        llm.complete(MESSAGES, on_text=interrupt)
    assert time.monotonic() - started < 1.0

    deadline = time.monotonic() + 3
    while llm_server.aborted == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert llm_server.aborted == 1  # the server saw the client hang up
    assert llm.complete(MESSAGES).content == "next turn"


def test_usage_comes_from_the_server_and_is_priced(llm_server: ScriptedLLMServer) -> None:
    llm_server.reply_text("cheap", usage=(120, 30))
    llm_server.reply_text("priced", usage=(1000, 200))

    free = client(llm_server).complete(MESSAGES).usage
    priced = client(llm_server, model="openai/gpt-4o-mini").complete(MESSAGES).usage

    assert (free.prompt_tokens, free.completion_tokens, free.cost_usd) == (120, 30, 0.0)
    assert not free.estimated
    info = model_info("openai/gpt-4o-mini")
    assert info.input_cost > 0
    assert priced.cost_usd == pytest.approx(1000 * info.input_cost + 200 * info.output_cost)


def test_usage_is_estimated_when_the_server_sends_none(llm_server: ScriptedLLMServer) -> None:
    llm_server.reply_text("a reply of several words", usage=None)

    usage = client(llm_server).complete(MESSAGES).usage

    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0


def test_model_info_knows_listed_models_and_defaults_the_rest() -> None:
    known = model_info("openai/gpt-4o-mini")
    unknown = model_info("openai/mock-model")

    assert known.known and known.context_window >= 100_000
    assert not unknown.known
    assert unknown.context_window == DEFAULT_CONTEXT_WINDOW
    assert (unknown.input_cost, unknown.output_cost) == (0.0, 0.0)


def test_count_tokens_grows_with_the_conversation() -> None:
    short = count_tokens(MODEL, MESSAGES)
    longer = count_tokens(MODEL, [*MESSAGES, {"role": "user", "content": "more words " * 50}])

    assert 0 < short < longer


def test_importing_the_agent_package_does_not_import_litellm() -> None:
    code = "import sys, mcode.agent; print('litellm' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


def test_models_endpoint_lists_the_mock_model(llm_server: ScriptedLLMServer) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{llm_server.url}/models", timeout=5) as response:
        listing = json.load(response)

    assert [m["id"] for m in listing["data"]] == ["mock-model"]


def test_an_empty_script_fails_loudly(llm_server: ScriptedLLMServer) -> None:
    with pytest.raises(LLMError) as caught:
        client(llm_server, max_retries=0).complete(MESSAGES)

    assert "ran out of replies" in str(caught.value)
