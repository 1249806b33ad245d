"""`mcode trust [--show|--revoke]`: trust this repository's own settings from the shell.

Trusting records the sha256 of `.agentmemory/config.toml` as it is now (`mcode.config.trust`): the
settings in it that could send keys or code elsewhere (provider, endpoints) then apply, until the
file changes. The REPL asks the same question at start; headless runs only point here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mcode.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    REPO_OPTION_HELP,
    fail,
    load_repo_settings,
    print_json,
    resolve_paths,
)
from mcode.config import Paths, Settings
from mcode.config.trust import (
    PROJECT_CONFIG,
    TRUST_COMMAND,
    TrustStore,
    TrustStoreError,
    shown_name,
    shown_value,
)


def trust(
    show: Annotated[
        bool, typer.Option("--show", help="Say whether this repository is trusted, and for what.")
    ] = False,
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Stop trusting this repository.")
    ] = False,
    repo: Annotated[
        Path | None, typer.Option("--repo", help=REPO_OPTION_HELP, show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Trust this repository's settings (provider, endpoints) as its config file holds them now;
    a change to the file makes it untrusted again."""
    if show and revoke:
        fail("use either --show or --revoke, not both", EXIT_USAGE)
    if revoke:
        _revoke(resolve_paths(repo), as_json)
        return
    settings = load_repo_settings(repo)
    if show:
        _show(settings, as_json)
    else:
        _trust(settings, as_json)


def _trust(settings: Settings, as_json: bool) -> None:
    paths, state = settings.paths, settings.trust
    report: dict[str, Any] = {
        "repo": str(paths.repo),
        "config": str(paths.project_config),
        "sha256": state.digest,
        "trusted": state.digest is not None,
        "settings": _plain(state.sensitive),
    }
    if state.digest is not None:
        try:
            TrustStore.in_dir(paths.user_config).trust(
                paths.repo, state.digest, paths.project_config
            )
        except TrustStoreError as exc:
            fail(str(exc), EXIT_FAILURE)
    if as_json:
        print_json(report)
        return
    if state.digest is None:
        lines = [f"nothing to trust: {paths.repo} has no {PROJECT_CONFIG}"]
    else:
        lines = [
            f"trusted {PROJECT_CONFIG} of {paths.repo} as it is now (sha256 {state.digest[:12]}); "
            "a change to it makes it untrusted again"
        ]
        lines += _listing(state.sensitive, "these settings now apply:")
    _print(lines)


def _show(settings: Settings, as_json: bool) -> None:
    paths, state = settings.paths, settings.trust
    stored = TrustStore.in_dir(paths.user_config).trusted_digest(paths.repo)
    changed = stored is not None and stored != state.digest
    report: dict[str, Any] = {
        "repo": str(paths.repo),
        "config": str(paths.project_config),
        "exists": state.digest is not None,
        "sha256": state.digest,
        "trusted": state.trusted,
        "trusted_sha256": stored,
        "changed_since_trusted": changed,
        "settings": _plain(state.sensitive),
        "ignored": list(state.ignored),
    }
    if as_json:
        print_json(report)
        return
    if state.trusted and stored:
        lines = [f"{paths.repo}: trusted ({PROJECT_CONFIG} sha256 {stored[:12]})"]
    elif changed:
        lines = [f"{paths.repo}: not trusted: {PROJECT_CONFIG} changed since you trusted it"]
    else:
        lines = [f"{paths.repo}: not trusted"]
    if state.digest is None:
        lines.append(f"there is no {PROJECT_CONFIG}")
    else:
        lines += _listing(state.sensitive, f"settings in {PROJECT_CONFIG} that need trust:")
    if state.ignored:
        lines.append(f"run `{TRUST_COMMAND}` to apply them; until then your own settings apply")
    _print(lines)


def _revoke(paths: Paths, as_json: bool) -> None:
    repo = paths.repo
    try:
        revoked = TrustStore.in_dir(paths.user_config).revoke(repo)
    except TrustStoreError as exc:
        fail(str(exc), EXIT_FAILURE)
    if as_json:
        print_json({"repo": str(repo), "revoked": revoked})
    elif revoked:
        _print([f"{repo}: no longer trusted; its settings that need trust are ignored"])
    else:
        _print([f"{repo}: was not trusted"])


def _listing(settings: dict[str, Any], title: str) -> list[str]:
    if not settings:
        return [f"{PROJECT_CONFIG} holds no settings that need trust"]
    return [title, *(f"  {shown_name(k)} = {shown_value(v)}" for k, v in settings.items())]


def _plain(settings: dict[str, Any]) -> dict[str, Any]:
    """Values as JSON can carry them (TOML dates become text)."""
    return json.loads(json.dumps(settings, default=str))


def _print(lines: list[str]) -> None:
    sys.stdout.write("\n".join(lines) + "\n")
