"""mcode's model client: the only module that imports litellm.

Everything else talks to a `ModelClient` and gets back plain `AssistantTurn`s, so tests and the
agent loop never see litellm types. litellm is imported on first use because its import costs
2–3 s, which `mcode --help` must not pay.

Retries are ours alone (litellm's own are switched off) so that their number and their waits are
deterministic: transient failures (429, 5xx) are retried with exponential backoff, honouring
Retry-After; a time-out or a dropped connection is retried once, a refused connection never (no
server is listening); then each fallback model gets one try. A reply that already streamed text to
the user is never retried, since the user would see the text twice. `on_retry` hears each retry.

Time-outs fit an interactive tool: `connect_timeout` for reaching the server, `timeout` for the
model's silence (before its first token, and between tokens). A client given a `cancel` event runs
each request on a thread of its own and gives it up as soon as the event is set (`Cancelled`):
a blocked socket read cannot be interrupted, so the request is abandoned, never retried, and its
late words are dropped.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import importlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mcode.agent.messages import AssistantTurn, ToolCall, Usage
from mcode.config.settings import DEFAULT_CONNECT_TIMEOUT, DEFAULT_FIRST_TOKEN_TIMEOUT
from mcode.secrets import redact

# Unknown models (local ollama ones, brand-new hosted ones) get a deliberately modest window:
# overestimating makes the provider truncate or reject the prompt, underestimating only makes
# the agent summarise old turns a little earlier. 32k is what current local coding models
# (qwen2.5-coder, llama3.1) are commonly served with.
DEFAULT_CONTEXT_WINDOW = 32_768
DEFAULT_MAX_OUTPUT_TOKENS = 8_192
# A Retry-After of an hour should fail the turn, not freeze the terminal for an hour.
MAX_BACKOFF_SECONDS = 60.0
# Retries of a failure that a second try rarely cures; others get `max_retries`.
_RETRY_LIMITS = {"timeout": 1, "connection": 1}
CANCEL_POLL_SECONDS = 0.05

ERROR_KINDS = frozenset(
    {
        "auth",
        "not_found",
        "rate_limit",
        "timeout",
        "server",
        "connection",
        "bad_request",
        "context_window",
    }
)
TRANSIENT_KINDS = frozenset({"rate_limit", "timeout", "server", "connection"})

TextCallback = Callable[[str], None]


class Cancelled(BaseException):
    """The user cancelled the turn; a request in flight was given up. A BaseException, like
    KeyboardInterrupt, so that code which carries on after a failure (a summary that falls back)
    stops instead."""


class LLMError(Exception):
    """A failed model call, classified so the caller can react (re-auth, compact, give up)."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        model: str = "",
        retry_after: float | None = None,
        partial: bool = False,
        refused: bool = False,
    ) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown LLMError kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.model = model
        self.retry_after = retry_after
        self.partial = partial  # text had already reached the user when the call failed
        self.refused = refused  # nothing listens at the address: retrying cannot help

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT_KINDS

    def __str__(self) -> str:
        return self.message


class ModelClient(Protocol):
    """What the agent loop needs from a model; tests hand it scripted implementations."""

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        on_text: TextCallback | None = None,
    ) -> AssistantTurn: ...


@dataclass(frozen=True)
class ModelInfo:
    """A model's limits and list prices (USD per token). `known` is False when the values are
    mcode's defaults because litellm has no metadata for the model."""

    context_window: int
    max_output_tokens: int | None
    input_cost: float
    output_cost: float
    known: bool = True


# What litellm imports on its first streamed call (tiktoken's encoding, its proxy types, the
# openai client's resources, httpx's transport): over a second, which `warm_up` moves off the
# first request's path.
_FIRST_CALL_MODULES = (
    "litellm.litellm_core_utils.default_encoding",
    "litellm.proxy.openai_files_endpoints.common_utils",
    "openai.resources.chat",
    "httpcore",
)


def warm_up() -> None:
    """Import litellm and what its first call needs, on a background thread while a session
    opens, so that the first request does not wait for seconds of imports."""
    _litellm()
    for name in _FIRST_CALL_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


