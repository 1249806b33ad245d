"""`mcode review`: review a change against the project's memory, as a hook, in CI, or by hand.

Exit codes: 0 when no finding reaches `--fail-on` (a skipped model part included, unless
`--require-model`), 1 when one does (or the model part was skipped or failed under
`--require-model`, or git failed), 2 for bad usage (a bad ref, conflicting options). The report
goes to stdout in the chosen format; each note (a skipped model, a rule that was ignored) is one
line on stderr, so a hook's output stays readable and a CI's JSON stays parseable.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mcode.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    REPO_OPTION_HELP,
    fail,
    print_json,
    resolve_settings,
)

if TYPE_CHECKING:
    from mcode.config import Paths
    from mcode.review import ReviewReport


def review(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Only these files or directories.", show_default=False),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="Review what the branch adds since REF (git diff REF...HEAD): pre-push, CI.",
            show_default=False,
        ),
    ] = None,
    commit_range: Annotated[
        str | None,
        typer.Option("--range", help="Review the commits A..B.", show_default=False),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="text, json, sarif (2.1.0) or github (annotations).")
    ] = "text",
    json_output: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    fail_on: Annotated[
        str,
        typer.Option(
            "--fail-on", help="Exit 1 when a finding is this severe: error, warning, note."
        ),
    ] = "error",
    require_model: Annotated[
        bool,
        typer.Option(
            "--require-model", help="Exit 1 when the model part is skipped or fails (for CI)."
        ),
    ] = False,
    rules_only: Annotated[
        bool, typer.Option("--rules-only", help="Only the memory's offline rules: no model.")
    ] = False,
    max_tokens: Annotated[
        int | None,
        typer.Option("--max-tokens", help="Spend at most this many tokens.", show_default=False),
    ] = None,
    dismiss: Annotated[
        str | None,
        typer.Option(
            "--dismiss",
            help="Record the last review's finding ID as a false positive.",
            show_default=False,
        ),
    ] = None,
    reason: Annotated[
        str, typer.Option("--reason", help="With --dismiss: why it is a false positive.")
    ] = "",
    repo: Annotated[
        Path | None, typer.Option("--repo", help=REPO_OPTION_HELP, show_default=False)
    ] = None,
) -> None:
    """Review the staged change (or --base/--range) against the project's memory."""
    output_format = "json" if json_output else output_format
    _check_usage(output_format, fail_on, base, commit_range, max_tokens)
    if rules_only and require_model:
        fail("--rules-only runs no model, so --require-model cannot hold", EXIT_USAGE)
    settings = resolve_settings(repo)
    if dismiss is not None:
        _dismiss(settings.paths, dismiss, reason, json_output)
        return
    from mcode.config import pre_push_range
    from mcode.review import ChangeError, ReviewOptions, Target, at_least
    from mcode.review import review as run_review

    pushed = pre_push_range()
    if base:
        target = Target("base", base, tuple(paths or ()))
    elif commit_range or pushed:
        target = Target("range", commit_range or pushed or "", tuple(paths or ()))
    else:
        target = Target.staged(paths or ())
    options = ReviewOptions(rules_only=rules_only, max_tokens=max_tokens)
    try:
        report = run_review(settings, target, options)
    except ChangeError as exc:
        fail(str(exc), EXIT_USAGE if exc.usage else EXIT_FAILURE)
    _print(report, output_format)
    for note in report.notes:
        sys.stderr.write(f"mcode review: {' '.join(note.split())}\n")
    failed = any(at_least(f.severity, fail_on) for f in report.findings)
    unreviewed = require_model and report.model_status in ("skipped", "error", "off")
    raise typer.Exit(EXIT_FAILURE if failed or unreviewed else EXIT_OK)


def _check_usage(
    output_format: str,
    fail_on: str,
    base: str | None,
    commit_range: str | None,
    max_tokens: int | None,
) -> None:
    from mcode.memory.rules import SEVERITIES
    from mcode.review.output import FORMATS

    if output_format not in FORMATS:
        fail(f"unknown --format {output_format!r}: use {', '.join(FORMATS)}", EXIT_USAGE)
    if fail_on not in SEVERITIES:
        fail(f"unknown --fail-on {fail_on!r}: use {', '.join(SEVERITIES)}", EXIT_USAGE)
    if base and commit_range:
        fail("give --base or --range, not both", EXIT_USAGE)
    if commit_range is not None and ".." not in commit_range:
        fail(f"--range {commit_range!r} must be A..B", EXIT_USAGE)
    if max_tokens is not None and max_tokens <= 0:
        fail("--max-tokens must be positive", EXIT_USAGE)


def _print(report: ReviewReport, output_format: str) -> None:
    from mcode.review import output

    if output_format == "json":
        print_json(output.to_json(report))
    elif output_format == "sarif":
        print_json(output.to_sarif(report))
    elif output_format == "github":
        typer.echo(output.to_github(report))
    else:
        typer.echo(output.to_text(report, typer.style))


def _dismiss(paths: Paths, finding_id: str, reason: str, json_output: bool) -> None:
    from mcode.memory import BlockStoreError
    from mcode.review.dismissals import DismissError, dismiss

    try:
        done = dismiss(paths, finding_id, reason)
    except DismissError as exc:
        fail(str(exc), EXIT_USAGE)
    except (BlockStoreError, OSError) as exc:
        fail(f"cannot record the dismissal: {exc}")
    finding = done.finding
    if json_output:
        data = {"dismissed": finding.to_dict(), "count": done.count}
        data["lesson"] = done.lesson.id if done.lesson else None
        print_json(data)
    else:
        typer.echo(
            f"dismissed {finding.id} ({finding.path}:{finding.line}): it will not be raised "
            f"again on this code ({done.count} of its kind dismissed so far)"
        )
        if done.lesson is not None:
            typer.echo(
                f"added a line to the lessons block (undo: mcode memory revert lessons "
                f"{done.lesson.id})"
            )
    if done.problem:
        sys.stderr.write(f"mcode review: could not add the lesson: {done.problem}\n")
