"""`mcode hook install|uninstall`: the review as a git pre-commit hook, for repositories that do not
use the pre-commit framework (those add `mcode-review` to `.pre-commit-config.yaml` instead)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mcode.cli.common import REPO_OPTION_HELP, fail, resolve_paths

hook_app = typer.Typer(
    help="Run `mcode review` before every commit, as git's own pre-commit hook.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
RepoOption = Annotated[
    Path | None, typer.Option("--repo", help=REPO_OPTION_HELP, show_default=False)
]


@hook_app.command("install")
def install(repo: RepoOption = None) -> None:
    """Install the hook; a pre-commit hook already there keeps running, first."""
    from mcode.review.hook import HookError
    from mcode.review.hook import install as install_hook

    try:
        typer.echo(install_hook(resolve_paths(repo).repo))
    except (HookError, OSError) as exc:
        fail(str(exc))


@hook_app.command("uninstall")
def uninstall(repo: RepoOption = None) -> None:
    """Remove the hook, and put back the one it moved aside."""
    from mcode.review.hook import HookError
    from mcode.review.hook import uninstall as uninstall_hook

    try:
        typer.echo(uninstall_hook(resolve_paths(repo).repo))
    except (HookError, OSError) as exc:
        fail(str(exc))
