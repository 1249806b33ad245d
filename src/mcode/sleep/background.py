"""Consolidation of core memory while a session runs: every `sleep_consolidate_every` turns, and
once more when the session ends, on a thread of its own, so that no turn waits for it.

The REPL and `mcode -p` say when a turn ended (`turn_ended`) and when a session ended
(`session_ended`); this runs `consolidate` over what that session said since its last mark (the
mark is the sleep log's), under the sleep-pass lock (skipped while `mcode sleep` or `mcode watch`
runs a pass, or while the user edits one of the blocks with `mcode memory edit`), within the
day's and a pass's token caps, and logs a `memory` line to the sleep log. What it changed, or why
it could not run, waits in `reports()` for the owner to show between turns: nothing here prints,
and no error leaves the thread. At exit the owner `finish`es, waiting a bounded time; a run given
up then leaves no half-written block (each edit is atomic) and no mark, so the next consolidation
of that session (resumed, or `mcode sleep`) reads its turns again.

The owner calls `turn_ended`, `session_ended` and `finish` from one thread (its main one).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from mcode.agent.llm import ModelClient
from mcode.config import Settings
from mcode.fsio import read_json_lines
from mcode.memory import BlockStore
from mcode.sleep.consolidate import LABELS, Consolidation, consolidate
from mcode.sleep.costs import MEMORY, log_event
from mcode.sleep.model import NoSleepModel, choose_model, make_client
from mcode.sleep.run import ClientFactory, PassOptions, budget_for
from mcode.store import IndexLock, IndexLockedError

PURPOSE = "a session's memory consolidation"
NOT_DUE = "not due"
FINISH_QUIETLY_SECONDS = 0.2  # a run that ends within this at exit is not announced
FINISH_SECONDS = 60.0  # the longest wait at exit


@dataclass(frozen=True, slots=True)
class MemoryReport:
    """One line for the user; `quiet` (shown dim) unless it says what changed in memory."""

    text: str
    quiet: bool = False


class BackgroundConsolidation:
    """One session owner's background consolidations, one at a time. Inert without a
    `sleep_model` or with `sleep_consolidate_every = 0`."""

    def __init__(self, settings: Settings, *, client_factory: ClientFactory = make_client) -> None:
        self.settings = settings
        self.enabled = bool(settings.sleep_model) and settings.sleep_consolidate_every > 0
        self._factory = client_factory
        self._client: ModelClient | None = None
        self._session = ""
        self._turns = 0  # turns of `_session` since the last consolidation started
        self._thread: threading.Thread | None = None
        self._reports: list[MemoryReport] = []
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def turn_ended(self, session_id: str) -> None:
        """A turn of `session_id` ended: start a consolidation once enough turns have; one
        already running puts it off to the next turn."""
        if not self.enabled:
            return
        if session_id != self._session:
            self._session, self._turns = session_id, 0
        self._turns += 1
        if self._turns >= self.settings.sleep_consolidate_every and not self.running:
            self._turns = 0
            self._start(session_id, self.settings.sleep_consolidate_every)

    def session_ended(self, session_id: str) -> None:
        """`session_id` ended (the user left, /clear, /resume): consolidate whatever it said
        since the last mark, after the run under way."""
        if not self.enabled:
            return
        if session_id == self._session:
            self._turns = 0
        self._start(session_id, 1)

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the run under way; whether none is left. A
        KeyboardInterrupt reaches the caller (the user skips it)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def finish(self, say: Callable[[MemoryReport], None], timeout: float = FINISH_SECONDS) -> None:
        """At exit: wait up to `timeout` seconds for the runs under way, saying so when it takes
        a moment, then `say` what they did. Ctrl-C skips the wait (the thread dies with the
        process; nothing is half-written)."""
        if not self.wait(FINISH_QUIETLY_SECONDS):
            say(MemoryReport("consolidating memory… (Ctrl-C to skip)", quiet=True))
            try:
                if not self.wait(timeout):
                    late = f"memory consolidation unfinished after {timeout:g} s: left"
                    say(MemoryReport(late, quiet=True))
            except KeyboardInterrupt:
                say(MemoryReport("memory consolidation skipped", quiet=True))
                return
        for report in self.reports():
            say(report)

    def reports(self) -> list[MemoryReport]:
        """What finished runs have to say, oldest first, each once."""
        with self._lock:
            reports, self._reports = self._reports, []
        return reports

    def _start(self, session_id: str, every: int) -> None:
        before = self._thread

        def work() -> None:
            if before is not None:
                before.join()
            report = self._run(session_id, every)
            if report is not None:
                with self._lock:
                    self._reports.append(report)

        self._thread = threading.Thread(target=work, name="mcode-consolidate", daemon=True)
        self._thread.start()

    def _run(self, session_id: str, every: int) -> MemoryReport | None:
        try:
            result = self._consolidate(session_id, every)
        except NoSleepModel as exc:
            self.enabled = False  # no key: saying so once is enough
            return MemoryReport(f"memory consolidation is off: {exc}", quiet=True)
        except Exception as exc:  # a bug here must not cost the session anything
            result = Consolidation(session=session_id, skipped=f"{type(exc).__name__}: {exc}")
        if result.skipped == NOT_DUE:
            return None
        try:
            log_event(
                self.settings.paths.sleep_log,
                MEMORY,
                session=session_id,
                applied=result.applied,
                proposals=len(result.proposals),
                refused=result.refused,
                tokens=result.tokens,
                skipped=result.skipped,
            )
        except OSError as exc:
            result.skipped = result.skipped or f"cannot write the sleep log: {exc}"
        return report_for(result)

    def _consolidate(self, session_id: str, every: int) -> Consolidation:
        settings = self.settings
        choice = choose_model(settings)
        blocks = BlockStore.for_paths(settings.paths)
        editing = [label for label in LABELS if blocks.being_edited(label)]
        if editing:
            return Consolidation(
                session=session_id, skipped=f"the {editing[0]} block is being edited"
            )
        if self._client is None:
            self._client = self._factory(settings, choice)
        try:
            with IndexLock(settings.paths.sleep_lock, PURPOSE):
                budget = budget_for(settings, PassOptions())
                entries = read_json_lines(settings.paths.sleep_log)
                return consolidate(
                    settings,
                    self._client,
                    choice.model,
                    budget,
                    entries,
                    session=session_id,
                    every=every,
                )
        except IndexLockedError as exc:
            return Consolidation(session=session_id, skipped=f"{exc.holder} is running")


def report_for(result: Consolidation) -> MemoryReport | None:
    """The line a user sees for a finished run: what changed in memory, or why nothing could be
    done; None when the model had nothing to record."""
    if result.skipped:
        return MemoryReport(f"memory not consolidated: {result.skipped}", quiet=True)
    parts = [f"{label} {_lines(*counts)}" for label, counts in result.lines.items()]
    if result.proposals:
        n = len(result.proposals)
        parts.append(f"{n} proposed change{'s' if n > 1 else ''} to your lines")
    if not parts:
        return None
    text = f"memory: {', '.join(parts)} (sleep) — /memory to see"
    if result.applied:
        text += ", mcode memory revert to undo"
    if result.proposals:
        text += ", mcode sleep --status for proposals"
    return MemoryReport(text)


def _lines(added: int, removed: int) -> str:
    changes = [f"+{added}"] if added else []
    changes += [f"−{removed}"] if removed else []
    plural = "s" if max(added, removed) != 1 else ""
    return f"{' '.join(changes) or '±0'} line{plural}"
