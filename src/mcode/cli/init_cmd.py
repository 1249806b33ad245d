"""`mcode init`: build the `project` block from the repository, without a model.

The command parses its flags and delegates to `mcode.memory.init.run_init`; it only decides how
the result is shown and which exit code it earns.
"""

from __future__ import annotations

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
)

if TYPE_CHECKING:  # the scanner loads only when the command runs: `mcode --help` stays fast
    from mcode.memory.init import InitResult
    from mcode.survey.scan import CommitStyle

RepoOption = Annotated[
    Path | None, typer.Option("--repo", help=REPO_OPTION_HELP, show_default=False)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ForceOption = Annotated[
    bool,
    typer.Option("--force", help="Replace the generated part even if someone edited it by hand."),
]
DiffOption = Annotated[
    bool,
    typer.Option(
        "--diff", "--dry-run", help="Show the change to the project block; change nothing."
    ),
]

_REFUSED = (
    "the generated part of the project block was edited by hand since the last init; "
    "nothing was changed (the proposal is on stdout; pass --force to replace it)"
)


def init(
    repo: RepoOption = None,
    force: ForceOption = False,
    dry_run: DiffOption = False,
    as_json: JsonOption = False,
) -> None:
    """Create .agentmemory and fill the project block from the repo: languages, layout, commands
    from manifests and CI, commit style, and AGENTS.md / CLAUDE.md / CONVENTIONS.md / .cursorrules.
    Safe to re-run: only the part between the mcode:init markers is regenerated."""
    from mcode.memory.blocks import BlockStoreError, WriteRefusedError
    from mcode.memory.init import run_init

    paths = resolve_paths(repo)
    try:
        result = run_init(paths, force=force, dry_run=dry_run)
    except WriteRefusedError as exc:
        fail(str(exc), EXIT_USAGE)
    except BlockStoreError as exc:
        fail(str(exc), EXIT_FAILURE)
    if as_json:
        print_json(result_json(result))
    elif dry_run or result.status == "refused":
        typer.echo(result.diff.rstrip("\n") if result.diff else "project: no changes")
    else:
        typer.echo(_summary(result))
    for warning in result.warnings:
        typer.echo(f"mcode: warning: {warning}", err=True)
    if result.status == "refused":
        fail(_REFUSED, EXIT_FAILURE)


def _summary(result: InitResult) -> str:
    chars = len(result.value)
    head = f"project: {result.status} ({chars}/{result.limit} chars"
    head += f", change {result.entry.id})" if result.entry is not None else ")"
    lines = [head]
    if result.limit_raised_from is not None:
        lines.append(
            f"  limit raised from {result.limit_raised_from} to {result.limit} "
            "to fit the imported instructions"
        )
    scan = result.scan
    if scan.languages:
        langs = ", ".join(f"{name} ({n})" for name, n in scan.languages[:5])
        lines.append(f"  languages: {langs}")
    if scan.commands:
        kinds = ", ".join(dict.fromkeys(c.kind for c in scan.commands))
        lines.append(f"  commands: {len(scan.commands)} ({kinds})")
    if scan.commit_style is not None:
        lines.append(f"  commit style: from {scan.commit_style.sampled} commits")
    if result.instructions:
        names = ", ".join(i.path for i in result.instructions)
        lines.append(f"  instructions imported: {names}")
    if result.copied:
        lines.append(f"  created: {', '.join(result.copied)}")
    return "\n".join(lines)


def result_json(result: InitResult) -> dict[str, Any]:
    scan = result.scan
    style = scan.commit_style
    return {
        "status": result.status,
        "changed": result.changed,
        "block": {
            "label": "project",
            "path": str(result.path) if result.path else None,
            "chars": len(result.value),
            "limit": result.limit,
        },
        "entry": result.entry.id if result.entry is not None else None,
        "limit_raised_from": result.limit_raised_from,
        "languages": [{"name": name, "files": n} for name, n in scan.languages],
        "commands": [
            {"kind": c.kind, "command": c.command, "source": c.source, "detail": c.detail}
            for c in scan.commands
        ],
        "tools": list(scan.tools),
        "commit_style": None if style is None else {"summary": style.describe(), **_style(style)},
        "instructions": [
            {"path": i.path, "imported_by": i.imported_by, "omitted_bytes": i.omitted_bytes}
            for i in result.instructions
        ],
        "created": result.copied,
        "diff": result.diff,
        "warnings": result.warnings,
    }


def _style(style: CommitStyle) -> dict[str, Any]:
    return {
        "sampled": style.sampled,
        "conventional": round(style.conventional, 2),
        "types": list(style.types),
        "imperative": round(style.imperative, 2),
        "median_length": style.median_length,
    }
