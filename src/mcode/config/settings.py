"""Settings resolved once at the edge and passed down.

Precedence, lowest first: defaults, user config, project config (`.agentmemory/config.toml`), environment
(`MCODE_*`), then flags the CLI passes as overrides. Keys and secrets are never read from the project file:
API keys come from the environment (`*_API_KEY`) or the user config's `[keys]` table, and anything in the
project file that looks like a key is dropped with a warning, since everyone who clones the repo sees it.
Project settings that could send keys or code elsewhere apply only once the user trusts the file
(`mcode.config.trust`); until then they are dropped and `Settings.trust` names them.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from mcode.config.paths import Paths
from mcode.config.trust import ProjectTrust, project_trust
from mcode.fsio import read_bytes

DEFAULT_MAX_FILE_BYTES = 1_000_000
DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_FIRST_TOKEN_TIMEOUT = 90.0
_SECONDS = frozenset({"connect_timeout", "first_token_timeout", "sleep_quiet_seconds"})
DEFAULT_SOURCE = "default"
USER_KEYS_TABLE = "keys"
_ENV_KEY = re.compile(r"^[A-Z][A-Z0-9_]*_API_KEY$")
_BOOLEANS = dict.fromkeys(("true", "1", "yes", "on"), True) | dict.fromkeys(
    ("false", "0", "no", "off"), False
)


class ConfigError(Exception):
    """A config file exists but cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Settings:
    paths: Paths
    # Discovery
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    # The REPL and `mcode -p` index the repository and keep the index current by themselves.
    auto_index: bool = True
    # Embeddings: "local" (bundled MiniLM), "none" (lexical only) or a litellm embedding model name.
    embedding_model: str = "local"
    # LLM (used by the agent; kept here so one resolution serves every command)
    model: str = ""
    weak_model: str = ""
    # The model `mcode review` asks (the pre-commit hook); empty: the project's model.
    review_model: str = ""
    # The model the sleep-time pass writes module summaries with; empty: structural ones only,
    # offline and free. Never the project's model by default: no cost nobody chose.
    sleep_model: str = ""
    # What the sleep pass may spend with `sleep_model`, in tokens: per UTC day, and per pass.
    sleep_budget_tokens_per_day: int = 200_000
    sleep_pass_tokens: int = 50_000
    # With `sleep_model`, a session consolidates its conversation into the `project` and `lessons`
    # blocks in the background every this many turns, and once more when it ends; 0: never.
    sleep_consolidate_every: int = 5
    # Seconds without edits before `mcode watch` runs the sleep pass.
    sleep_quiet_seconds: float = 60.0
    api_base: str = ""
    fallbacks: tuple[str, ...] = ()
    # Where a local Ollama server is looked for when no model is configured.
    ollama_url: str = DEFAULT_OLLAMA_URL
    # Seconds to reach the model's server, and seconds the model may stay silent (before its
    # first token and between tokens) before the request counts as timed out.
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    first_token_timeout: float = DEFAULT_FIRST_TOKEN_TIMEOUT
    extra: dict[str, Any] = field(default_factory=dict)
    # Provider keys by environment-variable name (OPENAI_API_KEY, ...): from the environment, else
    # the user config's [keys]. Never from the project file; never shown by repr.
    api_keys: dict[str, str] = field(default_factory=dict, repr=False)
    # Where each setting and key came from: "default", a config file's path, "MCODE_MODEL", "--model".
    sources: dict[str, str] = field(default_factory=dict)
    # Problems worth telling the user that did not stop loading (a key in the project file).
    warnings: tuple[str, ...] = ()
    # The project settings that need the user's trust, and whether the file has it; `trust.ignored`
    # are those dropped at load.
    trust: ProjectTrust = field(default_factory=ProjectTrust)


