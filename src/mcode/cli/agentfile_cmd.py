"""`mcode export FILE.af` and `mcode import FILE.af`: move memory and settings between repositories,
machines, and systems that read the Agent File format (Letta).

The commands parse arguments and delegate to `mcode.memory.agentfile`. Recent messages come from,
and imported ones go to, the two seams below (`recent_messages`, `message_sink`), which the session
store plugs into.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mcode.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    REPO_OPTION_HELP,
    fail,
    print_json,
    resolve_paths,
    resolve_settings,
)
from mcode.config import ConfigError, Paths, Settings

if TYPE_CHECKING:  # the format code loads only when a command runs: `mcode --help` stays fast
    from mcode.memory.agentfile import ImportReport, MessageSink

RepoOption = Annotated[
    Path | None, typer.Option("--repo", help=REPO_OPTION_HELP, show_default=False)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of text.")]
FileArgument = Annotated[str, typer.Argument(help="The .af file, or '-' for stdout/stdin.")]


# Seams for the session store ----------------------------------------------------------------------


def recent_messages(paths: Paths, limit: int) -> list[dict[str, Any]]:
    """The last `limit` messages of this repository's sessions, OpenAI-shaped, oldest first."""
    from mcode.fsio import clock
    from mcode.memory.sessions import SessionLog

    log = SessionLog(paths.sessions)
    picked: list[dict[str, Any]] = []
    for info in log.sessions():  # newest session first
        if len(picked) >= limit:
            break
        stored = log.load(info.id)[-(limit - len(picked)) :] if limit > len(picked) else []
        picked = [{**m.to_openai(), "created_at": clock.iso(m.time)} for m in stored] + picked
    return picked[-limit:] if limit else []


