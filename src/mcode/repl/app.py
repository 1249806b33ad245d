"""The interactive REPL: a prompt-toolkit prompt, a status line, and turns run on a worker thread.

The terminal belongs to this (the main) thread. A turn runs on a worker thread and talks back
through one queue: its events, and its questions for the user (a `Question` the worker waits on).
The main thread draws the events and asks the questions, so Ctrl-C, which Python delivers to the
main thread, cancels the running turn (`session.cancel()`) instead of ending the program: the model
request in flight is given up and a running command stopped, so the prompt comes back at once. If
the turn still does not end, a second Ctrl-C leaves mcode; so does Ctrl-D while a turn runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import select
import signal
import sys
import termios
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prompt_toolkit import PromptSession
from prompt_toolkit.filters import has_focus
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys
from rich.console import Console
from rich.text import Text

from mcode.agent.events import Event, TurnResult
from mcode.config import ConfigError, Settings
from mcode.repl.commands import (
    CommandContext,
    Exit,
    ReplSession,
    Submit,
    command_help,
    run_command,
)
from mcode.repl.completion import ReplCompleter, RepoFiles, attach_mentions
from mcode.repl.permissions import ReadLine, ask_user
from mcode.repl.render import Renderer
from mcode.repl.trust import confirm_trust
from mcode.tools import Answer, Request

if TYPE_CHECKING:
    from mcode.agent.session import AgentSession
    from mcode.retrieval.live import LiveIndex
    from mcode.sleep.background import BackgroundConsolidation, MemoryReport
    from mcode.sleep.trigger import QuietTrigger

log = logging.getLogger(__name__)

PROMPT = "❯ "
CONTINUATION = "  "
# Beside the user blocks; "history" there is their change log, a directory.
HISTORY_FILE = "repl-history"
POLL_SECONDS = 0.1
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # Ctrl-C before the REPL was up, as a shell reports SIGINT
LEAVE_SECONDS = 1.0  # how long leaving waits for the cancelled turn to write its last messages


@dataclass
class Question:
    """A permission request from the worker thread; it waits on `done` for `answer`."""

    request: Request
    answer: Answer = "no"
    done: threading.Event = field(default_factory=threading.Event)


class _Finished:
    """Put on the queue after the turn's last event."""


