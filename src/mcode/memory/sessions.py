"""Session transcripts: append-only JSON Lines, the source of truth for recall memory.

One file per session under `.agentmemory/sessions/`: a header line, then one line per message. Each
line goes out in a single write and an fsync under an `flock`, so a crash loses at most the message
being written and two mcode processes never interleave half-lines. Nothing can rebuild these files,
so nothing here rewrites them; a torn line (a crash mid-write) is skipped with a warning on read.

A message is stored as `mcode.secrets.storable` allows: secret values redacted in every role's text
and in tool-call arguments, and the contents of a secret file the user agreed to share with the
model left out, so that neither a later session nor recall memory nor an export can read them.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcode.config.paths import ensure_private_dir
from mcode.fsio import (
    DEFAULT_LOCK_TIMEOUT,
    ReentrantFileLock,
    append_line,
    check,
    clock,
    read_bytes,
)
from mcode.secrets import redact, redact_data, storable

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"
LOCK_NAME = "sessions.lock"
LATEST = "latest"
TITLE_CHARS = 60
_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# What a resumed model is told about a tool call whose result never reached the transcript.
NO_RESULT = "No result: the session ended before this tool call finished."

Content = str | list[dict[str, Any]] | None


class SessionNotFound(LookupError):
    """No session matches the id the user gave; the message says what exists."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "session not found"


def content_text(content: Content) -> str:
    """The words of a message's content, whether a string or OpenAI's list of typed parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = [p.get("text", "") for p in content if isinstance(p, dict)]
    return "\n".join(p for p in parts if isinstance(p, str) and p)


def tool_calls_text(tool_calls: Sequence[dict[str, Any]] | None) -> str:
    """`name(arguments)` per call, so a search for a command finds the call that ran it."""
    lines = []
    for call in tool_calls or ():
        function = call.get("function") or {}
        lines.append(f"{function.get('name', '?')}({function.get('arguments', '')})")
    return "\n".join(lines)


def message_text(content: Content, tool_calls: Sequence[dict[str, Any]] | None) -> str:
    return "\n".join(t for t in (content_text(content), tool_calls_text(tool_calls)) if t)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message of a transcript, as written to its line."""

    id: str
    session_id: str
    time: datetime
    role: str
    content: Content
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        """What recall memory searches: the content and any tool calls."""
        return message_text(self.content, self.tool_calls)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "time": clock.iso(self.time),
            "role": self.role,
            "content": self.content,
            "tool_calls": self.tool_calls,
            "tool_call_id": self.tool_call_id,
            "name": self.name,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredMessage:
        """Raises KeyError, TypeError or ValueError for a line that is not a message."""
        if not isinstance(data["id"], str) or not isinstance(data["role"], str):
            raise TypeError("id and role must be strings")
        return cls(
            id=data["id"],
            session_id=str(data["session_id"]),
            time=clock.parse(data["time"]),
            role=data["role"],
            content=data.get("content"),
            tool_calls=data.get("tool_calls") or None,
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
        )

    def to_openai(self) -> dict[str, Any]:
        """The message as a chat-completions API takes it back."""
        message: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        if self.tool_call_id is not None:
            message["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            message["name"] = self.name
        return message


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    started: datetime
    updated: datetime
    title: str
    messages: int
    model: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started": clock.iso(self.started),
            "updated": clock.iso(self.updated),
            "title": self.title,
            "messages": self.messages,
            "model": self.model,
        }


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Every JSON object line of `path`; a damaged line is skipped with a warning, not fatal."""
    records = []
    for number, line in enumerate(read_bytes(path).split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            log.warning("%s:%d: skipped a damaged line (%s)", path, number, exc)
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            log.warning("%s:%d: skipped a line that is not a JSON object", path, number)
    return records


def dump_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)


def new_session_id() -> str:
    """Sorts by creation time and is short enough to type: `20250501-143012-a1b2c3`."""
    return f"{clock.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _check_message(message: dict[str, Any]) -> None:
    role = message.get("role")
    if not isinstance(role, str) or not role:
        raise ValueError(f"a message needs a role, got {role!r}")
    content = message.get("content")
    if content is not None and not isinstance(content, str | list):
        raise ValueError(f"message content must be text or a list of parts, got {content!r}")
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise ValueError("tool_calls must be a list of OpenAI tool calls")


def _storable_content(content: Content) -> Content:
    """A message's content as the transcript keeps it (see the module's docstring)."""
    if isinstance(content, str):
        return storable(content)
    if isinstance(content, list):
        return [
            {**part, "text": storable(part["text"])}
            if isinstance(part, dict) and isinstance(part.get("text"), str)
            else part
            for part in content
        ]
    return content


def _storable_calls(calls: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Tool calls with secret values redacted in their arguments (a file the model writes may
    hold a key); arguments that are JSON stay JSON."""
    if not calls:
        return None
    out = []
    for call in calls:
        function = call.get("function")
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if isinstance(arguments, str):
            call = {**call, "function": {**function, "arguments": _redacted_json(arguments)}}
        out.append(call)
    return out