@functools.cache
def _litellm() -> Any:
    """Import and quiet litellm once; its import must never reach the network."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.set_verbose = False
    litellm.telemetry = False
    # Stray log lines would tear through the REPL's display; errors reach users as LLMError.
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return litellm


class LiteLLMClient:
    """A `ModelClient` for any litellm model string (`openai/…`, `anthropic/…`, `ollama_chat/…`).

    `api_base` and `api_key` apply to the main model and to fallbacks of the same provider;
    a fallback on another provider uses that provider's defaults and environment variable.
    Without `api_key`, litellm reads the provider's environment variable itself.
    """

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        fallbacks: Sequence[str] = (),
        timeout: float = DEFAULT_FIRST_TOKEN_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_retries: int = 4,
        backoff_base: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[LLMError, float, int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.model = model
        self.api_base = api_base
        self._api_key = api_key
        self.fallbacks = tuple(fallbacks)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_retries = max(0, max_retries)
        self.backoff_base = backoff_base
        self._sleep = sleep
        self._on_retry = on_retry  # (error, seconds to wait, next attempt, attempts at most)
        self._cancel = cancel

    def __repr__(self) -> str:  # never show the key
        return f"LiteLLMClient(model={self.model!r}, api_base={self.api_base!r})"

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        on_text: TextCallback | None = None,
    ) -> AssistantTurn:
        for model in (self.model, *self.fallbacks):
            self._check_model_name(model)
        try:
            return self._complete_with_retries(messages, tools, on_text)
        except LLMError as error:
            if not (self.fallbacks and error.transient and not error.partial):
                raise
            last = error
        for fallback in self.fallbacks:
            try:
                return self._attempt(fallback, messages, tools, on_text)
            except LLMError as error:
                if not error.transient or error.partial:
                    raise
                last = error
        tried = ", ".join(self.fallbacks)
        raise LLMError(
            last.kind, f"{last.message} (fallbacks tried: {tried})", model=last.model
        ) from last

    def _complete_with_retries(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        on_text: TextCallback | None,
    ) -> AssistantTurn:
        attempt = 0
        while True:
            try:
                return self._attempt(self.model, messages, tools, on_text)
            except LLMError as error:
                if not error.transient or error.partial or error.refused:
                    raise
                attempts = 1 + min(
                    self.max_retries, _RETRY_LIMITS.get(error.kind, self.max_retries)
                )
                if attempt + 1 >= attempts:
                    if attempts == 1:
                        raise
                    message = f"{error.message} (gave up after {attempts} attempts)"
                    raise LLMError(error.kind, message, model=error.model) from error
                delay = self._backoff(attempt, error.retry_after)
                if self._on_retry is not None:
                    self._on_retry(error, delay, attempt + 2, attempts)
                self._wait(delay)
                attempt += 1

    def _wait(self, seconds: float) -> None:
        """Sleep before a retry; a cancel ends the wait, and the turn."""
        if self._cancel is None:
            self._sleep(seconds)
        elif self._cancel.wait(seconds):
            raise Cancelled

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_BACKOFF_SECONDS)
        return min(self.backoff_base * 2**attempt, MAX_BACKOFF_SECONDS)

    def _endpoint(self, model: str) -> tuple[str | None, str | None]:
        """(api_base, api_key) for `model`: the configured ones only for the main provider."""
        if model == self.model or _provider_prefix(model) == _provider_prefix(self.model):
            return self.api_base, self._api_key
        return None, None

    def _check_model_name(self, model: str) -> None:
        """Fail before any network call when litellm cannot even tell the provider."""
        api_base, _ = self._endpoint(model)
        try:
            _litellm().get_llm_provider(model=model, api_base=api_base)
        except Exception:
            raise LLMError(
                "not_found",
                f"unknown model '{model}': name it as provider/model, "
                "e.g. openai/gpt-4o, anthropic/claude-sonnet-4-5 or ollama_chat/llama3.1",
                model=model,
            ) from None

    def _attempt(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        on_text: TextCallback | None,
    ) -> AssistantTurn:
        """One streamed call, given up on cancel (see the module's docstring)."""
        cancel = self._cancel
        if cancel is None:
            return self._stream(model, messages, tools, on_text)
        if cancel.is_set():
            raise Cancelled
        abandoned = threading.Event()

        def guarded(text: str) -> None:
            if abandoned.is_set():
                raise Cancelled  # the turn has moved on: these words are nobody's
            if on_text is not None:
                on_text(text)

        def call() -> AssistantTurn:
            return self._stream(model, messages, tools, guarded)

        return _unless_cancelled(call, cancel, abandoned)

    def _stream(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        on_text: TextCallback | None,
    ) -> AssistantTurn:
        """One streamed call. Exceptions from `on_text` (KeyboardInterrupt included) propagate
        untouched; only litellm's own failures become LLMError."""
        litellm = _litellm()
        acc = _Accumulator()
        stream: Any = None
        try:
            try:
                stream = litellm.completion(**self._request(model, messages, tools))
                chunks = iter(stream)
            except Exception as exc:
                raise self._error(exc, model, partial=False) from exc
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    break
                except Exception as exc:
                    raise self._error(exc, model, partial=bool(acc.parts)) from exc
                text = acc.add(chunk)
                if text and on_text is not None:
                    on_text(text)
        finally:
            _close(stream)
        return acc.turn(model, messages, tools)

    def _request(
        self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        api_base, api_key = self._endpoint(model)
        request: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            # connect: seconds to reach the server; read: seconds of the model's silence
            "timeout": _httpx_timeout(self.timeout, self.connect_timeout),
            "num_retries": 0,  # ours are the only retries
            "max_retries": 0,
            "drop_params": True,  # providers that lack stream_options just ignore it
            # mcode's tools are plain functions: litellm need not import its MCP client (~1 s)
            "_skip_mcp_handler": True,
        }
        if tools:
            request["tools"] = tools
        if api_base:
            request["api_base"] = api_base
        if api_key:
            request["api_key"] = api_key
        return request

    def _error(self, exc: BaseException, model: str, *, partial: bool) -> LLMError:
        kind = _classify(exc)
        detail = _redact(_detail(exc), self._api_key)
        api_base, api_key = self._endpoint(model)
        where = f" at {api_base}" if api_base else ""
        refused = kind == "connection" and _refused(exc)
        if kind == "auth":
            hint = "the configured API key" if api_key else _key_env_var(model)
            message = f"authentication failed for {model}: check {hint}"
        elif kind == "not_found":
            message = f"unknown model '{model}'{where}"
        elif kind == "rate_limit":
            message = f"rate limited by {model}"
        elif kind == "timeout" and _connect_timeout(exc):
            message = (
                f"timed out connecting to {model}{where} after {self.connect_timeout:g}s "
                "(connect_timeout)"
            )
            detail = ""
        elif kind == "timeout":
            message = (
                f"{model}{where} timed out: no answer within {self.timeout:g}s "
                "(first_token_timeout)"
            )
            detail = ""
        elif refused:
            message = f"cannot connect to {model}{where}: connection refused (is the server up?)"
            detail = ""
        elif kind == "connection":
            message = f"cannot connect to {model}{where}"
        elif kind == "context_window":
            message = f"the conversation is too long for {model}'s context window"
        elif kind == "bad_request":
            message = f"{model} rejected the request"
        else:
            message = f"{model} server error"
        if detail:
            message = f"{message} ({detail})"
        return LLMError(
            kind,
            message,
            model=model,
            retry_after=_retry_after(exc),
            partial=partial,
            refused=refused,
        )


def _unless_cancelled(
    call: Callable[[], AssistantTurn], cancel: threading.Event, abandoned: threading.Event
) -> AssistantTurn:
    """`call()` on a thread of its own; Cancelled as soon as `cancel` is set, leaving the call
    to end by itself (its time-out, or its next words, which `abandoned` turns away)."""
    outcome: list[AssistantTurn] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="mcode-request", daemon=True).start()
    try:
        while not done.wait(CANCEL_POLL_SECONDS):
            if cancel.is_set():
                raise Cancelled
    except BaseException:  # Cancelled, or Ctrl-C on this thread (headless mode)
        abandoned.set()
        raise
    if failure:
        raise failure[0]
    return outcome[0]