class Leave(Exception):
    """The user asked to leave while a turn ran (Ctrl-D, or Ctrl-C twice); `code` is the exit
    code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def eof_typed(fd: int) -> bool:
    """Whether Ctrl-D was typed on an empty line of the terminal `fd` (in its line mode, a read
    then returns nothing); consumes it. A line typed ahead is left for the next prompt."""
    try:
        if not select.select([fd], [], [], 0)[0]:
            return False
        waiting = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
        if int.from_bytes(waiting, sys.byteorder):
            return False
        return os.read(fd, 1) == b""
    except OSError:
        return False


class _Presses:
    """Ctrl-C presses while a turn runs, counted by a SIGINT handler. Counting, rather than the
    KeyboardInterrupt Python raises by default, means a press never lands inside drawing or inside
    a lock held by the queue, which could leave either half-done; the loop reads the count at its
    next poll. While the user answers a question the handler raises as usual, so the prompt can
    be left with Ctrl-C."""

    def __init__(self) -> None:
        self.pressed = 0
        self.seen = 0
        self.raising = False

    def __call__(self, signum: int, frame: object) -> None:
        if self.raising:
            raise KeyboardInterrupt
        self.pressed += 1

    def take(self) -> bool:
        """True once per press not yet handled."""
        if self.seen < self.pressed:
            self.seen += 1
            return True
        return False

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        self.pressed = self.seen = 0
        try:
            previous = signal.signal(signal.SIGINT, self)
        except ValueError:  # not the main thread: presses raise KeyboardInterrupt as before
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    @contextlib.contextmanager
    def raised(self) -> Iterator[None]:
        self.raising = True
        try:
            yield
        finally:
            self.raising = False


class TurnRunner:
    """Runs one turn at a time on a worker thread, drawing its events and asking its questions
    on the calling (main) thread. `on_event` and `ask` are the session's callbacks."""

    def __init__(
        self, renderer: Renderer, read_line: ReadLine, terminal: int | None = None
    ) -> None:
        self.renderer = renderer
        self.read_line = read_line
        self.terminal = terminal  # the terminal's file descriptor, watched for Ctrl-D
        self.queue: queue.Queue[Event | Question | _Finished] = queue.Queue()
        self.busy = False  # a turn runs: background work (the sleep pass) waits for its end
        self._cancelling = False
        self._presses = _Presses()

    # -- called on the worker thread ----------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        self.queue.put(event)

    def ask(self, request: Request) -> Answer:
        question = Question(request)
        self.queue.put(question)
        question.done.wait()
        return question.answer

    # -- called on the main thread ------------------------------------------------------------------

    def drain(self) -> None:
        """Draw what is queued (notices from opening a session)."""
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Question):
                self._answer(item, None)
            elif not isinstance(item, _Finished):
                self.renderer(item)

    def run(self, session: ReplSession, text: str) -> TurnResult:
        """Run a turn to its end; Ctrl-C meanwhile cancels it (the program goes on)."""
        self._cancelling = False
        self.busy = True
        try:
            return self._run(session, text)
        finally:
            self.busy = False

    def _run(self, session: ReplSession, text: str) -> TurnResult:
        outcome: list[TurnResult] = []

        def work() -> None:
            try:
                outcome.append(session.run_turn(text))
            except BaseException as exc:  # the session catches errors; this is a last resort
                outcome.append(TurnResult("", "error", error=f"{type(exc).__name__}: {exc}"))
            finally:
                self.queue.put(_Finished())

        worker = threading.Thread(target=work, name="mcode-turn", daemon=True)
        with self._presses.counting():
            try:
                worker.start()
            except KeyboardInterrupt:  # start() was waiting for the thread, which runs already
                self._interrupted(session)
            try:
                while True:
                    try:
                        if self._step(session):
                            break
                    except KeyboardInterrupt:
                        self._interrupted(session)
            except Leave:
                session.cancel()
                worker.join(LEAVE_SECONDS)
                self.renderer.flush()
                raise
        while worker.is_alive():
            with contextlib.suppress(KeyboardInterrupt):
                worker.join(POLL_SECONDS)
        self.renderer.flush()
        return outcome[0] if outcome else TurnResult("", "cancelled")

    def _step(self, session: ReplSession) -> bool:
        """Handle one queued item; True once the turn has finished."""
        while self._presses.take():
            self._cancel(session)
        try:
            item = self.queue.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if self.terminal is not None and eof_typed(self.terminal):
                raise Leave(EXIT_OK) from None
            return False
        if isinstance(item, _Finished):
            return True
        if self._cancelling:
            session.cancel()  # again: a turn that had not begun yet when asked forgets it
        if isinstance(item, Question):
            self._answer(item, session)
        else:
            self.renderer(item)
        return False

    def _answer(self, question: Question, session: ReplSession | None) -> None:
        answer: Answer = "no"
        try:
            if not self._cancelling:
                self.renderer.flush()
                with self._presses.raised():
                    answer = ask_user(self.renderer.console, question.request, self.read_line)
        except KeyboardInterrupt:
            if session is not None:
                self._interrupted(session)
        finally:
            question.answer = answer
            question.done.set()

    def _interrupted(self, session: ReplSession) -> None:
        """Ctrl-C while a turn runs. One pressed while the last is still being handled (the
        notice being drawn) counts as the second: it must not escape the turn's loop."""
        while True:
            try:
                self._cancel(session)
                return
            except KeyboardInterrupt:
                continue

    def _cancel(self, session: ReplSession) -> None:
        if self._cancelling:
            self.renderer.notice("The turn did not stop: leaving.")
            raise Leave(EXIT_INTERRUPTED)
        self._cancelling = True
        session.cancel()
        self.renderer.notice("Stopping… (Ctrl-C again to leave mcode)")


