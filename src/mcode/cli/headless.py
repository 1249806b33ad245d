"""`mcode -p PROMPT`: one turn without the REPL, for scripts, CI and hooks.

Output formats follow the conventions users know from Claude Code: `text` prints the final answer;
`json` prints one object describing the run; `stream-json` prints one JSON object per line as
things happen (an init line, text, tool calls, their output and results, notices) and ends with
the same object as `json`, typed "result". Nobody can answer a question in headless mode, so in
"ask" mode every call that would ask is refused, and the tool result tells the model so; the result
lists each refused call under `permission_denials`, and stderr names each on a line. Text
piped into `mcode -p PROMPT` follows the prompt. A run that cannot start (no model, no key) still
prints its JSON object, with `error`, when JSON was asked for.

The code index is kept as in the REPL (built and watched in the background; `--no-index` or
`auto_index = false` leave it alone), and the run leaves its lexical part complete and current
when it exits; vectors still pending wait for the next session or `mcode index`. No progress is
printed: the output stays what the format says. With a `sleep_model`, the run's conversation is
consolidated into the memory blocks as a session's end is (`mcode.sleep.background`), after the
output is printed; stderr says so, and Ctrl-C skips it without changing the exit code.

Exit codes: 0 the turn finished with an answer; 1 it failed (the model kept failing, the step limit
came first, the user interrupted) or an edit was refused; 2 bad usage (unknown format, empty
prompt, no model configured, no key for it).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

from mcode.agent.events import (
    Event,
    Notice,
    TextDelta,
    ToolFinished,
    ToolOutput,
    ToolStarted,
    TurnResult,
)
from mcode.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    fail,
    piped_stdin,
    read_text_argument,
)

OUTPUT_FORMATS = ("text", "json", "stream-json")
STDIN_WAIT_SECONDS = 2.0  # for the first bytes piped into `mcode -p PROMPT`


@dataclass(frozen=True)
class HeadlessOptions:
    prompt: str
    output_format: str = "text"
    max_turns: int | None = None
    permission_mode: str = "ask"
    model: str | None = None
    continue_latest: bool = False
    resume: str | None = None
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    no_index: bool = False


def check_options(options: HeadlessOptions) -> str:
    """The prompt text, once every option is known to be usable; exits 2 otherwise."""
    from mcode.tools.permissions import parse_mode

    if options.output_format not in OUTPUT_FORMATS:
        fail(
            f"unknown output format {options.output_format!r}: use text, json or stream-json",
            EXIT_USAGE,
        )
    try:
        parse_mode(options.permission_mode)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    if options.max_turns is not None and options.max_turns < 1:
        fail("--max-turns must be at least 1", EXIT_USAGE)
    if options.continue_latest and options.resume:
        fail("use either --continue or --resume ID, not both", EXIT_USAGE)
    prompt = read_text_argument(options.prompt)
    if not prompt.strip():
        fail("the prompt is empty: pass the task as -p TEXT, or -p - to read it from stdin", 2)
    return prompt


class Printer:
    """Turns session events into the chosen output; notices go to stderr unless streaming."""

    def __init__(self, output_format: str, out: IO[str], err: IO[str]) -> None:
        self.format = output_format
        self.out = out
        self.err = err
        self._early: list[dict[str, Any]] | None = []  # lines that come before the init line
        self._inputs: dict[str, dict[str, Any]] = {}  # each call's arguments, by id
        self.denials: list[dict[str, Any]] = []  # the calls the permissions refused
        self.refused_edit = False

    def line(self, data: dict[str, Any]) -> None:
        if self._early is not None:
            self._early.append(data)
            return
        self.out.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
        self.out.flush()

    def start(self, init: dict[str, Any]) -> None:
        """Print the init line, then whatever was said while the session opened."""
        early, self._early = self._early or [], None
        for data in [init, *early]:
            self.line(data)

    def __call__(self, event: Event) -> None:
        if isinstance(event, ToolStarted):
            self._inputs[event.call_id] = event.arguments
        elif isinstance(event, ToolFinished) and event.denied:
            self.refused_edit = self.refused_edit or event.denied == "edit"
            arguments = self._inputs.get(event.call_id, {})
            self.denials.append(
                {"tool_name": event.name, "tool_use_id": event.call_id, "tool_input": arguments}
            )
        if self.format != "stream-json":
            if isinstance(event, Notice):
                self.err.write(f"mcode: {event.text}\n")
                self.err.flush()
            return
        if isinstance(event, TextDelta):
            self.line({"type": "text", "text": event.text})
        elif isinstance(event, ToolStarted):
            self.line(
                {
                    "type": "tool_use",
                    "id": event.call_id,
                    "name": event.name,
                    "input": event.arguments,
                }
            )
        elif isinstance(event, ToolOutput):
            self.line({"type": "tool_output", "id": event.call_id, "text": event.text})
        elif isinstance(event, ToolFinished):
            self.line(
                {
                    "type": "tool_result",
                    "id": event.call_id,
                    "name": event.name,
                    "content": event.result,
                    "is_error": event.error,
                }
            )
        elif isinstance(event, Notice):
            self.line({"type": "notice", "text": event.text})


def result_object(
    session_id: str,
    model: str,
    result: TurnResult,
    duration_ms: int,
    denials: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    usage = result.usage
    data: dict[str, Any] = {
        "type": "result",
        "session_id": session_id,
        "model": model,
        "result": result.text,
        "stop_reason": result.stop_reason,
        "is_error": result.stop_reason != "done",
        "num_turns": result.steps,
        "usage": {
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "estimated": usage.estimated,
        },
        "total_cost_usd": result.cost,
        "duration_ms": duration_ms,
        "permission_denials": denials or [],
    }
    if result.error:
        data["error"] = result.error
    return data


def run_headless(repo: Path | None, options: HeadlessOptions) -> int:
    """Run one turn and print it; the exit code."""
    prompt = check_options(options)
    from mcode.cli.common import resolve_settings

    settings = resolve_settings(repo, auto_index=False if options.no_index else None)
    _check_model(settings, options)
    _warm_up()
    if options.prompt != "-":
        prompt = _with_piped_input(prompt)
    started = time.monotonic()
    printer = Printer(options.output_format, sys.stdout, sys.stderr)
    index = _open_index(settings, printer)
    try:
        session = _open(settings, options, printer, index)
    except BaseException:
        index.close()
        raise
    try:
        if options.output_format == "stream-json":
            printer.start(
                {
                    "type": "system",
                    "subtype": "init",
                    "session_id": session.session_id,
                    "model": session.model,
                    "tools": session.tools,
                    "cwd": str(settings.paths.repo),
                    "permission_mode": session.permissions.mode,
                }
            )
        result = session.run_turn(prompt, max_steps=options.max_turns)
        memory = _consolidate_memory(settings, session.session_id)  # beside closing the index
    finally:
        session.close()
        _close_index(index)
    elapsed = int((time.monotonic() - started) * 1000)
    data = result_object(session.session_id, session.model, result, elapsed, printer.denials)
    if options.output_format == "text":
        if result.text:
            sys.stdout.write(result.text.rstrip("\n") + "\n")
    elif options.output_format == "json":
        sys.stdout.write(json.dumps({k: v for k, v in data.items() if k != "type"}) + "\n")
    else:
        printer.line(data)
    sys.stdout.flush()
    for denial in printer.denials:
        sys.stderr.write(f"mcode: refused: {_call_line(denial)}\n")
    memory.finish(_say)
    if result.stop_reason == "done" and not printer.refused_edit:
        return EXIT_OK
    sys.stderr.write(f"mcode: {_failure(result)}\n")
    return EXIT_FAILURE


def _refuse(options: HeadlessOptions, message: str, code: int) -> NoReturn:
    """`fail` for a run that could not start, after the JSON object a script parses, when it
    asked for JSON."""
    if options.output_format != "text":
        data = {"type": "result", "stop_reason": "error", "is_error": True, "error": message}
        if options.output_format == "json":
            del data["type"]
        sys.stdout.write(json.dumps({**data, "permission_denials": []}) + "\n")
        sys.stdout.flush()
    fail(message, code)


def _call_line(denial: dict[str, Any]) -> str:
    """A refused call on one line: its name and its first argument."""
    arguments = denial["tool_input"]
    first = next(iter(arguments.values()), "") if arguments else ""
    shown = " ".join(str(first).split())
    shown = shown if len(shown) <= 80 else shown[:79] + "…"
    return f"{denial['tool_name']} {shown}".strip()


def _failure(result: TurnResult) -> str:
    if result.stop_reason == "done":
        return (
            "the turn's edits were refused: allow them with --permission-mode accept-edits, "
            "or --allow RULE"
        )
    if result.stop_reason == "max_turns":
        return (
            f"stopped after {result.steps} model steps without a final answer "
            "(raise --max-turns to allow more)"
        )
    if result.stop_reason == "cancelled":
        return "interrupted"
    return " ".join(str(result.error or "the turn failed").split())


def _check_model(settings: Any, options: HeadlessOptions) -> None:
    """Fail fast, before the agent's heavy imports, when there is no model to use at all, or no
    key for it."""
    from mcode.agent.providers import NoModelError, require_key, resolve_model

    try:
        require_key(settings, resolve_model(settings, flag=options.model))
    except NoModelError as exc:
        _refuse(options, str(exc), EXIT_USAGE)


def _with_piped_input(prompt: str) -> str:
    """The prompt, followed by what is piped into mcode (`git diff | mcode -p "review this"`)."""
    piped = piped_stdin(STDIN_WAIT_SECONDS)
    if piped is None:
        sys.stderr.write(
            f"mcode: nothing came on standard input within {STDIN_WAIT_SECONDS:g} s; going on "
            "without it (-p - reads the whole prompt from it, however long it takes)\n"
        )
        return prompt
    return f"{prompt}\n\n{piped}" if piped.strip() else prompt


def _warm_up() -> None:
    """Import the model client (seconds) beside opening the index and the session. Not a daemon
    thread: one stopped at exit in the middle of an import would hold that module's lock, and
    the exit would hang on it."""
    from mcode.agent.llm import warm_up

    threading.Thread(target=warm_up, name="mcode-warm-up").start()


def _consolidate_memory(settings: Any, session_id: str) -> Any:
    from mcode.sleep.background import BackgroundConsolidation

    memory = BackgroundConsolidation(settings)
    memory.session_ended(session_id)
    return memory


def _say(report: Any) -> None:
    """Memory's lines go to stderr: stdout holds only what the output format says."""
    sys.stderr.write(f"mcode: {report.text}\n")
    sys.stderr.flush()


