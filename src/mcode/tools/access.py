"""What a tool may reach: the access objects handed to tools, and how a tool asks the user.

A tool never receives the agent. Its first parameter names one of two access objects, and the
toolbox passes the session's: `RepoAccess` for tools that work on the repository (its root, the
session's permissions, a callback to ask the user, one to stream shell output, the code searcher
when the repository is indexed, a recorder that hears about every file before it is overwritten,
for `/undo`, and the review a commit must pass), or `MemoryAccess` for tools that work on the
agent's memory (the block store, the archival and recall handles, and who is acting, for the
blocks' history).

They are called access objects, not contexts: in mcode "context" is what the model sees
(`mcode.context`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from mcode.memory.blocks import BlockStore
from mcode.retrieval.hits import CodeSearcher
from mcode.tools.base import ToolError
from mcode.tools.permissions import Permissions

Answer = Literal["yes", "no", "always"]
RequestKind = Literal["edit", "shell", "secret", "read"]


class ArchivalMemory(Protocol):
    """Long-term passages the agent files away and searches on demand."""

    def insert(self, content: str, tags: list[str]) -> str:
        """Store a passage; its id."""
        ...

    def search(self, query: str, tags: list[str] | None, k: int) -> list[dict[str, Any]]:
        """The best `k` passages for `query`, restricted to `tags` when given; best first."""
        ...


class RecallMemory(Protocol):
    """Every message of every session, searchable after it has left the context window."""

    def search(
        self,
        query: str,
        roles: list[str] | None,
        limit: int,
        start_date: datetime | None,
        end_date: datetime | None,
    ) -> list[dict[str, Any]]:
        """Matching messages, best first; dates are timezone-aware and inclusive."""
        ...


@dataclass(frozen=True, slots=True)
class MemoryAccess:
    """Everything a memory tool may touch, and who is calling (recorded in block history)."""

    blocks: BlockStore
    archival: ArchivalMemory | None = None
    recall: RecallMemory | None = None
    actor: str = "agent"


@dataclass(frozen=True, slots=True)
class Request:
    """A question for the user: `summary` is one line, `detail` the diff or the command to show."""

    kind: RequestKind
    summary: str
    detail: str
    tool: str = ""
    always: tuple[str, ...] = ()  # the rules that answering "always" adds


AskCallback = Callable[[Request], Answer]
OutputCallback = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class CommitVerdict:
    """What the review said of a commit before it is made: `blocked` when a finding must stop it;
    `text` the findings as the model reads them ("" when there are none)."""

    blocked: bool
    text: str = ""


# Reviews what a commit would take: of these paths, of every change (`everything`), or (neither)
# of what is staged. The session installs `mcode review`'s; tools cannot import it themselves.
CommitCheck = Callable[[Sequence[str], bool], CommitVerdict]


class FileChangeRecorder(Protocol):
    def before_write(self, path: Path, previous: bytes | None) -> None:
        """Hear a file's content (None: it did not exist) just before a tool changes it."""
        ...


class PermissionDenied(ToolError):
    """A call the permission mode, a rule or the user refused (headless mode lists them);
    `kind` is what was asked for."""

    def __init__(self, message: str, kind: RequestKind) -> None:
        super().__init__(message)
        self.kind = kind


def _discard(line: str) -> None:
    pass


@dataclass(slots=True)
class RepoAccess:
    """Everything a repository tool may touch. `ask` is None when nobody can answer (headless)."""

    root: Path
    permissions: Permissions = field(default_factory=Permissions)
    ask: AskCallback | None = None
    on_output: OutputCallback = _discard
    searcher: CodeSearcher | None = None
    recorder: FileChangeRecorder | None = None
    commit_check: CommitCheck | None = None
    # set when the user cancels the turn: a running command is stopped
    cancel: threading.Event | None = None

    def authorize(
        self,
        tool: str,
        subject: Mapping[str, Any],
        *,
        kind: RequestKind,
        action: str,
        summary: str,
        detail: str,
    ) -> bool:
        """Return when the call may go ahead (True when the user was asked, and so saw `detail`);
        otherwise a PermissionDenied the model reads.

        `action` completes "the user denied …", e.g. "running `make`" or "the edit to a.py".
        """
        decision = self.permissions.check(tool, subject)
        if decision.behavior == "allow":
            return False
        if decision.behavior == "deny":
            raise PermissionDenied(
                f"{_capital(action)} is denied by the permission rule {decision.rule}; nothing "
                "was done. Do not try to reach the same result another way; ask the user.",
                kind,
            )
        if self.ask is None:
            raise PermissionDenied(
                f"{_capital(action)} needs the user's approval ({decision.reason}), and this "
                "session cannot ask; nothing was done. Tell the user what you wanted to do.",
                kind,
            )
        # an ask rule asks every time, so "always" is not offered against it
        always = () if decision.rule else tuple(self.permissions.always_rules(tool, subject))
        answer = self.ask(Request(kind, summary, detail, tool, always))
        if answer == "always":
            self.permissions.remember(always)
            return True
        if answer != "yes":
            raise PermissionDenied(
                f"the user denied {action}; nothing was done. Ask the user how to proceed "
                "instead of working around it.",
                kind,
            )
        return True


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
