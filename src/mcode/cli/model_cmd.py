"""`mcode model [NAME]`: show which model this project uses and where that came from, or set it.

Setting writes `model = "NAME"` into the project's `.agentmemory/config.toml` (committed, so the
team shares it), leaving the rest of the file as it was. Keys are never written there.

Setting is the user's own act, so a file that was trusted, or needed no trust, stays trusted with
the new model (`keeps_trust`); a file holding settings the user never trusted stays untrusted, and
the command says which settings that leaves ignored.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mcode.cli.common import (
    EXIT_USAGE,
    REPO_OPTION_HELP,
    announce_untrusted,
    fail,
    load_repo_settings,
    print_json,
)
from mcode.config import ConfigError, Settings
from mcode.config.trust import TrustStore, TrustStoreError, keeps_trust

RepoOption = Annotated[
    Path | None, typer.Option("--repo", help=REPO_OPTION_HELP, show_default=False)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def model(
    name: Annotated[
        str | None,
        typer.Argument(
            help="The model to use in this project, as a litellm name: anthropic/…, openai/…, "
            "ollama_chat/…, openrouter/…",
            show_default=False,
        ),
    ] = None,
    repo: RepoOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show this project's model (and where each value comes from), or set it."""
    settings = load_repo_settings(repo)
    if name is None:
        announce_untrusted(settings)
        report = describe(settings)
        if json_output:
            print_json(report)
        else:
            sys.stdout.write(render(report) + "\n")
        return
    _set_model(settings, name.strip(), json_output)


def _set_model(settings: Settings, name: str, json_output: bool) -> None:
    from mcode.config.toml_edit import update_toml_file

    if not name or any(c.isspace() for c in name) or "/" not in name.strip("/"):
        fail(
            f"invalid model name {name!r}: name it as provider/model, e.g. "
            "anthropic/claude-sonnet-4-5, openai/gpt-4.1 or ollama_chat/llama3.1",
            EXIT_USAGE,
        )
    path = settings.paths.project_config
    try:
        update_toml_file(path, {"model": name})
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")
    _keep_trust(settings, name)
    where = _where(str(path), settings)
    overridden = settings.sources.get("model") == "MCODE_MODEL"
    if json_output:
        print_json({"model": name, "file": str(path), "overridden_by_environment": overridden})
    else:
        sys.stdout.write(f"model set to {name} in {where}\n")
    if overridden:
        sys.stderr.write(
            f"mcode: note: MCODE_MODEL={settings.model} in the environment takes precedence\n"
        )


def _keep_trust(before: Settings, name: str) -> None:
    """After the user's own write: trust the new file if the old one was trusted or needed no
    trust; otherwise say which settings stay ignored."""
    paths = before.paths
    after = load_repo_settings(paths.repo)
    state = after.trust
    needed = before.trust.trusted or state.sensitive
    if state.digest and needed and keeps_trust(before.trust, state, {"model": name}):
        try:
            TrustStore.in_dir(paths.user_config).trust(
                paths.repo, state.digest, paths.project_config
            )
            return
        except TrustStoreError as exc:
            sys.stderr.write(f"mcode: note: {exc}\n")
    announce_untrusted(after)


def _where(source: str, settings: Settings) -> str:
    """A source as the user reads it: a path relative to the repo or home, a variable, a flag."""
    if source == "default":
        return "default"
    if source.startswith("--"):
        return f"the {source} flag"
    if source.isupper():
        return f"environment variable {source}" if source.startswith("MCODE_") else "environment"
    path = Path(source)
    for base, prefix in ((settings.paths.repo, ""), (Path.home(), "~/")):
        try:
            return prefix + path.relative_to(base).as_posix()
        except ValueError:
            continue
    return source


def describe(settings: Settings) -> dict[str, Any]:
    """What `mcode model` shows: each value with where it came from, and what would be used."""
    from mcode.agent.providers import NoModelError, key_var, resolve_model

    def entry(name: str) -> dict[str, Any]:
        value = getattr(settings, name)
        return {"value": value, "source": _where(settings.sources.get(name, "default"), settings)}

    report: dict[str, Any] = {
        "model": entry("model"),
        "weak_model": entry("weak_model"),
        "api_base": entry("api_base"),
        "fallbacks": {**entry("fallbacks"), "value": list(settings.fallbacks)},
        "warnings": list(settings.warnings),
    }
    try:
        choice = resolve_model(settings)
    except NoModelError as exc:
        report["effective"] = None
        report["advice"] = str(exc)
        return report
    report["effective"] = {"model": choice.model, "source": _where(choice.source, settings)}
    if choice.note:
        report["advice"] = choice.note
    var = key_var(choice.model)
    if var is not None:
        source = settings.sources.get(var)
        report["key"] = {
            "name": var,
            "set": var in settings.api_keys,
            "source": _where(source, settings) if source else None,
        }
    return report


def render(report: dict[str, Any]) -> str:
    lines = []
    model = report["model"]
    if model["value"]:
        lines.append(f"model: {model['value']} (from {model['source']})")
    else:
        lines.append("model: not set")
    weak = report["weak_model"]
    if weak["value"]:
        lines.append(f"weak model: {weak['value']} (from {weak['source']})")
    else:
        lines.append("weak model: the main model (set weak_model for summaries)")
    base = report["api_base"]
    if base["value"]:
        lines.append(f"api base: {base['value']} (from {base['source']})")
    fallbacks = report["fallbacks"]
    if fallbacks["value"]:
        lines.append(f"fallbacks: {', '.join(fallbacks['value'])} (from {fallbacks['source']})")
    effective = report.get("effective")
    if effective and not model["value"]:
        lines.append(f"in use: {effective['model']} ({effective['source']})")
    key = report.get("key")
    if key:
        state = f"set (from {key['source']})" if key["set"] else "not set"
        lines.append(f"key: {key['name']} {state}")
    if report.get("advice") and not effective:
        lines.append(report["advice"])
    lines += [f"warning: {w}" for w in report["warnings"]]
    return "\n".join(lines)
