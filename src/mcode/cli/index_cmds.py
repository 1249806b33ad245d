"""`mcode index`, `search`, `map` and `watch`: the commands over archival memory of the code.

Each parses its arguments, opens the workspace and delegates; heavy modules load inside the commands so
`mcode --help` stays fast.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from mcode.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    REPO_OPTION_HELP,
    fail,
    print_json,
    read_text_argument,
    resolve_settings,
)

WATCH_PURPOSE = "mcode watch"  # how the watcher names itself in the index's lock
SNIPPET_LINES = 4  # of each search hit, in the text output

RepoOption = Annotated[
    Path | None, typer.Option("--repo", help=REPO_OPTION_HELP, show_default=False)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _human_report(report: dict) -> str:
    lines = [
        f"indexed {report['files']} files: {report['changed']} changed, "
        f"{report['deleted']} deleted, {report['unchanged']} unchanged; "
        f"{report['total_chunks']} chunks"
    ]
    skipped = report["skipped"]
    if skipped:
        parts = ", ".join(f"{reason} {info['count']}" for reason, info in skipped.items())
        lines.append(f"skipped: {parts}")
    if report["syntax_errors"]:
        lines.append(f"parsed with syntax errors: {len(report['syntax_errors'])} files")
    if report["embedder"] != "none":
        lines.append(
            f"vectors: {report['vectors_written']} computed, {report['vectors_pending']} pending"
            f" ({report['embedder']})"
        )
    return "\n".join(lines)


def _open_writer(settings, progress=None, purpose="mcode index"):
    from mcode.embed import EmbedderUnavailable
    from mcode.retrieval.live import SESSION_PURPOSE
    from mcode.retrieval.workspace import open_writer
    from mcode.store import IndexLockedError

    try:
        return open_writer(settings, progress, purpose)
    except IndexLockedError as exc:
        if exc.holder.startswith((WATCH_PURPOSE, SESSION_PURPOSE)):
            fail(
                f"{exc.holder} is keeping this index up to date (changed files, and the whole "
                f"tree when an ignore file changes) and holds its lock; stop it to run {purpose}"
            )
        fail(str(exc))
    except (EmbedderUnavailable, ValueError) as exc:
        fail(str(exc), EXIT_USAGE)


def index(
    repo: RepoOption = None,
    json_output: JsonOption = False,
    no_embed: Annotated[
        bool,
        typer.Option(
            "--no-embed", help="Skip vectors now (lexical search only until a later run)."
        ),
    ] = False,
    max_file_bytes: Annotated[
        int | None, typer.Option("--max-file-bytes", help="Skip files larger than this.")
    ] = None,
) -> None:
    """Build or update archival memory of the code (incremental: unchanged files cost a stat)."""
    from mcode.cli.progress import progress_for_terminal
    from mcode.embed import EmbedderUnavailable

    settings = resolve_settings(repo, max_file_bytes=max_file_bytes)
    started = time.perf_counter()
    indexer, lock = _open_writer(settings, progress_for_terminal())
    try:
        report = indexer.update(embed=not no_embed)
    except EmbedderUnavailable as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail(
            "interrupted: what was written is kept; run `mcode index` again to finish",
            EXIT_INTERRUPTED,
        )
    finally:
        lock.release()
    data = report.as_json()
    data["seconds"] = round(time.perf_counter() - started, 3)
    if json_output:
        print_json(data)
    else:
        typer.echo(_human_report(data) + f"\ntook {data['seconds']:.2f} s")


def _open_reader(settings):
    from mcode.embed import EmbedderUnavailable
    from mcode.retrieval.workspace import IndexMissingError, Workspace

    try:
        return Workspace.open_reader(settings)
    except IndexMissingError as exc:
        fail(str(exc))
    except (EmbedderUnavailable, ValueError) as exc:
        fail(str(exc), EXIT_USAGE)


def search(
    query: Annotated[str, typer.Argument(help="What to look for; '-' reads it from stdin.")],
    repo: RepoOption = None,
    k: Annotated[int, typer.Option("-k", help="How many results.", min=1, max=1000)] = 10,
    level: Annotated[str, typer.Option("--level", help="symbol or file")] = "symbol",
    json_output: JsonOption = False,
) -> None:
    """Search archival memory of the code: prose, identifiers, paths or a whole bug report."""
    if level not in ("symbol", "file"):
        fail(f"--level must be 'symbol' or 'file', not {level!r}", EXIT_USAGE)
    text = read_text_argument(query)
    if not text.strip():
        fail("the query is empty", EXIT_USAGE)
    settings = resolve_settings(repo)
    workspace = _open_reader(settings)
    searcher = workspace.searcher()
    results = searcher.search(text, k=k, level=level)
    if failed := workspace.vectors_failed or searcher.vectors_failed:
        typer.echo(f"note: ranked by words only: {failed}", err=True)
    if json_output:
        print_json({"results": [r.as_json() for r in results]})
        return
    if not results:
        typer.echo("no results")
        return
    from mcode.repl.listing import search_hit

    for result in results:
        typer.echo(search_hit(result, SNIPPET_LINES, result.score).plain)


def repo_map(
    repo: RepoOption = None,
    tokens: Annotated[int, typer.Option("--tokens", help="Token budget.", min=1)] = 1024,
    focus: Annotated[
        list[str] | None, typer.Option("--focus", help="A file in play (repeatable).")
    ] = None,
    query: Annotated[str, typer.Option("--query", help="Personalise the ranking by a task.")] = "",
    json_output: JsonOption = False,
) -> None:
    """Print a ranked outline of the repository (files and key definitions) within a token budget."""
    from mcode.retrieval.outline import repo_map_from_manifest, unmapped_paths
    from mcode.retrieval.workspace import IndexMissingError, open_manifest

    settings = resolve_settings(repo)
    try:
        manifest = open_manifest(settings)
    except IndexMissingError as exc:
        fail(str(exc))
    focus = [_repo_relative(path, settings.paths.repo) for path in focus or ()]
    unknown = unmapped_paths(manifest, focus)
    if unknown:
        fail(
            f"--focus {unknown[0]}: no such file in the index of {settings.paths.repo}"
            " (a path from the repository's top; run `mcode index` if the file is new)",
            EXIT_USAGE,
        )
    result = repo_map_from_manifest(manifest, tokens, focus_files=focus, query=query)
    if json_output:
        print_json(
            {
                "tokens": result.tokens,
                "files": [
                    {
                        "path": e.path,
                        "score": round(e.score, 6),
                        "definitions": [
                            {
                                "symbol": d.symbol,
                                "kind": d.kind,
                                "line": d.line,
                                "signature": d.signature,
                            }
                            for d in e.definitions
                        ],
                    }
                    for e in result.entries
                ],
            }
        )
    else:
        sys.stdout.write(
            result.text + ("\n" if result.text and not result.text.endswith("\n") else "")
        )


def _repo_relative(path: str, root: Path) -> str:
    """A path as given from the repository's top, or from here when it names a file here."""
    given = Path(path)
    if not given.is_absolute() and not given.is_file():
        return path
    try:
        return given.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path


