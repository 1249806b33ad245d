"""The `mcode` command line. Commands parse arguments and delegate; nothing heavy is imported here."""

from __future__ import annotations

import difflib
import gc
import importlib.util
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from mcode import __version__
from mcode.cli import (
    agentfile_cmd,
    index_cmds,
    init_cmd,
    model_cmd,
    review_cmd,
    sleep_cmd,
    trust_cmd,
)
from mcode.cli.common import EXIT_FAILURE, EXIT_USAGE, REPO_OPTION_HELP, fail
from mcode.cli.hook_cmd import hook_app
from mcode.cli.memory_cmd import memory_app
from mcode.fsio import UnsafePathError

FIRST_MESSAGE = "mcode.first_message"


class _CommandOrMessage(TyperGroup):
    """`mcode fix the bug` starts the REPL with that first message, as Claude Code does; a first
    word that names a command, or is one letter or two off (a typo), is still a command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        original = list(args)
        rest = super().parse_args(ctx, args)
        words = [*ctx._protected_args, *rest]
        if not words or words[0] in self.commands:
            return rest
        # A message: options may come after its words too (`mcode fix it --model M`).
        ctx.params.clear()
        ctx.allow_interspersed_args = True
        words = click.Command.parse_args(self, ctx, original)
        if len(words) == 1 and difflib.get_close_matches(words[0], self.commands, cutoff=0.75):
            ctx._protected_args, ctx.args = words, []
            return []  # click says "No such command" and names the near one
        ctx.meta[FIRST_MESSAGE] = " ".join(words)
        ctx._protected_args, ctx.args = [], []
        return []


app = typer.Typer(
    name="mcode",
    cls=_CommandOrMessage,
    help="A memory-first coding agent for the terminal.",
    no_args_is_help=False,  # plain `mcode` starts the REPL
    add_completion=True,  # --install-completion, --show-completion
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help text: rich's Markdown renderer costs 0.1 s of start-up
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mcode {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    prompt: Annotated[
        str | None,
        typer.Option(
            "-p",
            "--prompt",
            help="Run this prompt without the REPL, print the result and exit ('-' reads stdin).",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--output-format", help="With -p: text, json or stream-json.")
    ] = "text",
    max_turns: Annotated[
        int | None,
        typer.Option("--max-turns", help="With -p: stop after this many model steps."),
    ] = None,
    permission_mode: Annotated[
        str,
        typer.Option(
            "--permission-mode",
            help="ask (before edits and commands), accept-edits, or auto. With -p, ask refuses.",
        ),
    ] = "ask",
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="The model for this run (a litellm name).")
    ] = None,
    continue_latest: Annotated[
        bool, typer.Option("--continue", "-c", help="Resume the latest session.")
    ] = False,
    resume: Annotated[
        str | None, typer.Option("--resume", "-r", help="Resume the session with this id.")
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="Allow without asking, e.g. 'Bash(npm test)'. Repeatable."),
    ] = None,
    deny: Annotated[
        list[str] | None,
        typer.Option("--deny", help="Always refuse, e.g. 'Bash(rm -rf:*)'. Repeatable."),
    ] = None,
    no_index: Annotated[
        bool,
        typer.Option(
            "--no-index",
            help="Do not index or watch the repository in the background (auto_index = false).",
        ),
    ] = False,
    repo: Annotated[
        Path | None, typer.Option("--repo", help=REPO_OPTION_HELP, show_default=False)
    ] = None,
) -> None:
    """A memory-first coding agent for the terminal. Run `mcode` for the REPL, `mcode "TASK"` for
    the REPL starting with that message, `mcode -p TASK` for one task without it."""
    if ctx.invoked_subcommand is not None:
        if prompt is not None:
            fail("-p runs a prompt on its own; it cannot be combined with a command", EXIT_USAGE)
        return
    first_message = ctx.meta.get(FIRST_MESSAGE)
    if prompt is not None and first_message:
        fail(f"-p takes the whole prompt: quote it (extra words: {first_message})", EXIT_USAGE)
    if prompt is not None:
        from mcode.cli.headless import HeadlessOptions, run_headless

        options = HeadlessOptions(
            prompt=prompt,
            output_format=output_format,
            max_turns=max_turns,
            permission_mode=permission_mode,
            model=model,
            continue_latest=continue_latest,
            resume=resume,
            allow=tuple(allow or ()),
            deny=tuple(deny or ()),
            no_index=no_index,
        )
        raise typer.Exit(run_headless(repo, options))
    _start_repl(
        ctx,
        repo,
        no_index,
        model=model,
        permission_mode=permission_mode,
        allow=tuple(allow or ()),
        deny=tuple(deny or ()),
        resume="latest" if continue_latest else resume,
        first_message=first_message,
    )


def _start_repl(ctx: typer.Context, repo: Path | None, no_index: bool, **options: object) -> None:
    """The REPL lives in `mcode.repl`; until it exists, plain `mcode` shows the help."""
    if importlib.util.find_spec("mcode.repl") is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()
    from mcode.cli.common import load_repo_settings
    from mcode.repl.app import run_repl

    settings = load_repo_settings(repo, auto_index=False if no_index else None)
    code = run_repl(settings, **options)  # the REPL asks about trust itself
    raise typer.Exit(code or 0)


app.command("index")(index_cmds.index)
app.command("search")(index_cmds.search)
app.command("map")(index_cmds.repo_map)
app.command("watch")(index_cmds.watch)
app.command("model")(model_cmd.model)
app.command("init")(init_cmd.init)
app.command("export")(agentfile_cmd.export_af)
app.command("import")(agentfile_cmd.import_af)
app.command("trust")(trust_cmd.trust)
app.command("review")(review_cmd.review)
app.command("sleep")(sleep_cmd.sleep)
app.command("summary")(sleep_cmd.summary)
app.add_typer(memory_app, name="memory")
app.add_typer(hook_app, name="hook")


def main() -> None:
    try:
        app()
    except UnsafePathError as exc:
        # A repository's symlink refused where no command had a message of its own: still one
        # line, never a traceback.
        sys.stderr.write(f"mcode: {exc}\n")
        raise SystemExit(EXIT_FAILURE) from None
    finally:
        # The work is done and written: spare the interpreter's last collections over every
        # object litellm and lancedb made (1.5-3.5 s at exit under load, 0.1 s frozen).
        gc.freeze()
