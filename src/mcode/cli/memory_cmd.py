"""`mcode memory`: read, change, review and revert the memory blocks from the shell.

Each command parses its arguments and delegates to `BlockStore`; every change goes through the same
checked, locked, recorded path the agent's tools use, with the user as the actor.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from mcode.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    REPO_OPTION_HELP,
    fail,
    print_json,
    read_text_argument,
    resolve_paths,
)
from mcode.memory.blocks import (
    PROJECT,
    USER,
    Block,
    BlockNotFoundError,
    BlockStore,
    BlockStoreError,
    BrokenBlock,
    ConflictError,
    HistoryEntryNotFoundError,
    InvalidLabelError,
    WriteRefusedError,
    check_label,
    read_only_error,
)
from mcode.memory.frontmatter import (
    BlockContent,
    FrontMatterError,
    parse_block_with_header,
    render_block,
)
from mcode.memory.history import HistoryEntry

memory_app = typer.Typer(
    help="Show, change, review and revert memory blocks (the notes mcode keeps in every prompt).",
    no_args_is_help=True,
)

ACTOR = "user"
# Lessons are usually list items: `append lessons "- never …"` must not be taken for an option.
# Click reads such a word as a bundle of short options, so no short option may exist here: `-h`
# would find the "h" of "the" and print the help.
_TEXT_MAY_START_WITH_DASH = {"ignore_unknown_options": True, "help_option_names": ["--help"]}

RepoOption = Annotated[Path | None, typer.Option("--repo", help=REPO_OPTION_HELP)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why you make this change (kept in its history).")
]
LabelArgument = Annotated[str, typer.Argument(help="The block's label, e.g. project.")]
TextArgument = Annotated[str, typer.Argument(help="The text, or '-' to read it from stdin.")]
UserOption = Annotated[
    bool, typer.Option("--user", help="Create the block in your user directory, for every repo.")
]


@contextlib.contextmanager
def _reporting() -> Iterator[None]:
    """Store errors as the exit codes of the contract: 2 for the user's input, 1 otherwise."""
    try:
        yield
    except (
        InvalidLabelError,
        BlockNotFoundError,
        WriteRefusedError,
        HistoryEntryNotFoundError,
    ) as exc:
        fail(str(exc), EXIT_USAGE)
    except BlockStoreError as exc:
        fail(str(exc), EXIT_FAILURE)


def _open_store(repo: Path | None) -> BlockStore:
    store = BlockStore.for_paths(resolve_paths(repo))
    store.ensure_defaults()
    return store


def _summary(label: str, entry: HistoryEntry | None) -> str:
    if entry is None:
        return f"{label}: unchanged"
    if entry.new is None:
        return f"{label}: deleted (change {entry.id})"
    return f"{label}: {entry.new.chars}/{entry.new.limit} chars (change {entry.id})"


# Reading -----------------------------------------------------------------------------------------


def _entry_json(entry: Block | BrokenBlock) -> dict[str, Any]:
    if isinstance(entry, BrokenBlock):
        return {
            "label": entry.label,
            "scope": entry.scope,
            "path": str(entry.path),
            "chars": None,
            "limit": None,
            "read_only": None,
            "description": None,
            "error": entry.error,
        }
    return {
        "label": entry.label,
        "scope": entry.scope,
        "path": str(entry.path),
        "chars": entry.chars,
        "limit": entry.limit,
        "read_only": entry.read_only,
        "description": entry.description,
        "error": None,
    }


@memory_app.command("list")
def list_blocks(repo: RepoOption = None, as_json: JsonOption = False) -> None:
    """List the blocks in force: scope, characters used against the limit, flags, description."""
    with _reporting():
        entries = _open_store(repo).entries()
    if as_json:
        print_json({"blocks": [_entry_json(e) for e in entries]})
        return
    from mcode.repl.listing import block_table  # rich loads only when a table is printed

    typer.echo(block_table(entries).plain)
    broken = sum(isinstance(e, BrokenBlock) for e in entries)
    if broken:
        typer.echo(f"mcode: {broken} block file(s) cannot be read; fix them by hand", err=True)


@memory_app.command()
def show(label: LabelArgument, repo: RepoOption = None, as_json: JsonOption = False) -> None:
    """Print a block's text."""
    with _reporting():
        block = _open_store(repo).get(label)
    if as_json:
        print_json({**_entry_json(block), "value": block.value})
    elif block.value:
        typer.echo(block.value)


# Changing ----------------------------------------------------------------------------------------


@memory_app.command("set", context_settings=_TEXT_MAY_START_WITH_DASH)
def set_block(
    label: LabelArgument,
    text: TextArgument,
    repo: RepoOption = None,
    description: Annotated[
        str | None, typer.Option("--description", help="Also set what the block is for.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Also set the limit in characters.")
    ] = None,
    user: UserOption = False,
    reason: ReasonOption = None,
) -> None:
    """Replace a block's text, creating the block if needed."""
    value = read_text_argument(text)
    with _reporting():
        entry = _open_store(repo).set_value(
            label,
            value,
            actor=ACTOR,
            reason=reason or "mcode memory set",
            scope=USER if user else None,
            description=description,
            limit=limit,
        )
    typer.echo(_summary(label, entry))