def _httpx_timeout(read: float, connect: float) -> Any:
    import httpx  # comes with litellm, which is imported by now

    return httpx.Timeout(read, connect=connect)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from: litellm wraps httpx's and openai's errors."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _connect_timeout(exc: BaseException) -> bool:
    import httpx

    return any(isinstance(e, httpx.ConnectTimeout) for e in _causes(exc))


def _refused(exc: BaseException) -> bool:
    return any(
        isinstance(e, ConnectionRefusedError) or "connection refused" in str(e).lower()
        for e in _causes(exc)
    )


class _Accumulator:
    """Builds one AssistantTurn from streamed chunks; tool calls are keyed by their `index`."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: tuple[int, int] | None = None

    def add(self, chunk: Any) -> str:
        usage = _get(chunk, "usage")
        if usage is not None and (_get(usage, "prompt_tokens") or _get(usage, "completion_tokens")):
            self.usage = (
                int(_get(usage, "prompt_tokens") or 0),
                int(_get(usage, "completion_tokens") or 0),
            )
        text = ""
        for choice in _get(chunk, "choices") or []:
            if _get(choice, "index") not in (0, None):
                continue  # only the first choice is ever asked for
            self.finish_reason = _get(choice, "finish_reason") or self.finish_reason
            delta = _get(choice, "delta")
            if delta is None:
                continue
            text += _get(delta, "content") or ""
            for call in _get(delta, "tool_calls") or []:
                self._add_call(call)
        if text:
            self.parts.append(text)
        return text

    def _add_call(self, delta: Any) -> None:
        index, call_id = _get(delta, "index"), _get(delta, "id")
        if index is None:  # some providers send whole calls without an index
            index = len(self.calls) if call_id or not self.calls else max(self.calls)
        slot = self.calls.get(index)
        if slot is not None and call_id and slot["id"] and slot["id"] != call_id:
            index, slot = max(self.calls) + 1, None  # same index reused for a new call
        if slot is None:
            slot = self.calls[index] = {"id": "", "name": "", "arguments": []}
        if call_id:
            slot["id"] = call_id
        function = _get(delta, "function")
        if function is not None:
            slot["name"] = _get(function, "name") or slot["name"]
            slot["arguments"].append(_get(function, "arguments") or "")

    def turn(
        self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> AssistantTurn:
        content = "".join(self.parts)
        calls = [
            ToolCall(
                id=slot["id"] or f"call_{position}",
                name=slot["name"],
                arguments="".join(slot["arguments"]) or "{}",
            )
            for position, (_, slot) in enumerate(sorted(self.calls.items()))
        ]
        if self.usage is not None:
            prompt, completion = self.usage
            estimated = False
        else:
            prompt = count_tokens(model, messages, tools=tools)
            completion = _estimate_completion(model, content, calls)
            estimated = True
        usage = Usage(prompt, completion, _cost(model, prompt, completion), estimated)
        return AssistantTurn(content, calls, usage, self.finish_reason, model)


def model_info(model: str) -> ModelInfo:
    """Limits and prices from litellm's bundled map; mcode's defaults for unknown models."""
    try:
        info = _litellm().get_model_info(model) or {}
    except Exception:
        info = {}
    window = info.get("max_input_tokens")
    if not window:
        return ModelInfo(DEFAULT_CONTEXT_WINDOW, DEFAULT_MAX_OUTPUT_TOKENS, 0.0, 0.0, known=False)
    return ModelInfo(
        context_window=int(window),
        max_output_tokens=int(info["max_output_tokens"]) if info.get("max_output_tokens") else None,
        input_cost=float(info.get("input_cost_per_token") or 0.0),
        output_cost=float(info.get("output_cost_per_token") or 0.0),
    )


def count_tokens(
    model: str, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
) -> int:
    """Prompt size in the model's tokens; a chars/4 estimate when litellm cannot count."""
    try:
        return int(_litellm().token_counter(model=model, messages=messages, tools=tools))
    except Exception:
        return _rough_tokens(json.dumps([messages, tools], default=str))


