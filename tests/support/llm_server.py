"""A scripted OpenAI-compatible server on 127.0.0.1 for tests of everything that talks to an LLM.

litellm's `mock_response` cannot stream tool calls, so tests go through litellm's real HTTP path
against this server instead. A test queues replies (text, tool calls, HTTP errors, stalls); each
POST to /v1/chat/completions pops the next one; a "hang" reply reads the request and never answers
(until the server stops), as a stalled provider does. An empty queue answers 500 with a message saying
so, which makes a test that expects fewer requests fail loudly.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_USAGE = (11, 7)


@dataclass
class Reply:
    """One scripted answer; `kind` is "text", "tools", "error" or "hang"."""

    kind: str
    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    chunks: int = 3
    usage: tuple[int, int] | None = DEFAULT_USAGE
    status: int = 200
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunk_delay: float = 0.0


def split(text: str, parts: int) -> list[str]:
    """Split text into `parts` non-empty pieces (fewer if the text is shorter)."""
    parts = max(1, min(parts, len(text))) if text else 1
    size, extra = divmod(len(text), parts)
    pieces, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


class ScriptedLLMServer:
    """Replays queued replies over HTTP and records every request body in `requests`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.seen: list[str] = []  # every request's method and path, whatever its route
        self.arrivals: list[float] = []  # time.monotonic() of each chat request's arrival
        self.aborted = 0  # streams the client hung up on before the end
        self.embedding_delay = 0.0  # seconds each /embeddings request takes …
        self.embedding_free = 0  # … after this many (a remote embedder's dimension probe)
        self._embedding_requests = 0
        self.embedded = 0  # texts embedded so far
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopped = threading.Event()  # lets hanging requests go when the server stops
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -------------------------------------------------------------------------

    def start(self) -> ScriptedLLMServer:
        handler = type("Handler", (_Handler,), {"script": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    # ----- scripting -------------------------------------------------------------------------

    def reply_text(
        self,
        text: str,
        *,
        chunks: int = 3,
        usage: tuple[int, int] | None = DEFAULT_USAGE,
        chunk_delay: float = 0.0,
    ) -> None:
        """Queue a text answer streamed in `chunks` deltas, `chunk_delay` seconds apart;
        usage=None never reports usage."""
        self._push(Reply("text", text=text, chunks=chunks, usage=usage, chunk_delay=chunk_delay))

    def reply_tool_calls(
        self,
        calls: list[tuple[str, dict[str, Any]]],
        *,
        text: str = "",
        chunks: int = 3,
        usage: tuple[int, int] | None = DEFAULT_USAGE,
    ) -> None:
        """Queue parallel tool calls; arguments stream in `chunks` pieces, interleaved."""
        self._push(Reply("tools", text=text, tool_calls=list(calls), chunks=chunks, usage=usage))

    def reply_error(
        self, status: int, message: str = "", *, headers: dict[str, str] | None = None
    ) -> None:
        self._push(Reply("error", status=status, message=message, headers=dict(headers or {})))

    def reply_stall(self, seconds: float, text: str = "late") -> None:
        """Queue a text answer that only starts after `seconds`, to exercise client timeouts."""
        self._push(Reply("text", text=text, delay=seconds, chunks=1))

    def reply_hang(self) -> None:
        """Queue a request that is read and never answered: no status line, no byte."""
        self._push(Reply("hang"))

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def _push(self, reply: Reply) -> None:
        with self._lock:
            self._queue.append(reply)

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.arrivals.append(time.monotonic())
            self.requests.append(body)
            self.request_headers.append(headers)
            if self._queue:
                return self._queue.popleft()
        n = len(self.requests)
        return Reply(
            "error", status=500, message=f"scripted server ran out of replies (request {n})"
        )


class _Handler(BaseHTTPRequestHandler):
    script: ScriptedLLMServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.script.seen.append(f"GET {self.path}")
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [_model_entry("mock-model")]})
        else:
            self._send_json(404, _error_body(f"no route {self.path}", 404))

    def do_POST(self) -> None:
        self.script.seen.append(f"POST {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path.rstrip("/").endswith("/embeddings"):
            self._embed(body)
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, _error_body(f"no route {self.path}", 404))
            return
        reply = self.script._next(body, {k.lower(): v for k, v in self.headers.items()})
        if reply.kind == "hang":
            self.script._stopped.wait()
            self.close_connection = True
            return
        if reply.delay:
            time.sleep(reply.delay)
        if reply.kind == "error":
            self._send_json(reply.status, _error_body(reply.message, reply.status), reply.headers)
        elif body.get("stream"):
            self._stream(reply, body)
        else:
            self._send_json(200, _full_response(reply, body.get("model", "mock-model")))

    def _embed(self, body: dict[str, Any]) -> None:
        """Vectors derived from each text's hash: stable, and costing no CPU worth counting, so a
        test can make vectors slow (`embedding_delay`) without keeping the machine busy."""
        texts = body.get("input") or []
        texts = [texts] if isinstance(texts, str) else texts
        with self.script._lock:
            self.script._embedding_requests += 1
            free = self.script._embedding_requests <= self.script.embedding_free
        if self.script.embedding_delay and not free:
            time.sleep(self.script.embedding_delay)
        with self.script._lock:
            self.script.embedded += len(texts)
        data = [
            {"object": "embedding", "index": i, "embedding": _hash_vector(str(text))}
            for i, text in enumerate(texts)
        ]
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        self._send_json(200, {"object": "list", "data": data, "model": "mock", "usage": usage})

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out while a stalled reply slept

    def _stream(self, reply: Reply, body: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        model = body.get("model", "mock-model")
        want_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        try:
            for i, chunk in enumerate(_stream_chunks(reply, model, want_usage)):
                if i and reply.chunk_delay:
                    time.sleep(reply.chunk_delay)
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            with self.script._lock:
                self.script.aborted += 1  # the client hung up (cancellation)


def _hash_vector(text: str, dim: int = 32) -> list[float]:
    digest = hashlib.sha256(text.encode("utf-8", "replace")).digest()
    return [(byte - 127.5) / 127.5 for byte in digest[:dim]]


def _model_entry(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "mcode-tests"}


def _error_body(message: str, status: int) -> dict[str, Any]:
    return {"error": {"message": message or f"scripted error {status}", "type": "error"}}


def _usage(reply: Reply) -> dict[str, int] | None:
    if reply.usage is None:
        return None
    prompt, completion = reply.usage
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _call_id(i: int) -> str:
    return f"call_{i}"


def _stream_chunks(reply: Reply, model: str, want_usage: bool) -> list[dict[str, Any]]:
    chunks = [_chunk(model, {"role": "assistant", "content": ""})]
    chunks += [_chunk(model, {"content": piece}) for piece in split(reply.text, reply.chunks)]
    if reply.kind == "tools":
        chunks += _tool_call_chunks(reply, model)
    finish = "tool_calls" if reply.kind == "tools" else "stop"
    chunks.append(_chunk(model, {}, finish))
    usage = _usage(reply)
    if want_usage and usage is not None:
        final = _chunk(model, {})
        final["choices"] = []
        final["usage"] = usage
        chunks.append(final)
    return chunks


def _tool_call_chunks(reply: Reply, model: str) -> list[dict[str, Any]]:
    """First a header per call (index, id, type, name), then argument pieces interleaved."""
    out = []
    for i, (name, _) in enumerate(reply.tool_calls):
        header = {
            "index": i,
            "id": _call_id(i),
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        out.append(_chunk(model, {"tool_calls": [header]}))
    pieces = [split(json.dumps(args), reply.chunks) for _, args in reply.tool_calls]
    for step in range(max((len(p) for p in pieces), default=0)):
        for i, parts in enumerate(pieces):
            if step < len(parts):
                delta = {"index": i, "function": {"arguments": parts[step]}}
                out.append(_chunk(model, {"tool_calls": [delta]}))
    return out


def _full_response(reply: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.kind == "tools":
        message["tool_calls"] = [
            {
                "id": _call_id(i),
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for i, (name, args) in enumerate(reply.tool_calls)
        ]
    finish = "tool_calls" if reply.kind == "tools" else "stop"
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": _usage(reply) or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }
