"""An agent session: one conversation in one repository, with its memory, tools and undo stack.

`AgentSession.open` is the composition root of the agent (the model client, the stores, the index,
the tools); everything it builds is handed to the constructor, so a test can hand in its own client.
Each user turn builds its context from core memory, the project's instructions, a repo map slice
and code retrieved for the turn, then runs the step loop (`loop.AgentLoop`). The REPL and headless
mode both drive a session through this small surface.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from mcode.agent.events import Event, Notice, ToolStarted, TurnFinished, TurnResult, add_usage
from mcode.agent.hooks import (
    LESSONS,
    CorrectionReminder,
    FailureNudge,
    IndexEdits,
    LessonNotices,
    UndoReminders,
)
from mcode.agent.llm import (
    DEFAULT_CONTEXT_WINDOW,
    DEFAULT_MAX_OUTPUT_TOKENS,
    LiteLLMClient,
    LLMError,
    ModelClient,
    model_info,
    warm_up,
)
from mcode.agent.loop import AgentLoop, Message
from mcode.agent.messages import Usage
from mcode.agent.providers import (
    ModelChoice,
    api_base_for,
    api_key_for,
    require_key,
    resolve_model,
)
from mcode.config import Settings, ensure_memory_dir, ensure_private_dir
from mcode.context import (
    ContextBudget,
    ContextOverflowError,
    Environment,
    InstructionFile,
    LLMSummarizer,
    MemoryStats,
    MessageWindow,
    PromptInputs,
    SystemPromptBuilder,
    build_context,
    read_project_instructions,
)
from mcode.memory import Block, BlockStore, BrokenBlock
from mcode.memory.archival import MergedArchival
from mcode.memory.recall import NotesStore, RecallStore
from mcode.memory.sessions import SessionLog
from mcode.retrieval.hits import SearchHit
from mcode.retrieval.live import LiveIndex
from mcode.retrieval.workspace import CodeIndex, Count
from mcode.secrets import is_secret_path
from mcode.store import check_index_dir
from mcode.tools import (
    AskCallback,
    CommitCheck,
    FileUndo,
    MemoryAccess,
    Permissions,
    RepoAccess,
    Toolbox,
    TurnCheckpoint,
    builtin_tools,
)
from mcode.vcs import current_branch

DEFAULT_MAX_STEPS = 40
SNIPPETS_PER_TURN = 6
MAX_FOCUS_FILES = 12
# A turn that starts before an index already on disk is open waits this long for it (~1 s).
INDEX_OPEN_SECONDS = 10.0


@dataclass(frozen=True)
class SessionStatus:
    session_id: str
    model: str
    session_tokens: int
    session_cost_usd: float
    index: str  # "indexing 1,240/6,300 files", "vectors 12%", "indexed 3 min ago, up to date"
    permission_mode: str = "ask"
    turns: int = 0

    def render(self) -> str:
        return (
            f"{self.model} · {self.session_tokens:,} tokens · ${self.session_cost_usd:.4f} · "
            f"{self.index} · {self.permission_mode} · session {self.session_id}"
        )


@dataclass
class SessionMemory:
    """Core memory (blocks), recall memory (every message) and archival notes of one repository."""

    blocks: BlockStore
    log: SessionLog
    recall: RecallStore
    notes: NotesStore

    @classmethod
    def open(cls, settings: Settings, embedder: Any) -> SessionMemory:
        paths = settings.paths
        ensure_memory_dir(paths.memory)
        blocks = BlockStore.for_paths(paths)
        blocks.ensure_defaults()
        check_index_dir(paths.index)  # the recall tables live there
        ensure_private_dir(paths.index)
        log = SessionLog(paths.sessions)
        recall = RecallStore(log, paths.recall_index, embedder)
        notes = NotesStore(paths.notes_file, paths.recall_index, embedder)
        return cls(blocks, log, recall, notes)


def _serialised(ask: AskCallback | None) -> AskCallback | None:
    """Read-only tools may run on worker threads; the user still gets one question at a time."""
    if ask is None:
        return None
    lock = threading.Lock()

    def asking(request: Any) -> Any:
        with lock:
            return ask(request)

    return asking


def _retry_notice(on_event: Callable[[Event], None]) -> Callable[[LLMError, float, int, int], None]:
    def notify(error: LLMError, seconds: float, attempt: int, attempts: int) -> None:
        on_event(Notice(f"{error}; retrying in {seconds:g}s (attempt {attempt} of {attempts})"))

    return notify


def make_client(
    settings: Settings,
    choice: ModelChoice,
    on_event: Callable[[Event], None],
    cancel: threading.Event | None = None,
) -> LiteLLMClient:
    """The session's client: its retries told to the user, its requests given up on `cancel`."""
    return LiteLLMClient(
        choice.model,
        api_base=choice.api_base,
        api_key=choice.api_key,
        fallbacks=settings.fallbacks,
        timeout=settings.first_token_timeout,
        connect_timeout=settings.connect_timeout,
        on_retry=_retry_notice(on_event),
        cancel=cancel,
    )


def _warm_up(model: str) -> None:
    warm_up()
    model_info(model)


def _budget(model: str) -> ContextBudget:
    info = model_info(model)
    return ContextBudget.for_window(info.context_window, info.max_output_tokens)


def _provisional_budget() -> ContextBudget:
    """Until the first request: the model's real window needs litellm, whose import (seconds)
    should not delay opening a session."""
    return ContextBudget.for_window(DEFAULT_CONTEXT_WINDOW, DEFAULT_MAX_OUTPUT_TOKENS)


def _resumable(message: Message) -> Message:
    """A message from the transcript as the window holds it: a tool result's `name` is for
    recall's search, and not every provider accepts it back."""
    if message.get("role") == "tool" and "name" in message:
        return {k: v for k, v in message.items() if k != "name"}
    return message


class AgentSession:
    """One conversation. Not thread-safe, except `cancel`, which any thread may call."""

    def __init__(
        self,
        settings: Settings,
        choice: ModelChoice,
        client: ModelClient,
        *,
        memory: SessionMemory,
        index: LiveIndex,
        repo: RepoAccess,
        session_id: str,
        history: Sequence[Message] = (),
        weak_client: Any = None,
        on_event: Callable[[Event], None] = lambda event: None,
        owns_index: bool = False,
        cancel: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.model = choice.model
        self.session_id = session_id
        self.memory = memory
        self.index = index
        self._owns_index = owns_index
        self.repo = repo
        self._on_event = on_event
        # set by `cancel`: the client gives up its request, a shell command is stopped
        self._cancel = cancel or threading.Event()
        repo.cancel = self._cancel
        self._undo: list[TurnCheckpoint] = []
        self._touched: dict[str, None] = {}  # files the session has worked on, oldest first
        self._undo_reminders = UndoReminders()
        self._usage = Usage()
        self._turns = 0
        self._query = ""
        self._snippets: list[SearchHit] = []
        self._instructions: list[InstructionFile] = []
        self._noticed: set[str] = set()
        self._stats = MemoryStats()
        self._environment: Environment | None = None
        self._maps: dict[tuple[int, tuple[str, ...]], str] = {}
        self._record_failed = False
        self._closed = False
        self._budget_ready = False
        budget = _provisional_budget()
        self.builder = SystemPromptBuilder(budget)
        self.window = MessageWindow(budget, LLMSummarizer(weak_client or client))
        self.window.extend(_resumable(m) for m in history)
        archival = MergedArchival(memory.notes, index, hidden=self._hidden)
        memory_access = MemoryAccess(memory.blocks, archival, memory.recall, actor="agent")
        self.toolbox = Toolbox(builtin_tools(), repo, memory_access)
        self.loop = AgentLoop(
            client,
            self.toolbox,
            self.window,
            request=self._request,
            record=self._record,
            emit=self._emit,
            cancel=self._cancel,
            hooks=[
                self._undo_reminders,
                CorrectionReminder(),
                FailureNudge(),
                LessonNotices(self._emit),
                IndexEdits(index.sync),
            ],
        )

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        model: str | None = None,
        permission_mode: str = "ask",
        allow: Sequence[str] = (),
        deny: Sequence[str] = (),
        ask: AskCallback | None = None,
        on_event: Callable[[Event], None] = lambda event: None,
        resume: str | None = None,
        client: ModelClient | None = None,
        index: LiveIndex | None = None,
        commit_check: CommitCheck | None = None,
    ) -> AgentSession:
        """Open a new session (or resume one: an id, a unique prefix, or "latest"). `commit_check`
        reviews what the agent's commits would take (`mcode.review.commit_check`).

        `index` is the code index of a process that runs several sessions in turn (the REPL) or
        finishes it itself (headless); without one, the session keeps its own and closes it.
        Raises NoModelError when there is no model to use (NoKeyError: no key for it), ValueError
        for a bad permission mode or rule, SessionNotFound for a session that does not exist.
        """
        permissions = Permissions.from_settings(permission_mode, allow, deny)
        if client is not None:
            name = model or settings.model or str(getattr(client, "model", "") or "scripted")
            choice = ModelChoice(name, "injected")
        else:
            choice = resolve_model(settings, flag=model)
            require_key(settings, choice)
        for warning in settings.warnings:
            on_event(Notice(warning))
        if choice.note:
            on_event(Notice(choice.note))
        owns_index = index is None
        if index is None:
            index = LiveIndex.open(settings, lambda text: on_event(Notice(text)))
        try:
            memory = SessionMemory.open(settings, index.embedder)
            if resume:
                info, history = memory.log.resume(resume)
            else:
                info, history = memory.log.new_session(model=choice.model), []
        except BaseException:
            if owns_index:
                index.close()
            raise
        cancel = threading.Event()
        if client is None:
            client = make_client(settings, choice, on_event, cancel)
        weak_client = None
        if settings.weak_model and settings.weak_model != choice.model:
            weak_choice = ModelChoice(
                settings.weak_model,
                settings.sources.get("weak_model", "settings"),
                api_base_for(settings, settings.weak_model),
                api_key_for(settings, settings.weak_model),
            )
            weak_client = make_client(settings, weak_choice, on_event, cancel)
        repo = RepoAccess(
            settings.paths.repo,
            permissions,
            ask=_serialised(ask),
            searcher=index,
            commit_check=commit_check,
        )
        return cls(
            settings,
            choice,
            client,
            memory=memory,
            index=index,
            repo=repo,
            session_id=info.id,
            history=history,
            weak_client=weak_client,
            on_event=on_event,
            owns_index=owns_index,
            cancel=cancel,
        )

    # -- what the REPL and headless mode see -------------------------------------------------------

    @property
    def tools(self) -> list[str]:
        return self.toolbox.names()

    @property
    def permissions(self) -> Permissions:
        return self.repo.permissions

    @property
    def code(self) -> CodeIndex | None:
        """The code index once there is one to search (the session builds it meanwhile)."""
        return self.index.code

    @property
    def usage(self) -> Usage:
        """Tokens and cost of the whole session so far."""
        return self._usage

    def run_turn(self, user_text: str, *, max_steps: int | None = None) -> TurnResult:
        self._cancel.clear()
        checkpoint = TurnCheckpoint()
        self.repo.recorder = checkpoint
        result = TurnResult("", "cancelled")
        try:
            self._prepare_turn(user_text)
            result = self.loop.run(user_text, max_steps=max_steps or DEFAULT_MAX_STEPS)
        except KeyboardInterrupt:
            result = TurnResult("", "cancelled")
        except Exception as exc:  # a bug must cost the user a turn, not the session
            result = TurnResult("", "error", error=f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self.repo.recorder = None
            if len(checkpoint):
                checkpoint.seal()  # what the turn left, however it ended
                self._undo.append(checkpoint)
            self._usage = add_usage(self._usage, result.usage)
            self._turns += 1
            self._emit(
                TurnFinished(
                    result.usage,
                    result.cost,
                    self._usage.total_tokens,
                    self._usage.cost_usd,
                    result.stop_reason,
                )
            )
        return result

    def cancel(self) -> None:
        self._cancel.set()

    def undo(self) -> list[FileUndo]:
        """Undo the last file-changing turn without losing the user's later edits (see
        `TurnCheckpoint.undo`): what happened to each file it changed; empty when none did."""
        if not self._undo:
            return []
        results = self._undo.pop().undo(self.settings.paths.repo)
        back = [r.path for r in results if r.reverted]
        kept = [r.path for r in results if not r.reverted]
        if results:
            self._undo_reminders.undone(back, kept)
        return results

    def switch_model(self, name: str) -> None:
        """Use another model from the next request on; the conversation carries over."""
        name = name.strip()
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"invalid model name {name!r}: write provider/model")
        choice = ModelChoice(
            name, "switched", api_base_for(self.settings, name), api_key_for(self.settings, name)
        )
        client = make_client(self.settings, choice, self._on_event, self._cancel)
        self.loop.client = client
        self._budget_ready = False
        if not self.settings.weak_model:
            self.window.summarizer = LLMSummarizer(client)
        self.model = name

    def warm_up(self) -> None:
        """Import litellm on a background thread now, so the first turn starts sooner (for the
        REPL, while the user types). Not a daemon: one stopped at exit in the middle of an import
        would hold the module's lock, and the exit would hang on it."""
        threading.Thread(target=_warm_up, args=(self.model,), name="mcode-warm-up").start()

    def context_report(self) -> str:
        self._ensure_budget()
        try:
            inputs = self._inputs()
            prompt = self.builder.build(inputs, self.window.history_tokens(), len(self.window))
        except ContextOverflowError as exc:
            return f"the context does not fit: {exc}"
        return prompt.report.render()

    def compact(self) -> str:
        """Summarise the conversation before the latest turn now (the REPL's /compact)."""
        self._cancel.clear()  # a cancel of the last turn is not one of this
        self._ensure_budget()
        try:
            core = self.builder.core_tokens(self._inputs())
        except ContextOverflowError:
            core = 0
        eviction = self.window.compact(core)
        if eviction is None:
            return "Nothing to compact yet: there is no earlier turn to summarise."
        head = (
            f"Summarised {eviction.evicted} messages: the conversation went from "
            f"{eviction.tokens_before:,} to {eviction.tokens_after:,} tokens."
        )
        if eviction.error:
            head += f" The summariser failed ({eviction.error}); the messages stay in recall."
        return f"{head}\n\n{self.window.summary}"

    def remember(self, text: str) -> None:
        """Add a line to the lessons block, as the user (BlockStoreError if it would not fit)."""
        self.memory.blocks.append(LESSONS, text, actor="user", reason="/remember")

    def status(self) -> SessionStatus:
        return SessionStatus(
            self.session_id,
            self.model,
            self._usage.total_tokens,
            self._usage.cost_usd,
            self.index.status(),
            self.repo.permissions.mode,
            self._turns,
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_index:
            self.index.close()

    def __enter__(self) -> AgentSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building each request ----------------------------------------------------------------------

    def _prepare_turn(self, user_text: str) -> None:
        """What stays the same for every request of a turn: the query, its snippets, the files."""
        self._query = user_text
        self._maps = {}
        repo = self.settings.paths.repo
        self._instructions = read_project_instructions(repo, on_skip=self._notice_once)
        self.index.wait_opened(INDEX_OPEN_SECONDS)
        self._snippets = self._retrieve(user_text)
        self._environment = Environment(date.today(), str(repo), current_branch(repo))
        code = self.code
        self._stats = MemoryStats.collect(
            recall_messages=self.memory.recall,
            recall_sessions=Count(lambda: len(self.memory.log.files())),
            archival_notes=self.memory.notes,
            code_chunks=code.chunks if code else Count(lambda: 0),
            code_files=code.files if code else None,
        )

    def _retrieve(self, query: str) -> list[SearchHit]:
        code = self.code
        if code is None or not query.strip():
            return []
        try:
            hits = code.search(query, SNIPPETS_PER_TURN, "symbol")
        except Exception as exc:  # retrieval is a help; its failure must not stop the turn
            self._emit(Notice(f"code retrieval failed ({exc}); continuing without it"))
            return []
        return [h for h in hits if not self._hidden(h.path)]

    def _inputs(self) -> PromptInputs:
        entries = self.memory.blocks.entries()  # fresh: the agent may have edited them
        return PromptInputs(
            blocks=[e for e in entries if isinstance(e, Block)],
            broken_blocks=[e for e in entries if isinstance(e, BrokenBlock)],
            stats=self._stats,
            environment=self._environment,
            project_instructions=self._instructions,
            repo_map=self._repo_map if self.code is not None else None,
            snippets=self._snippets,
            tools=self.toolbox.schemas(),
        )

    def _repo_map(self, tokens: int) -> str:
        focus = tuple(list(self._touched)[-MAX_FOCUS_FILES:])
        key = (tokens, focus)
        if key not in self._maps and self.code is not None:
            try:
                self._maps[key] = self.code.repo_map(tokens, focus=focus, query=self._query)
            except Exception as exc:
                self._emit(Notice(f"the repo map failed ({exc}); continuing without it"))
                self._maps[key] = ""
        return self._maps.get(key, "")

    def _ensure_budget(self) -> None:
        if not self._budget_ready:
            budget = _budget(self.model)
            self.builder.budget = budget
            self.window.budget = budget
            self._budget_ready = True

    def _request(self) -> list[Message]:
        self._ensure_budget()
        before = len(self.window.evictions)
        context = build_context(self.builder, self.window, self._inputs())
        for eviction in self.window.evictions[before:]:
            text = (
                f"summarised {eviction.evicted} older messages to stay within the context window "
                f"({eviction.tokens_before:,} → {eviction.tokens_after:,} tokens); they remain "
                "searchable"
            )
            if eviction.error:
                text += f" (the summariser failed: {eviction.error})"
            self._emit(Notice(text))
        return context.messages

    def _record(self, message: Message) -> None:
        try:
            self.memory.recall.record(self.session_id, message)
        except Exception as exc:
            if not self._record_failed:
                self._record_failed = True
                self._emit(Notice(f"could not save the conversation to recall memory: {exc}"))

    def _notice_once(self, text: str) -> None:
        """Tell the user once per session, not once per turn."""
        if text not in self._noticed:
            self._noticed.add(text)
            self._emit(Notice(text))

    def _emit(self, event: Event) -> None:
        if isinstance(event, ToolStarted):
            self._touch(event)
        self._on_event(event)

    def _touch(self, event: ToolStarted) -> None:
        """Keep the file a tool call names (its `path_arg`) in the repo map's focus."""
        tool = self.toolbox.lookup(event.name)
        path = event.arguments.get(tool.path_arg) if tool and tool.path_arg else None
        if isinstance(path, str) and path.strip():
            self._touched.pop(path, None)
            self._touched[path] = None

    def _hidden(self, path: str) -> bool:
        return is_secret_path(path) or self.repo.permissions.denies_read(path)
