"""The REPL's slash commands: one function per command, in one explicit table.

A command gets a `CommandContext` (the session, the settings, the console, and a way to replace the
session for /clear and /resume) and the text after its name. It prints what it has to say and
returns nothing, or an outcome: `Submit` sends a message to the agent as if typed (how /commit
without a message asks the model to write one), `Exit` ends the REPL. The first line of each
function's docstring is what /help shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from rich.console import Console
from rich.padding import Padding
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

import mcode.vcs as vcs
from mcode.agent.events import TurnResult
from mcode.config import Settings
from mcode.repl.listing import block_table, search_hit
from mcode.repl.markdown import LineMarkdown
from mcode.retrieval.hits import SearchHit
from mcode.tools import FileUndo

DEFAULT_MAP_TOKENS = 1024
SEARCH_RESULTS = 8
SNIPPET_LINES = 3
RECENT_SESSIONS = 10
COMMIT_PROMPT = (
    "Commit my changes. Look at git_status and git_diff first, then call git_commit with "
    "all=true and a message in this repository's commit style that says why, not only what. "
    "Do not change any file."
)


# What commands need of a session ------------------------------------------------------------------


class CodeView(Protocol):
    def search(self, query: str, k: int, level: str) -> Sequence[SearchHit]: ...
    def repo_map(self, tokens: int, *, focus: Sequence[str] = (), query: str = "") -> str: ...


class Status(Protocol):
    session_id: str
    model: str
    session_tokens: int
    session_cost_usd: float
    index: str
    permission_mode: str


class ReplSession(Protocol):
    """The part of `mcode.agent.session.AgentSession` the REPL uses."""

    session_id: str
    model: str
    code: CodeView | None

    def run_turn(self, user_text: str, *, max_steps: int | None = None) -> TurnResult: ...
    def cancel(self) -> None: ...
    def undo(self) -> Sequence[FileUndo]: ...
    def switch_model(self, name: str) -> None: ...
    def context_report(self) -> str: ...
    def compact(self) -> str: ...
    def remember(self, text: str) -> None: ...
    def status(self) -> Status: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Submit:
    """Send this text to the agent as the user's message."""

    text: str


@dataclass(frozen=True)
class Exit:
    code: int = 0


Outcome = Submit | Exit | None


@dataclass
class CommandContext:
    session: ReplSession
    settings: Settings
    console: Console
    # Opens a session: a new conversation (None) or a stored one (an id, a prefix, "latest").
    open_session: Callable[[str | None], ReplSession]

    def replace_session(self, resume: str | None) -> ReplSession:
        """Switch to another conversation; the old session is closed only once the new is open."""
        new = self.open_session(resume)
        old, self.session = self.session, new
        old.close()
        return new

    def say(self, text: str, style: str = "") -> None:
        self.console.print(Text(text, style=style))

    def error(self, text: str) -> None:
        self.console.print(Text(f"Error: {text}", style="bold red"))


