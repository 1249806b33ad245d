"""`mcode sleep` (one sleep-time pass, its dry run and its status) and `mcode summary PATH`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mcode.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, fail, print_json, resolve_settings
from mcode.cli.index_cmds import JsonOption, RepoOption

if TYPE_CHECKING:
    from mcode.config import Settings
    from mcode.sleep.run import PassReport
    from mcode.sleep.trigger import QuietTrigger


def sleep(
    repo: RepoOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be summarised, and its tokens.")
    ] = False,
    status: Annotated[
        bool, typer.Option("--status", help="Today's spend, the queue and the oldest change.")
    ] = False,
    paths: Annotated[
        list[str] | None,
        typer.Option("--paths", metavar="PATH", help="Only files under this path (repeatable)."),
    ] = None,
    budget_tokens: Annotated[
        int | None,
        typer.Option(
            "--budget-tokens",
            min=0,
            metavar="N",
            help="This pass's token cap, instead of sleep_pass_tokens.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Bring module summaries up to date with the index (and, with sleep_model, consolidate core
    memory): one sleep-time pass in the foreground."""
    from mcode.retrieval.workspace import IndexMissingError
    from mcode.sleep import PassOptions, run_pass, sleep_status
    from mcode.store import IndexLockedError

    if status and dry_run:
        fail("--status and --dry-run are separate questions: give one", EXIT_USAGE)
    settings = resolve_settings(repo)
    only = tuple(_repo_relative(settings.paths.repo, p) for p in paths or ())
    try:
        if status:
            data = sleep_status(settings)
            if json_output:
                print_json(data)
            else:
                typer.echo(_status_text(data))
            return
        from mcode.cli.progress import progress_for_terminal

        options = PassOptions(paths=only, dry_run=dry_run, budget_tokens=budget_tokens)
        report = run_pass(settings, options, progress=progress_for_terminal())
    except IndexMissingError as exc:
        fail(str(exc))
    except IndexLockedError as exc:
        fail(f"another sleep pass is running ({exc.holder}); wait for it or stop it")
    except KeyboardInterrupt:
        fail("interrupted: nothing was lost; run `mcode sleep` again", EXIT_INTERRUPTED)
    data = report.as_json()
    if json_output:
        print_json(data)
    else:
        typer.echo(_pass_text(data))
    if report.stopped == "interrupted":
        fail(
            "interrupted: every summary made is kept; run `mcode sleep` again to finish",
            EXIT_INTERRUPTED,
        )


def start_watch_trigger(settings: Settings) -> QuietTrigger:
    """What `mcode watch` adds: a pass once files have been quiet for `sleep_quiet_seconds`,
    reported in a line on stderr; it stops early when edits resume, and resumes later."""
    from mcode.sleep.trigger import pass_when_quiet

    def report(report: PassReport) -> None:
        data = report.as_json()
        if data["files"] or data["dirs"] or data["deleted"] or data["stopped"]:
            typer.echo("sleep: " + _pass_text(data).replace("\n", "; "), err=True)

    return pass_when_quiet(
        settings,
        "mcode watch",
        on_report=report,
        on_skip=lambda why: typer.echo(f"sleep pass skipped: {why}", err=True),
        on_error=lambda exc: typer.echo(f"sleep pass failed: {exc}", err=True),
    )