def _redacted_json(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return redact(text)
    return json.dumps(redact_data(data), ensure_ascii=False)


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


class SessionLog:
    """The transcripts of one repository; every method reads the files afresh."""

    def __init__(self, sessions_dir: Path, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.dir = sessions_dir
        self.locked = ReentrantFileLock(sessions_dir / LOCK_NAME, lock_timeout)
        # Headers of sessions with no message yet: a session that never speaks leaves no file.
        self._pending: dict[str, dict[str, Any]] = {}

    def path(self, session_id: str) -> Path:
        if not _SESSION_ID.fullmatch(session_id):
            raise SessionNotFound(f"{session_id!r} is not a session id")
        return self.dir / f"{session_id}{SUFFIX}"

    def files(self) -> list[Path]:
        """Every transcript, most recently written first; a symlink is none of mcode's, and a
        symlinked directory is refused (UnsafePathError)."""
        if not check(self.dir).is_dir():
            return []
        found = [p for p in self.dir.glob(f"*{SUFFIX}") if p.is_file() and not p.is_symlink()]
        return sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True)

    # -- writing ---------------------------------------------------------------------------------

    def new_session(self, *, model: str = "", title: str = "") -> SessionInfo:
        session_id = new_session_id()
        started = clock.now()
        header = {"type": "session", "id": session_id, "started": clock.iso(started)}
        self._pending[session_id] = {**header, "model": model, "title": title}
        return SessionInfo(session_id, started, started, title, 0, model)

    def append(
        self, session_id: str, message: dict[str, Any], *, time: datetime | None = None
    ) -> StoredMessage:
        """Write one message (OpenAI shape: role, content, tool_calls, tool_call_id, name) durably."""
        _check_message(message)
        stored = StoredMessage(
            id=f"msg-{secrets.token_hex(8)}",
            session_id=session_id,
            time=clock.as_utc(time) if time else clock.now(),
            role=message["role"],
            content=_storable_content(message.get("content")),
            tool_calls=_storable_calls(message.get("tool_calls")),
            tool_call_id=message.get("tool_call_id"),
            name=message.get("name"),
        )
        path = self.path(session_id)
        line = dump_line(stored.to_json())
        with self.locked():
            if not path.exists():
                ensure_private_dir(self.dir)
                header = self._pending.get(session_id)
                if header is None:
                    raise SessionNotFound(f"no session {session_id!r}: start one with new_session")
                line = dump_line(header) + "\n" + line  # header and first message in one write
            append_line(path, line)
            self._pending.pop(session_id, None)
        return stored

    # -- reading ---------------------------------------------------------------------------------

    def sessions(self, limit: int | None = None) -> list[SessionInfo]:
        """Sessions with at least one message, most recently updated first."""
        infos = [self._info(p, read_json_lines(p)) for p in self.files()[:limit]]
        return sorted(infos, key=lambda info: info.updated, reverse=True)

    def latest(self) -> SessionInfo | None:
        found = self.sessions(limit=1)
        return found[0] if found else None

    def resolve(self, ref: str) -> str:
        """The session `ref` names: an id, a unique prefix of one, or "latest"."""
        ref = ref.strip()
        if ref == LATEST:
            latest = self.latest()
            if latest is None:
                raise SessionNotFound(f"there are no sessions in {self.dir} yet")
            return latest.id
        if _SESSION_ID.fullmatch(ref) and self.path(ref).is_file():
            return ref
        ids = [p.name.removesuffix(SUFFIX) for p in self.files()]
        matches = [i for i in ids if ref and i.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise SessionNotFound(f"session id {ref!r} is ambiguous: {', '.join(matches[:5])}")
        recent = ", ".join(ids[:5]) or "none yet"
        raise SessionNotFound(f"no session {ref!r}; the most recent are: {recent}")

    def load(self, ref: str) -> list[StoredMessage]:
        """The messages of a session (by id, unique prefix or "latest"), oldest first."""
        return messages_of(self.path(self.resolve(ref)))

    def info(self, ref: str) -> SessionInfo:
        path = self.path(self.resolve(ref))
        return self._info(path, read_json_lines(path))

    def resume(self, ref: str = LATEST) -> tuple[SessionInfo, list[dict[str, Any]]]:
        """A session to continue appending to, and its messages ready to send to the model."""
        path = self.path(self.resolve(ref))
        records = read_json_lines(path)
        return self._info(path, records), for_model(_messages(path, records))

    def _info(self, path: Path, records: list[dict[str, Any]]) -> SessionInfo:
        header = records[0] if records and records[0].get("type") == "session" else {}
        messages = _messages(path, records)
        session_id = path.name.removesuffix(SUFFIX)
        started = _header_time(header) or (messages[0].time if messages else None)
        if started is None:
            started = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        updated = max((m.time for m in messages), default=started)
        title = str(header.get("title") or "")
        if not title:
            first = next((m.text for m in messages if m.role == "user" and m.text.strip()), "")
            title = _title(first)
        return SessionInfo(
            session_id, started, updated, title, len(messages), str(header.get("model") or "")
        )


def _header_time(header: dict[str, Any]) -> datetime | None:
    try:
        return clock.parse(header["started"])
    except (KeyError, TypeError, ValueError):
        return None


def _messages(path: Path, records: list[dict[str, Any]]) -> list[StoredMessage]:
    messages = []
    for record in records:
        if record.get("type") == "session":
            continue
        try:
            messages.append(StoredMessage.from_json(record))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("%s: skipped a line that is not a message (%s)", path, exc)
    return messages


def messages_of(path: Path) -> list[StoredMessage]:
    """The messages of one transcript file, oldest first."""
    return _messages(path, read_json_lines(path))


def for_model(messages: Sequence[StoredMessage]) -> list[dict[str, Any]]:
    """The transcript as a chat API accepts it back: every tool call answered, no stray results.

    A crash between a tool call and its result would otherwise make the resumed session fail on
    its first request.
    """
    out: list[dict[str, Any]] = []
    open_calls: list[str] = []

    def close_open() -> None:
        for call_id in open_calls:
            out.append({"role": "tool", "tool_call_id": call_id, "content": NO_RESULT})
        open_calls.clear()

    for message in messages:
        if message.role == "tool":
            if message.tool_call_id in open_calls:
                open_calls.remove(message.tool_call_id)
                out.append(message.to_openai())
            continue
        close_open()
        out.append(message.to_openai())
        open_calls.extend(str(c.get("id")) for c in message.tool_calls or () if c.get("id"))
    close_open()
    return out