Handler = Callable[[CommandContext, str], Outcome]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    usage: str = ""

    @property
    def help(self) -> str:
        doc = (self.handler.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


# The commands ---------------------------------------------------------------------------------------


def cmd_help(ctx: CommandContext, arg: str) -> Outcome:
    """List the commands."""
    table = Table.grid(padding=(0, 2))
    for command in COMMANDS.values():
        usage = f"/{command.name}" + (f" {command.usage}" if command.usage else "")
        table.add_row(Text(usage, style="bold"), Text(command.help))
    ctx.console.print(table)
    ctx.say(
        "Enter sends; Alt-Enter, Esc Enter or a line ending in \\ starts a new line. "
        "@path attaches a file. Ctrl-C stops a turn, Ctrl-D leaves.",
        "dim",
    )
    return None


def cmd_model(ctx: CommandContext, arg: str) -> Outcome:
    """Show the model, or switch this session's.

    NAME is a litellm model name such as openai/gpt-4o; the project's default stays as it is.
    """
    if not arg:
        ctx.say(f"Model: {ctx.session.model}")
        ctx.say("/model NAME switches this session; `mcode model NAME` sets the project's.", "dim")
        return None
    try:
        ctx.session.switch_model(arg)
    except ValueError as exc:
        ctx.error(str(exc))
        return None
    ctx.say(f"Switched to {ctx.session.model} for this session.")
    return None


def cmd_memory(ctx: CommandContext, arg: str) -> Outcome:
    """List the memory blocks, or show one."""
    from mcode.memory.blocks import BlockStore, BlockStoreError

    words = arg.split()
    store = BlockStore.for_paths(ctx.settings.paths)
    store.ensure_defaults()
    if not words or words == ["list"]:
        ctx.console.print(block_table(store.entries()))
        return None
    if words[0] == "show" and len(words) == 2:
        try:
            block = store.get(words[1])
        except BlockStoreError as exc:
            ctx.error(str(exc))
            return None
        ctx.say(f"{block.label} ({block.scope}, {block.chars}/{block.limit} chars)", "bold")
        ctx.console.print(Text(block.value))
        return None
    ctx.error("usage: /memory [list | show LABEL]")
    return None


def cmd_remember(ctx: CommandContext, arg: str) -> Outcome:
    """Add a line to the lessons block (in every prompt)."""
    from mcode.memory.blocks import BlockStoreError

    if not arg:
        ctx.error("usage: /remember TEXT, e.g. /remember run the tests with make test")
        return None
    line = arg if arg.startswith(("-", "*")) else f"- {arg}"
    try:
        ctx.session.remember(line)
    except BlockStoreError as exc:
        ctx.error(str(exc))
        return None
    ctx.say("Remembered in lessons.")
    return None


def cmd_search(ctx: CommandContext, arg: str) -> Outcome:
    """Search the code index.

    Words, identifiers, paths or a whole bug report: the same search the agent uses.
    """
    if not arg:
        ctx.error("usage: /search QUERY")
        return None
    code = _code_index(ctx)
    if code is None:
        return None
    hits = code.search(arg, SEARCH_RESULTS, "symbol")
    if not hits:
        ctx.say("No results.")
        return None
    for hit in hits:
        ctx.console.print(search_hit(hit, SNIPPET_LINES))
    return None


def cmd_map(ctx: CommandContext, arg: str) -> Outcome:
    """Show the repo map within a token budget."""
    try:
        tokens = int(arg) if arg else DEFAULT_MAP_TOKENS
    except ValueError:
        tokens = 0
    if tokens < 1:
        ctx.error("usage: /map [TOKENS], e.g. /map 2048")
        return None
    code = _code_index(ctx)
    if code is None:
        return None
    text = code.repo_map(tokens)
    ctx.console.print(Text(text.rstrip("\n") or "The map is empty."))
    return None


def _code_index(ctx: CommandContext) -> CodeView | None:
    """The session's code index; None, once the user is told how to get one, when there is none."""
    code = ctx.session.code
    if code is None:
        ctx.say(
            "The code index is not ready yet: the session builds it in the background (see the "
            "status line) unless auto_index is off; `mcode index` in a shell builds it too.",
            "yellow",
        )
    return code


def cmd_context(ctx: CommandContext, arg: str) -> Outcome:
    """Show what fills the context window.

    Memory blocks, project instructions, retrieved code and the conversation, in tokens.
    """
    ctx.console.print(Text(ctx.session.context_report().rstrip("\n")))
    return None


def cmd_compact(ctx: CommandContext, arg: str) -> Outcome:
    """Summarise the conversation to free the window.

    The summarised messages stay in recall memory, where the agent can search them.
    """
    ctx.say("Summarising the conversation…", "dim")
    try:
        report = ctx.session.compact()
    except KeyboardInterrupt:
        ctx.say("Compaction interrupted; the conversation is unchanged.", "yellow")
        return None
    ctx.console.print(LineMarkdown(report))  # the summary keeps identifiers verbatim: so do we
    return None


def cmd_undo(ctx: CommandContext, arg: str) -> Outcome:
    """Undo the last turn's edits; yours stay.

    Only changes made by the file tools are tracked; a shell command's are not. A file you
    changed after the turn keeps your edits: the turn's change is reversed on top of them when
    they do not overlap, and otherwise shown as a diff to revert by hand.
    """
    results = ctx.session.undo()
    if not results:
        ctx.say("Nothing to undo: no turn has changed files (shell commands are not tracked).")
        return None
    ctx.say("Undo of the last turn that changed files:")
    for result in results:
        line = Text(result.describe(), style="" if result.reverted else "yellow")
        ctx.console.print(Padding(line, (0, 0, 0, 2)))
        if result.diff:
            diff = Syntax(result.diff.rstrip("\n"), "diff", theme="ansi_dark")
            ctx.console.print(Padding(diff, (0, 0, 0, 4)))
    return None


def cmd_diff(ctx: CommandContext, arg: str) -> Outcome:
    """Show uncommitted changes (git diff HEAD)."""
    repo = ctx.settings.paths.repo
    try:
        try:
            text = vcs.diff(repo, rev="HEAD")
        except vcs.GitError:  # no commit yet
            text = vcs.diff(repo)
        untracked = vcs.untracked_files(repo)
    except vcs.GitError as exc:
        ctx.error(str(exc))
        return None
    if not text.strip() and not untracked:
        ctx.say("No changes.")
        return None
    if text.strip():
        ctx.console.print(Syntax(text.rstrip("\n"), "diff", theme="ansi_dark"))
    if untracked:
        ctx.say(f"Untracked: {', '.join(untracked)}", "dim")
    return None


def cmd_commit(ctx: CommandContext, arg: str) -> Outcome:
    """git commit -am MESSAGE (none: the agent commits).

    With a message this is plain git (hooks and all); without one the agent looks at the
    diff, writes a message in the project's style and commits through its git_commit tool,
    which asks first in the ask mode.
    """
    if not arg:
        return Submit(COMMIT_PROMPT)
    try:
        out = vcs.commit(ctx.settings.paths.repo, arg, tracked=True)
    except vcs.GitError as exc:
        ctx.error(str(exc))
        return None
    if not out.ok:
        ctx.error(out.output or "git commit failed")
        return None
    ctx.console.print(Text(out.output))
    return None


def cmd_clear(ctx: CommandContext, arg: str) -> Outcome:
    """Start a new conversation (memory carries over)."""
    session = ctx.replace_session(None)
    ctx.say(f"New conversation (session {session.session_id}).")
    return None


def cmd_resume(ctx: CommandContext, arg: str) -> Outcome:
    """List recent conversations, or resume one.

    ID may be a unique prefix of a session id, or "latest".
    """
    from mcode.memory.sessions import SessionLog, SessionNotFound

    log = SessionLog(ctx.settings.paths.sessions)
    if not arg:
        infos = log.sessions(limit=RECENT_SESSIONS)
        if not infos:
            ctx.say("No earlier conversations in this repository.")
            return None
        table = Table("session", "updated", "messages", "title", box=None, pad_edge=False)
        for info in infos:
            mark = " *" if info.id == ctx.session.session_id else ""
            when = info.updated.astimezone().strftime("%Y-%m-%d %H:%M")
            table.add_row(info.id + mark, when, str(info.messages), info.title)
        ctx.console.print(table)
        ctx.say("/resume ID continues one.", "dim")
        return None
    try:
        session = ctx.replace_session(arg)
    except SessionNotFound as exc:
        ctx.error(str(exc))
        return None
    info = log.info(session.session_id)
    ctx.say(f"Resumed session {info.id}: {info.title or 'untitled'} ({info.messages} messages).")
    return None


def cmd_init(ctx: CommandContext, arg: str) -> Outcome:
    """Fill the project block from the repository.

    Manifests, CI files, AGENTS.md / CLAUDE.md and the git log; hand edits are never clobbered.
    """
    from mcode.memory.blocks import BlockStoreError
    from mcode.memory.init import run_init

    try:
        result = run_init(ctx.settings.paths)
    except BlockStoreError as exc:
        ctx.error(str(exc))
        return None
    if result.status == "refused":
        ctx.error(
            "the generated part of the project block was edited by hand since the last init; "
            "nothing was changed (run `mcode init --force` in a shell to replace it)"
        )
        return None
    ctx.say(f"project: {result.status} ({len(result.value)}/{result.limit} chars)")
    if result.instructions:
        ctx.say(f"  instructions imported: {', '.join(i.path for i in result.instructions)}")
    if result.copied:
        ctx.say(f"  created: {', '.join(result.copied)}")
    for warning in result.warnings:
        ctx.say(f"  warning: {warning}", "yellow")
    return None


def cmd_exit(ctx: CommandContext, arg: str) -> Outcome:
    """Leave mcode (Ctrl-D does the same)."""
    return Exit(0)


COMMANDS: dict[str, Command] = {
    "help": Command("help", cmd_help),
    "model": Command("model", cmd_model, "[NAME]"),
    "memory": Command("memory", cmd_memory, "[list | show LABEL]"),
    "remember": Command("remember", cmd_remember, "TEXT"),
    "search": Command("search", cmd_search, "QUERY"),
    "map": Command("map", cmd_map, "[TOKENS]"),
    "context": Command("context", cmd_context),
    "compact": Command("compact", cmd_compact),
    "undo": Command("undo", cmd_undo),
    "diff": Command("diff", cmd_diff),
    "commit": Command("commit", cmd_commit, "[MESSAGE]"),
    "clear": Command("clear", cmd_clear),
    "resume": Command("resume", cmd_resume, "[ID]"),
    "init": Command("init", cmd_init),
    "exit": Command("exit", cmd_exit),
}


def command_help() -> dict[str, str]:
    """Name -> one-line help, for completion."""
    return {name: command.help for name, command in COMMANDS.items()}


def is_command(line: str) -> bool:
    return line.startswith("/")


def run_command(ctx: CommandContext, line: str) -> Outcome:
    """Run one `/name arguments` line."""
    name, _, arg = line.strip()[1:].partition(" ")
    command = COMMANDS.get(name)
    if command is None:
        ctx.error(f"unknown command /{name}; /help lists the commands")
        return None
    return command.handler(ctx, arg.strip())