class StatusLine:
    """The bottom toolbar: model · tokens · cost · the index · permission mode.

    The index's part is its progress while the session builds it ("indexing 1,240/6,300 files",
    "vectors 12%"), then its freshness, which compares the index with the work tree (a listing of
    the repository); so the line is worked out on a background thread after each turn and each
    step of the index's progress, and the toolbar shows the last known line.
    """

    def __init__(self) -> None:
        self.text = ""
        self.on_change: Callable[[], None] = lambda: None
        self._lock = threading.Lock()

    def refresh(self, session: ReplSession) -> None:
        self.text = self.text or f"{session.model} · starting…"

        def work() -> None:
            try:
                status = session.status()
            except Exception as exc:
                line = f"{session.model} · status unavailable ({exc})"
            else:
                line = (
                    f"{status.model} · {status.session_tokens:,} tokens · "
                    f"${status.session_cost_usd:.4f} · {status.index} · {status.permission_mode}"
                )
            with self._lock:
                self.text = line
            self.on_change()

        threading.Thread(target=work, name="mcode-status", daemon=True).start()

    def __call__(self) -> str:
        with self._lock:
            return self.text


def key_bindings() -> KeyBindings:
    """Enter sends; Alt-Enter or Esc Enter (the same keys to a terminal) inserts a newline, and
    so does Enter after a trailing backslash. Enter on a highlighted path completion takes it and
    lets the message go on; on a command it takes it and runs the command."""
    bindings = KeyBindings()
    in_prompt = has_focus("DEFAULT_BUFFER")

    @bindings.add(Keys.Enter, filter=in_prompt)
    def _enter(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is not None:
            buffer.complete_state = None  # the completion is already in the text
            if not buffer.text.startswith("/"):
                return  # a path: the message goes on
        before = buffer.document.text_before_cursor
        if before.endswith("\\") and buffer.document.is_cursor_at_the_end_of_line:
            buffer.delete_before_cursor(1)
            buffer.insert_text("\n")
            return
        buffer.validate_and_handle()

    @bindings.add(Keys.Escape, Keys.Enter, filter=in_prompt)
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    return bindings


def make_prompt(settings: Settings, status: StatusLine) -> PromptSession[str]:
    history = settings.paths.user_config / HISTORY_FILE
    history.parent.mkdir(parents=True, exist_ok=True)
    return PromptSession(
        history=FileHistory(str(history)),
        multiline=True,
        key_bindings=key_bindings(),
        completer=ReplCompleter(command_help(), RepoFiles(settings.paths.repo)),
        complete_while_typing=True,
        bottom_toolbar=status,
        prompt_continuation=CONTINUATION,
        enable_history_search=False,
    )


class Repl:
    """The read-eval loop over one session at a time (/clear and /resume replace it). With a
    `memory` consolidation, it is told of each turn and each session's end, and what it changed
    is shown before the next prompt, never inside a turn's output."""

    def __init__(
        self,
        ctx: CommandContext,
        runner: TurnRunner,
        read_message: Callable[[], str],
        status: StatusLine,
        memory: BackgroundConsolidation | None = None,
    ) -> None:
        self.ctx = ctx
        self.runner = runner
        self.read_message = read_message
        self.status = status
        self.memory = memory
        self._session_id = ctx.session.session_id

    @property
    def renderer(self) -> Renderer:
        return self.runner.renderer

    def loop(self, first_message: str | None = None) -> int:
        """Read and run messages until the user leaves; `first_message` runs before the first
        prompt (`mcode "fix the bug"`)."""
        if first_message and (code := self._handle(first_message)) is not None:
            return code
        while True:
            self.show_memory()
            try:
                line = self.read_message()
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                return EXIT_OK  # Ctrl-D at an empty prompt
            code = self._handle(line)
            if code is not None:
                return code

    def _handle(self, line: str) -> int | None:
        try:
            return self.handle(line)
        except Leave as leave:  # the user left while a turn ran
            return leave.code

    def handle(self, line: str) -> int | None:
        """Run a command or a turn; an exit code when the REPL should end."""
        text = line.strip()
        if not text:
            return None
        if text.startswith("/"):
            outcome = self._command(text)
            self._session_switched()
            if isinstance(outcome, Exit):
                return outcome.code
            if not isinstance(outcome, Submit):
                self.status.refresh(self.ctx.session)
                return None
            text = outcome.text
        self.turn(text)
        return None

    def _command(self, text: str) -> Exit | Submit | None:
        try:
            return run_command(self.ctx, text)
        except KeyboardInterrupt:
            self.renderer.notice("Interrupted.")
        except Exception as exc:  # a failing command must not end the REPL
            self.renderer.error(f"{text.split()[0]} failed: {type(exc).__name__}: {exc}")
        finally:
            self.runner.drain()
        return None

    def turn(self, text: str) -> None:
        self.show_memory()  # what finished while the user typed, before the turn's output
        attachments = attach_mentions(text, self.ctx.settings.paths.repo)
        if attachments.attached:
            self.renderer.dim(f"attached {', '.join(attachments.attached)}")
        for skipped in attachments.skipped:
            self.renderer.notice(skipped)
        result = self.runner.run(self.ctx.session, attachments.text)
        if result.stop_reason == "error":
            self.renderer.error(result.error or "the turn failed")
        elif result.stop_reason == "max_turns":
            self.renderer.notice(
                f"Stopped after {result.steps} steps without a final answer; say 'go on' to "
                "let it continue."
            )
        if self.memory is not None:
            self.memory.turn_ended(self.ctx.session.session_id)
        self.status.refresh(self.ctx.session)

    def _session_switched(self) -> None:
        """/clear or /resume ended the session: its last turns are consolidated too."""
        current = self.ctx.session.session_id
        if current != self._session_id:
            if self.memory is not None:
                self.memory.session_ended(self._session_id)
            self._session_id = current

    def show_memory(self) -> None:
        """What background consolidations changed in memory, or why they could not run."""
        for report in self.memory.reports() if self.memory is not None else ():
            self._say(report)

    def end_memory(self) -> None:
        """The session ends: consolidate its last turns, waiting a bounded time (Ctrl-C skips
        it)."""
        if self.memory is not None:
            self.memory.session_ended(self.ctx.session.session_id)
            self.memory.finish(self._say)

    def _say(self, report: MemoryReport) -> None:
        if report.quiet:
            self.renderer.dim(report.text)
        else:
            self.renderer.notice(report.text)


def _prompt_reader(prompt: PromptSession[str]) -> Callable[[], str]:
    def read() -> str:
        return prompt.prompt(PROMPT)

    return read


def _answer_reader(interactive: bool) -> ReadLine:
    if not interactive:
        return input
    asking: PromptSession[str] = PromptSession()
    return lambda question: asking.prompt(question)


def _welcome(console: Console, session: ReplSession) -> None:
    console.print(
        Text.assemble(
            ("mcode", "bold"),
            f" · {session.model} · session {session.session_id}",
            (" · /help for commands, Ctrl-D to leave", "dim"),
        )
    )


class SessionOpener:
    """Opens sessions wired to the runner: the first, and those /clear and /resume switch to.
    They share the code index, which the REPL keeps for as long as it runs."""

    def __init__(self, settings: Settings, runner: TurnRunner, **options: object) -> None:
        self.settings = settings
        self.runner = runner
        self.options = options
        self.index: LiveIndex | None = None

    def __call__(self, resume: str | None, *, model: str | None = None) -> AgentSession:
        from mcode.agent.session import AgentSession
        from mcode.review.commit_check import commit_check

        options = {**self.options, "model": model or self.options.get("model")}
        session = AgentSession.open(
            self.settings,
            ask=self.runner.ask,
            on_event=self.runner.on_event,
            resume=resume,
            index=self.index,
            commit_check=commit_check(self.settings),
            **options,  # type: ignore[arg-type]
        )
        self.runner.drain()
        session.warm_up()
        return session

    def first(self, resume: str | None, *, interactive: bool) -> AgentSession | int:
        """The first session, or the exit code when it cannot be opened. Asks first whether to
        trust the repository's settings, when it has some that need trust."""
        from mcode.agent.providers import NoModelError
        from mcode.memory.sessions import SessionNotFound

        try:
            return self._open_first(resume, interactive)
        except (NoModelError, SessionNotFound, ConfigError, ValueError) as exc:
            self.runner.drain()
            sys.stderr.write(f"mcode: {' '.join(str(exc).split())}\n")
            return EXIT_USAGE
        except OSError as exc:
            sys.stderr.write(f"mcode: cannot open the session: {exc}\n")
            return EXIT_FAILURE
        except KeyboardInterrupt:
            sys.stderr.write("mcode: interrupted\n")
            return EXIT_INTERRUPTED

    def _open_first(self, resume: str | None, interactive: bool) -> AgentSession:
        from mcode.agent.events import Notice
        from mcode.retrieval.live import LiveIndex

        console = self.runner.renderer.console
        self.settings = confirm_trust(
            self.settings, console, self.runner.read_line, interactive=interactive
        )
        # The index is brought up to date in the background: the prompt comes at once.
        self.index = LiveIndex.open(self.settings, lambda text: self.runner.on_event(Notice(text)))
        try:
            return self(resume)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the index's background work; what was written is kept."""
        index, self.index = self.index, None
        if index is not None:
            index.close()


def run_repl(
    settings: Settings,
    *,
    model: str | None = None,
    permission_mode: str = "ask",
    allow: Sequence[str] = (),
    deny: Sequence[str] = (),
    resume: str | None = None,
    first_message: str | None = None,
) -> int:
    """Run the REPL in the settings' repository until the user leaves; the exit code."""
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    console = Console(highlight=False)
    terminal = sys.stdin.fileno() if interactive else None
    runner = TurnRunner(Renderer(console), _answer_reader(interactive), terminal)
    opener = SessionOpener(
        settings, runner, model=model, permission_mode=permission_mode, allow=allow, deny=deny
    )
    session = opener.first(resume, interactive=interactive)
    if isinstance(session, int):
        return session
    settings = opener.settings  # with the repository's own, if the user trusted them
    # /clear and /resume keep the model the user last chose with /model
    ctx = CommandContext(
        session, settings, console, lambda ref: opener(ref, model=ctx.session.model)
    )
    status = StatusLine()
    read_message: Callable[[], str] = input  # without a terminal: plain lines
    if interactive:
        prompt = make_prompt(settings, status)
        read_message = _prompt_reader(prompt)
        status.on_change = lambda: _invalidate(prompt)
    if opener.index is not None:
        opener.index.on_change = lambda: status.refresh(ctx.session)
    status.refresh(session)
    _welcome(console, session)
    from mcode.sleep.background import BackgroundConsolidation

    repl = Repl(ctx, runner, read_message, status, BackgroundConsolidation(settings))
    summaries = _summaries_when_quiet(settings, runner, opener.index)
    try:
        code = repl.loop(first_message)
    finally:
        if summaries is not None:
            summaries.stop(timeout=LEAVE_SECONDS)
        ctx.session.close()
        opener.close()
    repl.end_memory()
    return code


def _summaries_when_quiet(
    settings: Settings, runner: TurnRunner, index: LiveIndex | None
) -> QuietTrigger | None:
    """The sleep pass as `mcode watch` runs it: module summaries brought up to date once files
    have been quiet for `sleep_quiet_seconds`, never while a turn runs. Once at the start (what
    changed while no one watched), then after the watcher's batches. Its outcome goes to the log
    only: the user asked for none of it."""
    if index is None:
        return None
    from mcode.sleep.trigger import pass_when_quiet

    trigger = pass_when_quiet(
        settings,
        "mcode",
        busy=lambda: runner.busy,
        on_report=lambda report: None,
        on_skip=lambda why: log.info("sleep pass skipped: %s", why),
        on_error=lambda exc: log.warning("sleep pass failed: %s", exc),
    )
    index.on_files_changed = trigger.mark
    trigger.mark()
    return trigger


def _invalidate(prompt: PromptSession[str]) -> None:
    """Redraw the toolbar once the status line is known (a no-op when no prompt is showing)."""
    app = prompt.app
    if app.is_running:
        app.invalidate()