def _estimate_completion(model: str, content: str, calls: list[ToolCall]) -> int:
    text = content + "".join(call.name + call.arguments for call in calls)
    if not text:
        return 0
    try:
        return int(_litellm().token_counter(model=model, text=text))
    except Exception:
        return _rough_tokens(text)


def _rough_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _cost(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """List price of the call in USD; 0.0 for models without a price (local, unknown)."""
    try:
        prompt_cost, completion_cost = _litellm().cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
        return float(prompt_cost) + float(completion_cost)
    except Exception:
        return 0.0


def _classify(exc: BaseException) -> str:
    """Map litellm's exception classes (and what leaks past them) onto LLMError kinds."""
    litellm = _litellm()
    import httpx

    status = getattr(exc, "status_code", None)
    text = str(exc)
    checks: list[tuple[Any, str]] = [
        (litellm.ContextWindowExceededError, "context_window"),
        ((litellm.AuthenticationError, litellm.PermissionDeniedError), "auth"),
        (litellm.NotFoundError, "not_found"),
        (litellm.RateLimitError, "rate_limit"),
        # before APIConnectionError: openai's timeout error subclasses it
        ((litellm.Timeout, httpx.TimeoutException, TimeoutError), "timeout"),
        ((litellm.APIConnectionError, httpx.TransportError, ConnectionError), "connection"),
    ]
    for classes, kind in checks:
        if isinstance(exc, classes):
            return kind
    if _MISSING_KEY.search(text):
        return "auth"  # e.g. openai without a key surfaces as InternalServerError
    if "Connection error" in text:
        return "connection"  # openai's APIConnectionError re-wrapped as InternalServerError
    if isinstance(exc, (litellm.BadRequestError, litellm.UnprocessableEntityError)):
        return "bad_request"
    server_errors = (
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.BadGatewayError,
    )
    if isinstance(exc, server_errors):
        return "server"
    return _kind_for_status(status)


def _kind_for_status(status: Any) -> str:
    if not isinstance(status, int):
        return "bad_request"  # an unexpected failure inside litellm: retrying will not help
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status == 408:
        return "timeout"
    if status == 429:
        return "rate_limit"
    return "server" if status >= 500 else "bad_request"


_MISSING_KEY = re.compile(r"missing credentials|api[ _]?key (?:is )?(?:not set|missing)", re.I)
_PREFIX = re.compile(r"^\s*(?:litellm\.\w+:|\w*(?:Error|Exception|Timeout)\s*[:-])\s*")


def _detail(exc: BaseException) -> str:
    """The provider's own words, on one line, without litellm's class-name prefixes."""
    text = str(getattr(exc, "message", "") or exc)
    text = text.strip().split("\n")[0]
    while match := _PREFIX.match(text):
        text = text[match.end() :]
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _redact(text: str, api_key: str | None) -> str:
    if api_key:
        text = text.replace(api_key, "***")
    return redact(text)


def _key_env_var(model: str) -> str:
    """The environment variable litellm reads the key of `model`'s provider from."""
    litellm = _litellm()
    with contextlib.suppress(Exception):
        missing = litellm.validate_environment(model=model).get("missing_keys") or []
        if missing:
            return " or ".join(missing)
    try:
        provider = litellm.get_llm_provider(model=model)[1]
    except Exception:
        provider = _provider_prefix(model) or "the provider's"
    return f"{provider.upper()}_API_KEY"


def _retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (Retry-After / retry-after-ms), if it said."""
    for source in ("litellm_response_headers", "response", "headers"):
        try:
            value = getattr(exc, source, None)
        except Exception:
            continue
        headers = getattr(value, "headers", value)
        if not headers or not hasattr(headers, "items"):
            continue
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        with contextlib.suppress(ValueError):
            if "retry-after-ms" in lowered:
                return float(lowered["retry-after-ms"]) / 1000
            if "retry-after" in lowered:
                return _parse_retry_after(lowered["retry-after"])
    return None


def _parse_retry_after(value: str) -> float:
    try:
        return max(float(value), 0.0)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)  # raises ValueError when malformed
        return max(when.timestamp() - time.time(), 0.0)


def _provider_prefix(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else ""


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _close(stream: Any) -> None:
    """Close the HTTP response under a stream so an abandoned reply frees its connection."""
    if stream is None:
        return
    for obj in (
        getattr(stream, "completion_stream", None),
        getattr(stream, "response", None),
        stream,
    ):
        close = getattr(obj, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()