@memory_app.command(context_settings=_TEXT_MAY_START_WITH_DASH)
def append(
    label: LabelArgument,
    text: TextArgument,
    repo: RepoOption = None,
    user: UserOption = False,
    reason: ReasonOption = None,
) -> None:
    """Add text as new lines at the end of a block, creating the block if needed."""
    addition = read_text_argument(text)
    with _reporting():
        entry = _open_store(repo).append(
            label,
            addition,
            actor=ACTOR,
            reason=reason or "mcode memory append",
            scope=USER if user else None,
        )
    typer.echo(_summary(label, entry))


@memory_app.command("rm")
def remove(label: LabelArgument, repo: RepoOption = None, reason: ReasonOption = None) -> None:
    """Delete a block (its history stays, so `revert` can bring it back)."""
    with _reporting():
        entry = _open_store(repo).delete(label, actor=ACTOR, reason=reason or "mcode memory rm")
    typer.echo(_summary(label, entry))


def _run_editor(path: Path) -> None:
    # EDITOR first, as documented; VISUAL as the usual fallback.
    editor = os.environ.get("EDITOR") or os.environ.get("VISUAL") or "vi"
    try:
        done = subprocess.run([*shlex.split(editor), str(path)], check=False)
    except OSError as exc:
        path.unlink(missing_ok=True)
        fail(f"cannot run editor {editor!r}: {exc.strerror or exc}")
    if done.returncode != 0:
        path.unlink(missing_ok=True)
        fail(f"editor exited with status {done.returncode}; nothing was changed")


@memory_app.command()
def edit(label: LabelArgument, repo: RepoOption = None, reason: ReasonOption = None) -> None:
    """Edit a block, front matter included, in $EDITOR; the result is checked before it is saved."""
    with _reporting():
        store = _open_store(repo)
        before = store.find(check_label(label))
        if before is not None and before.read_only:
            raise read_only_error(before)  # before the user spends time in the editor
    original = (
        render_block(before.content, before.header)
        if before is not None
        else render_block(BlockContent(value=""))
    )
    handle, name = tempfile.mkstemp(prefix=f"mcode-{label}-", suffix=".md")
    draft = Path(name)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(original)
    # A session's background consolidation leaves the block alone until this edit is saved.
    with _reporting(), store.editing(label, before.scope if before is not None else PROJECT):
        _save_edit(store, label, before, original, draft, reason)


def _save_edit(
    store: BlockStore,
    label: str,
    before: Block | None,
    original: str,
    draft: Path,
    reason: str | None,
) -> None:
    """The rest of `edit`, run while the block is marked as being edited by a person."""
    _run_editor(draft)
    edited = draft.read_text(encoding="utf-8")
    kept = f"; your edit is kept in {draft}"
    try:
        content, header = parse_block_with_header(edited)
    except FrontMatterError as exc:
        fail(f"{label}: {exc}; nothing was changed{kept}", EXIT_USAGE)
    if edited == original or (before is not None and content == before.content):
        draft.unlink()
        typer.echo(f"{label}: unchanged")
        return
    expected = before.content if before is not None else None

    def change(current: BlockContent | None) -> BlockContent:
        if current != expected:
            raise ConflictError(f"memory block {label!r} changed while you were editing it")
        return content

    try:
        entry = store.update(
            label,
            change,
            actor=ACTOR,
            reason=reason or "mcode memory edit",
            op="edit",
            scope=before.scope if before is not None else None,
            header=header,
        )
    except (WriteRefusedError, InvalidLabelError) as exc:
        fail(f"{exc}{kept}", EXIT_USAGE)
    except BlockStoreError as exc:
        fail(f"{exc}{kept}", EXIT_FAILURE)
    draft.unlink()
    typer.echo(_summary(label, entry))


# Reviewing ---------------------------------------------------------------------------------------


def _sizes(entry: HistoryEntry) -> str:
    if entry.old is None:
        return f"new, {_chars(entry.new)}"
    if entry.new is None:
        return "deleted"
    return f"{entry.old.chars}->{entry.new.chars} chars"


def _chars(content: BlockContent | None) -> str:
    return "" if content is None else f"{content.chars} chars"


@memory_app.command()
def log(label: LabelArgument, repo: RepoOption = None, as_json: JsonOption = False) -> None:
    """Show every recorded change to a block: id, time, who, what and why."""
    with _reporting():
        store = _open_store(repo)
        entries = store.log(label)
        if not entries and store.find(label) is None:
            raise store.not_found(label)
    if as_json:
        rows = [{**e.to_json(), "scope": e.scope} for e in entries]
        print_json({"label": label, "entries": rows})
        return
    for e in entries:
        line = f"{e.id}  {e.time}  {e.actor:<6}  {e.op:<8}  {_sizes(e):<18}  {e.reason}"
        typer.echo(line.rstrip())


@memory_app.command()
def revert(
    label: LabelArgument,
    entry_id: Annotated[str, typer.Argument(help="The change to undo, as shown by `log`.")],
    repo: RepoOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Revert even if the block changed since.")
    ] = False,
    reason: ReasonOption = None,
) -> None:
    """Undo one change: put the block back as it was before it (its history records the revert)."""
    with _reporting():
        entry = _open_store(repo).revert(
            label, entry_id, actor=ACTOR, reason=reason or "", force=force
        )
    typer.echo(_summary(label, entry))