_ENV = {
    "MCODE_MAX_FILE_BYTES": "max_file_bytes",
    "MCODE_AUTO_INDEX": "auto_index",
    "MCODE_EMBEDDING_MODEL": "embedding_model",
    "MCODE_MODEL": "model",
    "MCODE_WEAK_MODEL": "weak_model",
    "MCODE_REVIEW_MODEL": "review_model",
    "MCODE_SLEEP_MODEL": "sleep_model",
    "MCODE_SLEEP_BUDGET_TOKENS_PER_DAY": "sleep_budget_tokens_per_day",
    "MCODE_SLEEP_PASS_TOKENS": "sleep_pass_tokens",
    "MCODE_SLEEP_CONSOLIDATE_EVERY": "sleep_consolidate_every",
    "MCODE_SLEEP_QUIET_SECONDS": "sleep_quiet_seconds",
    "MCODE_API_BASE": "api_base",
    "MCODE_FALLBACKS": "fallbacks",
    "MCODE_OLLAMA_URL": "ollama_url",
    "MCODE_CONNECT_TIMEOUT": "connect_timeout",
    "MCODE_FIRST_TOKEN_TIMEOUT": "first_token_timeout",
}
_FIELDS = {f.name for f in fields(Settings)} - {
    "paths",
    "extra",
    "api_keys",
    "sources",
    "warnings",
    "trust",
}
_DEFAULTS = {f.name: f.default for f in fields(Settings) if f.name in _FIELDS}


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict, {} when absent; a broken file (or, in a repository's `.agentmemory/`,
    a symlink) is a ConfigError naming it."""
    return read_toml_bytes(path)[0]


def read_toml_bytes(path: Path) -> tuple[dict[str, Any], bytes | None]:
    """The table and the exact bytes it was parsed from (None when the file is absent), so that
    what is trusted is what was read."""
    try:
        data = read_bytes(path)
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return tomllib.loads(data.decode("utf-8")), data
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


_WHOLE_NUMBERS = frozenset(
    {
        "max_file_bytes",
        "sleep_budget_tokens_per_day",
        "sleep_pass_tokens",
        "sleep_consolidate_every",
    }
)


def _coerce(name: str, value: Any, source: str) -> Any:
    if name in _WHOLE_NUMBERS:
        try:
            number = int(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: {name} must be a whole number, got {value!r}") from exc
        if number < 0 or (number == 0 and name == "max_file_bytes"):
            raise ConfigError(f"{source}: {name} must be positive, got {number}")
        return number
    if name in _SECONDS:
        try:
            seconds = float(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"{source}: {name} must be a number of seconds, got {value!r}"
            ) from exc
        zero_ok = (
            name == "sleep_quiet_seconds"
        )  # a quiet period of 0 is "at once"; a time-out is not
        if seconds < 0 or (seconds == 0 and not zero_ok) or seconds >= 1e6:
            raise ConfigError(
                f"{source}: {name} must be a positive number of seconds below 1e6, got {value!r}"
            )
        return seconds
    if name == "auto_index":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
            return _BOOLEANS[value.strip().lower()]
        raise ConfigError(f"{source}: {name} must be true or false, got {value!r}")
    if name == "fallbacks":
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{source}: fallbacks must be a list of model names")
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {name} must be a string, got {value!r}")
    return value


def _layer(data: dict[str, Any], source: str) -> dict[str, Any]:
    return {k: _coerce(k, v, source) for k, v in data.items() if k in _FIELDS}


def secret_names(data: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted names in a config table that look like they hold a key or a token."""
    from mcode.secrets import is_secret_name  # compiling its patterns would slow down `--help`

    found = []
    for name, value in data.items():
        dotted = f"{prefix}{name}"
        if is_secret_name(str(name)) and value not in ("", None, {}):
            found.append(dotted)
        elif isinstance(value, dict):
            found += secret_names(value, dotted + ".")
    return found


def _without_secrets(data: dict[str, Any], source: Path) -> tuple[dict[str, Any], str | None]:
    """The project file's table minus anything secret-looking, and the warning that says so."""
    names = secret_names(data)
    if not names:
        return data, None
    clean = {k: v for k, v in data.items() if k not in {n.split(".")[0] for n in names}}
    listed = ", ".join(f"`{n}`" for n in names)
    warning = (
        f"{source}: ignored {listed}: keys are never read from the repository (everyone who clones "
        "it would see them); set them in the environment or under [keys] in the user config"
    )
    return clean, warning


def _user_keys(data: dict[str, Any], source: Path) -> dict[str, str]:
    table = data.get(USER_KEYS_TABLE)
    if table is None:
        return {}
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ConfigError(f"{source}: [{USER_KEYS_TABLE}] must map names to strings")
    return {str(k): v for k, v in table.items() if v}


def load_settings(
    paths: Paths,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    env = dict(os.environ) if env is None else env
    user_file, project_file = paths.user_config_file, paths.project_config
    user = read_toml(user_file)
    keys = _user_keys(user, user_file)
    project_table, project_bytes = read_toml_bytes(project_file)
    project, warning = _without_secrets(project_table, project_file)
    user_layer, project_layer = _layer(user, str(user_file)), _layer(project, str(project_file))
    user_extra = _extra(user)
    project_extra = _extra(project)
    env_sources = {name: var for var, name in _ENV.items() if env.get(var)}
    env_layer = {name: _coerce(name, env[var], var) for name, var in env_sources.items()}
    flags = {name: value for name, value in (overrides or {}).items() if value is not None}
    flag_sources = {name: f"--{name.replace('_', '-')}" for name in flags}
    flag_layer = {name: _coerce(name, value, flag_sources[name]) for name, value in flags.items()}
    own = {**_DEFAULTS, **user_extra, **user_layer, **env_layer, **flag_layer}
    coerced = {**project_extra, **project_layer}
    table = {name: coerced[name] for name in project}  # in file order
    trust = project_trust(paths, table, own, project_bytes)
    for name in trust.ignored:
        project_layer.pop(name, None)
        project_extra.pop(name, None)
    sources = {
        **dict.fromkeys(user_layer, str(user_file)),
        **dict.fromkeys(project_layer, str(project_file)),
        **env_sources,
        **flag_sources,
    }
    sources.update(dict.fromkeys(keys, str(user_file)))
    for var, value in env.items():
        if _ENV_KEY.match(var) and value:
            keys[var] = value
            sources[var] = "environment"
    for name in _FIELDS:
        sources.setdefault(name, DEFAULT_SOURCE)
    settings = Settings(
        paths=paths,
        extra={**user_extra, **project_extra},
        api_keys=keys,
        sources=sources,
        warnings=(warning,) if warning else (),
        trust=trust,
    )
    return replace(settings, **{**user_layer, **project_layer, **env_layer, **flag_layer})


def _extra(data: dict[str, Any]) -> dict[str, Any]:
    """A config table's settings that are not Settings fields (the user's [keys] excepted)."""
    return {k: v for k, v in data.items() if k not in _FIELDS and k != USER_KEYS_TABLE}


def pre_push_range(env: dict[str, str] | None = None) -> str | None:
    """`FROM..TO` when the pre-commit framework runs a hook for a push (or `pre-commit run
    --from-ref --to-ref`): what is being pushed, rather than what is staged."""
    env = dict(os.environ) if env is None else env
    start, end = env.get("PRE_COMMIT_FROM_REF"), env.get("PRE_COMMIT_TO_REF")
    return f"{start}..{end}" if start and end else None