def watch(repo: RepoOption = None) -> None:
    """Keep archival memory fresh as files change, until interrupted (Ctrl-C); once files are
    quiet (`sleep_quiet_seconds`), a sleep pass brings module summaries up to date."""
    import threading

    from mcode.watch import IndexFollower

    settings = resolve_settings(repo)
    indexer, lock = _open_writer(settings, None, WATCH_PURPOSE)

    from mcode.cli.sleep_cmd import start_watch_trigger

    sleep_pass = start_watch_trigger(settings)

    def updated(paths: list[str], result, elapsed: float) -> None:
        typer.echo(
            f"updated {result.changed} changed, {result.deleted} deleted "
            f"({len(paths)} paths) in {elapsed:.0f} ms",
            err=True,
        )
        sleep_pass.mark()

    follower = IndexFollower(indexer, on_update=updated)
    try:
        # Watch first, so nothing changed during the first pass is missed.
        with follower:
            with follower.turns.turn():
                report = indexer.update()
            typer.echo(_human_report(report.as_json()), err=True)
            typer.echo(f"watching {follower.watched_dirs} directories; Ctrl-C to stop", err=True)
            sleep_pass.mark()  # summaries catch up with the index once it is quiet
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    finally:
        sleep_pass.stop(timeout=10)  # a pass under way stops at its next summary
        lock.release()
