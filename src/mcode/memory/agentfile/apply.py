"""Import, second half: write a checked plan into this repository. Blocks go through the block
store (locked, checked, recorded as "import"); a block someone wrote is not replaced unless forced;
settings go into the project config, every other line of it kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from mcode.config import read_toml
from mcode.config.toml_edit import update_toml_file
from mcode.fsio import read_bytes
from mcode.memory.agentfile.plan import ImportPlan, PlannedBlock, plan_import, shown_value
from mcode.memory.blocks import BlockStore, ConflictError
from mcode.memory.defaults import template_text
from mcode.memory.frontmatter import BlockContent, FrontMatterError, parse_block

ACTOR = "import"

MessageSink = Callable[[list[dict[str, Any]]], None]


class ImportConflictError(Exception):
    """Blocks in the repository differ from the file's; nothing was written."""


class ImportedBlock(NamedTuple):
    label: str
    scope: str
    status: str  # "created", "updated" or "unchanged"


@dataclass(slots=True)
class ImportReport:
    agent: str
    blocks: list[ImportedBlock]
    config: dict[str, Any]  # keys written to the project config (None: removed)
    messages: int  # handed to the sink
    messages_not_imported: int
    notes: list[str]


def import_agent_file(
    doc: dict[str, Any],
    store: BlockStore,
    config_path: Path,
    *,
    source: str = "the file",
    model: str | None = None,
    embedding: str | None = None,
    force: bool = False,
    message_sink: MessageSink | None = None,
) -> ImportReport:
    """Write the file's blocks and settings into this repository (its config at `config_path`).

    Refuses, writing nothing, when a block exists here with other content, unless `force`; a
    default block nobody has edited does not count. `model` and `embedding` replace the file's.
    """
    plan = plan_import(doc, source)
    current = {p.label: _existing(store, p) for p in plan.blocks}
    conflicts = [
        (p, c)
        for p in plan.blocks
        if (c := current[p.label]) is not None and not _same(c, p.content) and not _default(p, c)
    ]
    locked = [p.label for p, c in conflicts if c.read_only]
    if locked:
        raise ImportConflictError(
            f"read-only blocks differ from the file's: {', '.join(locked)}; edit them by hand"
        )
    if conflicts and not force:
        labels = ", ".join(f"{p.label} ({p.scope})" for p, _ in conflicts)
        raise ImportConflictError(
            f"blocks already exist here with other content: {labels}; "
            "nothing was imported (pass --force to replace them)"
        )
    read_toml(config_path)  # a broken config stops the import before any block is written
    written = [_write_block(store, p, current[p.label], source) for p in plan.blocks]
    config = update_toml_file(
        config_path, _config_values(plan, model, embedding), note="Set by `mcode import`."
    )
    sent = 0
    if plan.messages and message_sink is not None:
        message_sink(plan.messages)
        sent = len(plan.messages)
    notes = list(plan.notes)
    notes += [
        f"block {shown_value(p.renamed_from)} imported as {p.label!r}"
        for p in plan.blocks
        if p.renamed_from
    ]
    return ImportReport(plan.agent_name, written, config, sent, len(plan.messages) - sent, notes)


def _existing(store: BlockStore, planned: PlannedBlock) -> BlockContent | None:
    path = store.scope(planned.scope).block_path(planned.label)
    try:
        return parse_block(read_bytes(path).decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, FrontMatterError) as exc:
        raise ImportConflictError(
            f"{path}: cannot be read ({exc}); fix or remove it first"
        ) from exc


def _same(a: BlockContent, b: BlockContent) -> bool:
    return (a.value, a.description, a.limit, a.read_only) == (
        b.value,
        b.description,
        b.limit,
        b.read_only,
    )


def _default(planned: PlannedBlock, current: BlockContent) -> bool:
    """The block is still mcode's default text: nobody's work is lost by replacing it."""
    text = template_text(planned.label)
    return text is not None and _same(parse_block(text), current)


def _write_block(
    store: BlockStore, planned: PlannedBlock, snapshot: BlockContent | None, source: str
) -> ImportedBlock:
    if snapshot is not None and _same(snapshot, planned.content):
        return ImportedBlock(planned.label, planned.scope, "unchanged")

    def change(now: BlockContent | None) -> BlockContent:
        if now != snapshot:
            raise ConflictError(f"memory block {planned.label!r} changed during the import")
        extra = {**(now.extra if now is not None else {}), **planned.content.extra}
        return replace(planned.content, extra=extra)

    store.update(
        planned.label,
        change,
        actor=ACTOR,
        reason=f"mcode import {source}",
        op="create" if snapshot is None else "set",
        scope=planned.scope,
    )
    return ImportedBlock(planned.label, planned.scope, "created" if snapshot is None else "updated")


def _config_values(plan: ImportPlan, model: str | None, embedding: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if model:
        values["model"] = model
    elif plan.model:
        values["model"] = plan.model
        values["api_base"] = plan.api_base or None
    if embedding or plan.embedding_model:
        values["embedding_model"] = embedding or plan.embedding_model
    if plan.weak_model:
        values["weak_model"] = plan.weak_model
    if plan.fallbacks:
        values["fallbacks"] = plan.fallbacks
    return values