def message_sink(paths: Paths) -> MessageSink | None:
    """Imported messages become a new session of this repository (recall indexes it on next open)."""
    from mcode.memory.sessions import SessionLog

    def store(messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        log = SessionLog(paths.sessions)
        session = log.new_session(title="imported from an Agent File")
        for message in messages:
            log.append(session.id, {k: v for k, v in message.items() if k != "created_at"})

    return store


# Export -------------------------------------------------------------------------------------------


def export_af(
    file: FileArgument,
    repo: RepoOption = None,
    messages: Annotated[
        int, typer.Option("--messages", min=0, help="How many recent messages to include.")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """Write this repository's memory blocks, model and embedding settings and recent messages
    to an Agent File (.af), with every secret blanked."""
    from mcode.fsio import atomic_write_text
    from mcode.memory.agentfile import dumps, export_agent
    from mcode.memory.blocks import BlockStore, BlockStoreError
    from mcode.tools import MemoryAccess, builtin_tools

    settings = resolve_settings(repo)
    paths = settings.paths
    store = BlockStore.for_paths(paths)
    try:
        store.ensure_defaults()
        doc = export_agent(
            store,
            settings,
            name=paths.repo.name,
            system=_system_prompt(),
            messages=recent_messages(paths, messages) if messages else [],
            max_messages=messages,
            context_window=_context_window(settings),
            tool_schemas=[
                t.schema()["function"] for t in builtin_tools() if t.access is MemoryAccess
            ],
        )
    except BlockStoreError as exc:
        fail(str(exc), EXIT_FAILURE)
    text = dumps(doc)
    if file == "-":
        sys.stdout.write(text)
    else:
        target = Path(file).expanduser()
        try:
            atomic_write_text(target, text)
        except OSError as exc:
            fail(f"cannot write {target}: {exc.strerror or exc}", EXIT_FAILURE)
    agent = doc["agents"][0]
    summary = {
        "file": file,
        "agent": agent["name"],
        "blocks": len(doc["blocks"]),
        "tools": len(doc["tools"]),
        "messages": len(agent["messages"]),
    }
    if as_json and file != "-":
        print_json(summary)
        return
    typer.echo(
        f"exported {summary['blocks']} blocks, {summary['tools']} tools and "
        f"{summary['messages']} messages to {file}",
        err=file == "-",
    )


def _system_prompt() -> str:
    from mcode.prompts import PromptNotFoundError, load_prompt

    try:
        return load_prompt("system.md")
    except PromptNotFoundError:
        return ""


def _context_window(settings: Settings) -> int | None:
    """The window set in config (`context_window`), else litellm's metadata for the model,
    imported only now: it is slow to load."""
    configured = settings.extra.get("context_window")
    if isinstance(configured, int) and configured > 0:
        return configured
    if not settings.model:
        return None
    from mcode.agent.llm import model_info

    return model_info(settings.model).context_window


# Import -------------------------------------------------------------------------------------------


def import_af(
    file: FileArgument,
    repo: RepoOption = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Use this model instead of the file's.")
    ] = None,
    embedding: Annotated[
        str | None,
        typer.Option("--embedding", help="Use this embedding model instead of the file's."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace blocks that exist here with other content.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Read an Agent File (.af, from mcode or Letta) into this repository: blocks, model and
    embedding settings, and recent messages. Secrets in the file are blanked."""
    from mcode.memory.agentfile import (
        MAX_FILE_BYTES,
        AgentFileError,
        ImportConflictError,
        import_agent_file,
        load_agent_file,
    )
    from mcode.memory.blocks import BlockStore, BlockStoreError, WriteRefusedError

    source = "stdin" if file == "-" else file
    raw = _read_input(file, MAX_FILE_BYTES)
    paths = resolve_paths(repo)
    store = BlockStore.for_paths(paths)
    try:
        doc = load_agent_file(raw, source)
        report = import_agent_file(
            doc,
            store,
            paths.project_config,
            source=source,
            model=model,
            embedding=embedding,
            force=force,
            message_sink=message_sink(paths),
        )
    except (AgentFileError, ConfigError, WriteRefusedError) as exc:
        fail(str(exc), EXIT_USAGE)
    except (ImportConflictError, BlockStoreError) as exc:
        fail(str(exc), EXIT_FAILURE)
    if as_json:
        print_json(_report_json(report))
    else:
        typer.echo(_report_text(report, source))
    for note in report.notes:
        typer.echo(f"mcode: note: {note}", err=True)
    _note_untrusted(paths)


def _note_untrusted(paths: Paths) -> None:
    """Settings an import wrote that need trust are never trusted on the user's behalf: say so."""
    from mcode.config import load_settings
    from mcode.config.trust import PROJECT_CONFIG, TRUST_COMMAND, shown_names

    try:
        ignored = load_settings(paths).trust.ignored
    except ConfigError:
        return  # the next command names the broken file
    if ignored:
        typer.echo(
            f"mcode: note: {shown_names(ignored)} in {PROJECT_CONFIG} apply only once you trust "
            f"the file: review it, then run `{TRUST_COMMAND}`",
            err=True,
        )


def _read_input(file: str, limit: int) -> bytes:
    """The file's bytes, at most `limit` + 1 of them: enough for the importer to refuse a file
    too large without holding all of it."""
    if file == "-":
        return sys.stdin.buffer.read(limit + 1)
    path = Path(file).expanduser()
    try:
        with path.open("rb") as fh:
            return fh.read(limit + 1)
    except FileNotFoundError:
        fail(f"no such file: {path}", EXIT_USAGE)
    except IsADirectoryError:
        fail(f"{path} is a directory, not an agent file", EXIT_USAGE)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", EXIT_USAGE)


def _report_json(report: ImportReport) -> dict[str, Any]:
    return {
        "agent": report.agent,
        "blocks": [
            {"label": label, "scope": scope, "status": status}
            for label, scope, status in report.blocks
        ],
        "config": report.config,
        "messages": report.messages,
        "messages_not_imported": report.messages_not_imported,
        "notes": report.notes,
    }


def _report_text(report: ImportReport, source: str) -> str:
    lines = [f"imported agent {report.agent!r} from {source}"]
    lines += [f"  {label} ({scope}): {status}" for label, scope, status in report.blocks]
    for key, value in report.config.items():
        shown = "removed" if value is None else value
        lines.append(f"  {key}: {shown} (.agentmemory/config.toml)")
    if report.messages:
        lines.append(f"  messages: {report.messages}")
    if report.messages_not_imported:
        lines.append(
            f"  {report.messages_not_imported} messages not imported: no session store to hold them"
        )
    return "\n".join(lines)
