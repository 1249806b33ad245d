"""Settings resolved once at the edge and passed down.

Precedence, lowest first: defaults, user config, project config (`.agentmemory/config.toml`), environment
(`MCODE_*`), then flags the CLI passes as overrides. Keys and secrets are never read from the project file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from mcode.config.paths import Paths

DEFAULT_MAX_FILE_BYTES = 1_000_000


class ConfigError(Exception):
    """A config file exists but cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Settings:
    paths: Paths
    # Discovery
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    # Embeddings: "local" (bundled MiniLM), "none" (lexical only) or a litellm embedding model name.
    embedding_model: str = "local"
    # LLM (used by the agent; kept here so one resolution serves every command)
    model: str = ""
    weak_model: str = ""
    api_base: str = ""
    fallbacks: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


_ENV = {
    "MCODE_MAX_FILE_BYTES": "max_file_bytes",
    "MCODE_EMBEDDING_MODEL": "embedding_model",
    "MCODE_MODEL": "model",
    "MCODE_WEAK_MODEL": "weak_model",
    "MCODE_API_BASE": "api_base",
}
_FIELDS = {f.name for f in fields(Settings)} - {"paths", "extra"}


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict, {} when absent; a broken file is a ConfigError naming it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def _coerce(name: str, value: Any, source: str) -> Any:
    if name == "max_file_bytes":
        try:
            number = int(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"{source}: max_file_bytes must be a whole number, got {value!r}"
            ) from exc
        if number <= 0:
            raise ConfigError(f"{source}: max_file_bytes must be positive, got {number}")
        return number
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


def load_settings(
    paths: Paths,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    env = dict(os.environ) if env is None else env
    merged: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for path in (paths.user_config_file, paths.project_config):
        data = read_toml(path)
        merged.update(_layer(data, str(path)))
        extra.update({k: v for k, v in data.items() if k not in _FIELDS})
    for var, name in _ENV.items():
        if env.get(var):
            merged[name] = _coerce(name, env[var], var)
    for name, value in (overrides or {}).items():
        if value is not None:
            merged[name] = _coerce(name, value, f"--{name.replace('_', '-')}")
    return replace(Settings(paths=paths, extra=extra), **merged)
