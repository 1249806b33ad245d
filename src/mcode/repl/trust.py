"""The question at the REPL's start: trust this repository's settings that could send keys or code
elsewhere? (VS Code's workspace trust, keyed to the file's content like direnv's `allow`.)

Yes records the file's hash (`mcode.config.trust`) and reloads the settings with them; no keeps the
user's own settings for this run, and the question comes back at the next start. Without a terminal
nobody can answer: the REPL then says what it ignored, as headless runs do.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.text import Text

from mcode.config import Settings, load_settings
from mcode.config.trust import (
    PROJECT_CONFIG,
    TrustStore,
    TrustStoreError,
    shown_name,
    shown_value,
    untrusted_notice,
)
from mcode.repl.permissions import ReadLine, parse_answer

QUESTION = "Trust it as it is now? [y]es / [n]o: "


def confirm_trust(
    settings: Settings, console: Console, read_line: ReadLine, *, interactive: bool
) -> Settings:
    """The settings to run with, after asking (once) about any the repository may not set alone.

    Raises ConfigError when the file, reloaded after a yes, no longer reads; KeyboardInterrupt
    (Ctrl-C) propagates."""
    ignored = settings.trust.ignored
    if not ignored:
        return settings
    if not interactive:
        sys.stderr.write(f"mcode: {untrusted_notice(ignored)}\n")
        return settings
    console.print(
        Text(
            f"This repository's {PROJECT_CONFIG} sets what could send your keys or code elsewhere:",
            style="bold",
        )
    )
    for name, value in ignored.items():
        console.print(Text(f"  {shown_name(name)} = {shown_value(value)}"))
    console.print(Text("Until you trust it, your own settings apply.", style="dim"))
    if _ask(console, read_line) != "yes":
        console.print(Text("Not trusted: using your own settings; asked again next start."))
        return settings
    paths, digest = settings.paths, settings.trust.digest
    try:
        if digest is None:
            raise TrustStoreError(f"cannot read {paths.project_config}")
        TrustStore.in_dir(paths.user_config).trust(paths.repo, digest, paths.project_config)
    except TrustStoreError as exc:
        console.print(Text(f"Not trusted: {exc}", style="red"))
        return settings
    flags = {n: getattr(settings, n) for n, src in settings.sources.items() if src.startswith("--")}
    reloaded = load_settings(paths, overrides=flags)  # flags such as --no-index stay in force
    if reloaded.trust.ignored:  # the file changed since it was shown
        console.print(Text("Not trusted: the file changed meanwhile; using your own settings."))
        return reloaded
    console.print(Text("Trusted until the file changes (`mcode trust --revoke` undoes it)."))
    return reloaded


def _ask(console: Console, read_line: ReadLine) -> str:
    while True:
        try:
            typed = read_line(QUESTION)
        except EOFError:
            return "no"
        answer = parse_answer(typed, always_offered=False)
        if answer is not None:
            return answer
        console.print(Text("Please answer y or n.", style="dim"))