def _open_index(settings: Any, printer: Printer) -> Any:
    from mcode.retrieval.live import LiveIndex

    return LiveIndex.open(settings, lambda text: printer(Notice(text)))


def _close_index(index: Any) -> None:
    """Leave the lexical index complete and current (seconds); Ctrl-C meanwhile leaves the rest
    to the next run."""
    try:
        index.close(finish=True)
    except KeyboardInterrupt:
        index.close()


def _open(settings: Any, options: HeadlessOptions, printer: Printer, index: Any) -> Any:
    from mcode.agent.providers import NoModelError
    from mcode.agent.session import AgentSession
    from mcode.config import ConfigError
    from mcode.memory.sessions import SessionNotFound
    from mcode.review.commit_check import commit_check

    resume = "latest" if options.continue_latest else options.resume
    try:
        return AgentSession.open(
            settings,
            model=options.model,
            permission_mode=options.permission_mode,
            allow=options.allow,
            deny=options.deny,
            ask=None,
            on_event=printer,
            resume=resume,
            index=index,
            commit_check=commit_check(settings),
        )
    except (NoModelError, SessionNotFound, ConfigError, ValueError) as exc:
        _refuse(options, str(exc), EXIT_USAGE)
    except OSError as exc:
        _refuse(options, f"cannot open the session: {exc}", EXIT_FAILURE)