def summary(
    path: Annotated[str, typer.Argument(help="A file or directory of the repository.")],
    repo: RepoOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a module's or a directory's summary from archival memory."""
    from mcode.retrieval.workspace import IndexMissingError, open_manifest
    from mcode.store.summaries import SummaryStore

    settings = resolve_settings(repo)
    rel = _repo_relative(settings.paths.repo, path)
    try:
        manifest = open_manifest(settings)
    except IndexMissingError as exc:
        fail(str(exc))
    try:
        indexed = manifest.versions()
    finally:
        manifest.close()
    store = SummaryStore(settings.paths.summaries)
    found = store.get("file", rel) or store.get("dir", rel)
    if found is None:
        known = rel in indexed or any(p.startswith(rel + "/") for p in indexed) or rel == "."
        if not known:
            fail(f"{path} is not in the index (see `mcode index --json` for what is skipped)")
        fail(f"{path} has no summary yet: run `mcode sleep`")
    current = found.level == "dir" or indexed.get(rel, ("",))[0] == found.file_hash
    if json_output:
        print_json(
            {
                "path": found.path,
                "level": found.level,
                "text": found.text,
                "generator": found.generator,
                "time": found.time.isoformat().replace("+00:00", "Z"),
                "tokens": found.tokens,
                "source_hash": found.source_hash,
                "current": current,
            }
        )
        return
    stamp = found.time.isoformat(timespec="seconds").replace("+00:00", "Z")
    typer.echo(found.text)
    typer.echo(f"\n({found.generator}, {stamp}" + ("" if current else "; out of date") + ")")
    if not current:
        typer.echo(f"{path} changed since: `mcode sleep` refreshes it", err=True)


def _repo_relative(root: Path, path: str) -> str:
    """A path as typed (relative to the current directory, or absolute) as the index names it;
    a path that does not exist here is taken as already relative to the repository."""
    candidate = Path(path).expanduser()
    if not candidate.is_absolute() and not candidate.exists():
        return path.strip("/") or "."
    real = Path(os.path.abspath(candidate))
    try:
        rel = real.relative_to(Path(os.path.abspath(root)))
    except ValueError:
        fail(f"{path} lies outside the repository {root}", EXIT_USAGE)
    return rel.as_posix() if rel.parts else "."


def _pass_text(data: dict[str, Any]) -> str:
    files = data["files"]
    lines = []
    if data["dry_run"]:
        for entry in files:
            lines.append(f"{entry['reason']:>8}  {entry['path']}")
        verb = "would summarise"
    else:
        verb = "summarised"
    lines.append(
        f"{verb} {len(files)} file{'s' if len(files) != 1 else ''} and {data['dirs']} "
        f"director{'ies' if data['dirs'] != 1 else 'y'}; {data['touched']} kept (only comments "
        f"or whitespace changed), {data['deleted']} removed"
    )
    if data["generators"]:
        lines.append("by " + ", ".join(f"{g} {n}" for g, n in sorted(data["generators"].items())))
    tokens = f"{data['tokens']:,} tokens" + (" (estimated)" if data["dry_run"] else "")
    lines.append(f"model: {data['model']}, {tokens}" if data["model"] else "no model: 0 tokens")
    if data["note"]:
        lines.append(data["note"])
    memory = data.get("memory") or {}
    if memory.get("applied") or memory.get("proposals") or memory.get("refused"):
        lines.append(
            f"memory: {len(memory['applied'])} change(s) ({', '.join(memory['applied']) or '-'}), "
            f"{len(memory['proposals'])} proposal(s) for lines a person wrote (in "
            f".agentmemory/sleep.log), {len(memory['refused'])} refused; `mcode memory log "
            "project` shows them"
        )
    if data["vectors"]:
        lines.append(f"vectors: {data['vectors']} computed")
    if not data["dry_run"]:
        lines.append(f"took {data['seconds']:.2f} s")
    return "\n".join(lines)


def _status_text(data: dict[str, Any]) -> str:
    lines = [
        f"today ({data['today']}, UTC): {data['spent_today']:,} of "
        f"{data['budget_per_day']:,} tokens spent; at most {data['budget_per_pass']:,} a pass",
        f"model: {data['model']}" if data["model"] else "model: none (structural summaries)",
        f"summaries: {data['summaries']}",
    ]
    queue = data["queue"]
    if queue:
        oldest = data["oldest_dirty"]
        lines.append(
            f"queue: {queue} file{'s' if queue != 1 else ''} changed since their summary; "
            f"oldest: {oldest['path']} (changed {oldest['changed']})"
        )
        lines += [f"  {path}" for path in data["queued"]]
        if queue > len(data["queued"]):
            lines.append(f"  … and {queue - len(data['queued'])} more")
    else:
        lines.append("queue: empty, every summary is current")
    if data["model_queue"]:
        lines.append(f"model queue: {data['model_queue']} structural summaries the model may redo")
    for stale in data["stale_memory"]:
        lines.append(
            f"memory {stale['label']}:{stale['line']} names what the index no longer has "
            f"({', '.join(stale['missing'])}): {stale['text']}"
        )
    for proposal in data["proposals"]:
        lines.append(
            f"proposed for {proposal.get('label')} ({proposal.get('time')}): replace "
            f"{proposal.get('old')!r} with {proposal.get('new')!r}"
        )
    last = data["last_pass"]
    if last:
        lines.append(
            f"last pass: {last.get('time')}: {last.get('files')} files, {last.get('dirs')} "
            f"directories, {last.get('tokens')} tokens, {last.get('seconds')} s"
            + (f" (stopped: {last['stopped']})" if last.get("stopped") else "")
        )
    return "\n".join(lines)
