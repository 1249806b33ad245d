"""`run_shell`: one command in bash at the repository root, its output streamed to the user.

The user sees every line as it arrives (through the context's `on_output`, called on the caller's
thread); the model gets the exit code and the output capped to its head and tail, with a note of
what was cut, and secret values redacted (`mcode.secrets`). Stdin is closed, so a command waiting
for input ends instead of hanging. On timeout the whole process group is stopped: SIGTERM, then
SIGKILL. When the user cancels the turn (`RepoAccess.cancel`), it gets SIGINT, as a Ctrl-C in a
shell would send, then SIGKILL after half a second, so the prompt is back within a second.
Processes left in the background still holding the output are stopped too once the shell has
exited; ones that redirected their output live on.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from typing import IO, Annotated

from mcode.secrets import redact
from mcode.tools.access import RepoAccess
from mcode.tools.base import Range, ToolError, tool

DEFAULT_TIMEOUT = 120
MAX_TIMEOUT = 600
HEAD_LINES = TAIL_LINES = 200
HEAD_BYTES = TAIL_BYTES = 15_000
MAX_LINE_CHARS = 2000
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
INTERRUPT_GRACE = 0.5  # seconds between SIGINT and SIGKILL when the user cancels
DRAIN_GRACE = 1.0  # seconds the output may stay open after the shell exits
_READ_LINE_LIMIT = 65_536
_QUIET_ENV = {"PAGER": "cat", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0"}


class CappedOutput:
    """The first and last lines of an output of any size, and how much lay between."""

    def __init__(self) -> None:
        self.head: list[str] = []
        self.tail: deque[str] = deque()
        self._head_bytes = self._tail_bytes = 0
        self.omitted_lines = self.omitted_bytes = 0

    def add(self, line: str) -> None:
        if len(line) > MAX_LINE_CHARS:
            line = f"{line[:MAX_LINE_CHARS]}… [line truncated, {len(line)} chars]"
        size = len(line.encode("utf-8", "replace")) + 1
        if not self.tail and len(self.head) < HEAD_LINES and self._head_bytes + size <= HEAD_BYTES:
            self.head.append(line)
            self._head_bytes += size
            return
        self.tail.append(line)
        self._tail_bytes += size
        while len(self.tail) > TAIL_LINES or self._tail_bytes > TAIL_BYTES:
            dropped = self.tail.popleft()
            self._tail_bytes -= len(dropped.encode("utf-8", "replace")) + 1
            self.omitted_lines += 1
            self.omitted_bytes += len(dropped.encode("utf-8", "replace")) + 1

    def text(self) -> str:
        lines = list(self.head)
        if self.omitted_lines:
            kb = self.omitted_bytes / 1000
            lines.append(f"[… {self.omitted_lines} lines ({kb:.1f} kB) omitted …]")
        return "\n".join(lines + list(self.tail))


def _pump(stream: IO[bytes], lines: queue.Queue[str | None]) -> None:
    """Move the output into a queue line by line; None marks its end."""
    try:
        for raw in iter(lambda: stream.readline(_READ_LINE_LIMIT), b""):
            lines.put(raw.decode("utf-8", "replace").rstrip("\n").rstrip("\r"))
    except (OSError, ValueError):
        pass
    finally:
        lines.put(None)


def _stop_group(
    proc: subprocess.Popen[bytes], first: int = signal.SIGTERM, grace: float = KILL_GRACE
) -> None:
    """Signal the command's process group (`first`), then SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, first)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


_TIMED_OUT = "Timed out after {:g} s; the command and its child processes were stopped."
_LINGERING = "Background processes still holding the output were stopped."
_INTERRUPTED = "Interrupted by the user; the command and its child processes were stopped."


def _follow(
    ctx: RepoAccess,
    proc: subprocess.Popen[bytes],
    lines: queue.Queue[str | None],
    reader: threading.Thread,
    captured: CappedOutput,
    timeout: float,
) -> str:
    """Pass lines on until the output ends; the note says why it stopped early, if it did."""
    deadline = time.monotonic() + timeout
    exited_at: float | None = None
    while True:
        now = time.monotonic()
        if now >= deadline:
            return _TIMED_OUT.format(timeout)
        if ctx.cancel is not None and ctx.cancel.is_set():
            return _INTERRUPTED
        if exited_at is None and proc.poll() is not None:
            exited_at = now
        if exited_at is not None and now - exited_at >= DRAIN_GRACE and reader.is_alive():
            return _LINGERING
        try:
            line = lines.get(timeout=min(deadline - now, 0.2))
        except queue.Empty:
            continue
        if line is None:
            return ""
        ctx.on_output(line)
        captured.add(line)


def execute(ctx: RepoAccess, command: str, timeout: float) -> tuple[int | None, str, str]:
    """Run `command`, streaming its lines to `ctx.on_output`; (exit code, capped output, note).

    The exit code is None when the command was stopped for running past `timeout`. If the caller
    is interrupted (Ctrl-C in the REPL), the command's process group is stopped too.
    """
    proc = subprocess.Popen(
        ["bash", "-c", command],
        cwd=ctx.root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **_QUIET_ENV},
    )
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    reader.start()
    captured = CappedOutput()
    try:
        note = _follow(ctx, proc, lines, reader, captured, timeout)
    except BaseException:  # Ctrl-C, or the output callback failed: leave nothing running
        _stop_group(proc)
        proc.stdout.close()
        raise
    if note == _INTERRUPTED:
        _stop_group(proc, signal.SIGINT, INTERRUPT_GRACE)
    elif note:
        _stop_group(proc)
    code = proc.wait()
    reader.join(INTERRUPT_GRACE if note == _INTERRUPTED else KILL_GRACE)
    while not lines.empty() and (line := lines.get()) is not None:
        ctx.on_output(line)
        captured.add(line)
    proc.stdout.close()
    timed_out = note == _TIMED_OUT.format(timeout)
    return (None if timed_out else code), captured.text(), note


@tool("shell")
def run_shell(
    ctx: RepoAccess, command: str, timeout: Annotated[int, Range(1, MAX_TIMEOUT)] = DEFAULT_TIMEOUT
) -> str:
    """Run a shell command in the repository root and return its output and exit code.

    Use it to run tests, builds, linters and other project commands. Each call starts a fresh
    shell in the repository root (a `cd` does not carry over), with no input: never start
    interactive programs or servers that do not exit. Long output is cut to its start and end.
    To read, search or edit files, use the file tools instead of cat, grep or sed.

    Args:
        command: The command line, run with bash -c.
        timeout: Seconds before the command is stopped (default 120).
    """
    if not command.strip():
        raise ToolError("command must not be empty")
    one_line = " ".join(command.split())
    shown = one_line if len(one_line) <= 200 else one_line[:200] + "…"
    ctx.authorize(
        "run_shell",
        {"command": command},
        kind="shell",
        action=f"running `{shown}`",
        summary=f"Run `{shown}`?",
        detail=command,
    )
    code, output, note = execute(ctx, command, timeout)
    parts = [redact(output) or "(no output)"]
    if code is not None:
        parts.append(f"Exit code: {code}" if code >= 0 else f"Killed by signal {-code}.")
    if note:
        parts.append(note)
    return "\n".join(parts)
