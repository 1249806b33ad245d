"""Repository trust: which project settings may apply before the user has agreed, and the user's
record of the project config files they agreed to.

A repository's `.agentmemory/config.toml` is committed by whoever wrote the repository, so it is
untrusted input. Settings in it that can move the user's credentials or code off the machine apply
only once the user has trusted that file's exact bytes (direnv's `allow`): the trust store in the
user's config dir maps the repository's real path to the sha256 of the file they trusted, and any
change to the file, by anyone, makes it untrusted again. Until then those settings are dropped at
load and the user's own settings apply; `Settings.trust` says which were dropped.

The user's own settings are what mcode would use with no project file at all: the defaults, the user
config (`~/.config/mcode/config.toml`), `MCODE_*` environment variables and the flags given to
`load_settings`. The user's own providers are the providers of their own `model`, `weak_model`,
`review_model`, `sleep_model`, `fallbacks` and remote `embedding_model`. A provider key in the environment alone
is not a choice of provider: with nothing configured, a repository choosing any remote provider
asks first.

What needs trust (everything else in the file applies at once):
- `api_base`, unless it is the user's own: mcode sends the provider key with it, so even a loopback
  address counts (a port the user did not choose).
- `ollama_url`, unless it is a loopback address or the user's own: no key goes there, but code does.
- `model`, `weak_model`, `review_model` (every reviewed commit's diff goes to it), `sleep_model`
  (every changed module goes to it), each of `fallbacks`, a remote `embedding_model`, unless it is the user's own value, or its provider is a
  keyless local one (`ollama_chat/…`: its requests go to `ollama_url` or `api_base`, which are
  judged on their own, and no key is sent), or its provider is one of the user's own. When the
  user has their own `api_base`, it goes with the main model's provider key (and to remote
  embedders), so then the provider must be that of the user's own `model`. A name without a
  provider (`gpt-4o`, which litellm routes by guessing) never matches by provider.
- `sleep_budget_tokens_per_day` and `sleep_pass_tokens` above the user's own: they spend the
  user's money; lowering them applies at once. Likewise `sleep_consolidate_every` below the
  user's own (consolidating more often), or turning it on; rarer, or 0 (off), applies at once.
- Any setting this version of mcode does not know (tables such as `headers`, hooks, commands): it
  cannot vouch for what a newer reader would do with it, and nothing in `Settings.extra` reaches a
  provider call that way without the user's agreement. The only extra settings read today,
  `context_window`, `temperature`, `max_tokens` and `embedding_dim`, go into `mcode export` alone.
Keys are never read from the project file, trusted or not (see `settings`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from mcode.config.paths import MEMORY_DIRNAME, Paths
from mcode.config.providers import KEYLESS_PROVIDERS, provider_of
from mcode.fsio import atomic_write_text, clock, file_lock

TRUST_FILE = "trusted.json"
TRUST_COMMAND = "mcode trust"
PROJECT_CONFIG = f"{MEMORY_DIRNAME}/config.toml"  # as the user sees it, from the repository
# Settings that cannot send anything anywhere: what to index and whether to keep it current, how
# long to wait for the model, and numbers only `mcode export` reads.
SAFE_SETTINGS = frozenset(
    {
        "max_file_bytes",
        "auto_index",
        "connect_timeout",
        "first_token_timeout",
        "context_window",
        "temperature",
        "max_tokens",
        "embedding_dim",
        "sleep_quiet_seconds",
    }
)
MODEL_SETTINGS = frozenset(
    {"model", "weak_model", "review_model", "sleep_model", "fallbacks", "embedding_model"}
)
# Spending caps: a repository may lower the user's own, never raise them unasked.
BUDGET_SETTINGS = frozenset({"sleep_budget_tokens_per_day", "sleep_pass_tokens"})
LOCAL_EMBEDDINGS = frozenset({"local", "none"})
_T = TypeVar("_T")
_PLAIN_NAME = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


class TrustStoreError(Exception):
    """The trust store exists but cannot be read or written; the message names the file."""


@dataclass(frozen=True, slots=True)
class ProjectTrust:
    """What a project config asks for that needs the user's trust, and whether it has it."""

    digest: str | None = None  # sha256 of the project config as read; None when there is none
    sensitive: dict[str, Any] = field(default_factory=dict)  # name -> the file's value
    trusted: bool = False  # the trust store holds `digest` for this repository

    @property
    def ignored(self) -> dict[str, Any]:
        """The settings dropped at load: the sensitive ones of a file the user has not trusted."""
        return {} if self.trusted else self.sensitive


# Classification ------------------------------------------------------------------------------------


def sensitive_settings(project: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """The settings of a project config table that need trust (see the module docstring), with the
    file's values. `project` holds coerced values (`fallbacks` a tuple); `own` the user's own
    settings by name, defaults included (a project value equal to the user's changes nothing)."""
    return {
        name: value
        for name, value in project.items()
        if name not in SAFE_SETTINGS and own.get(name) != value and not _harmless(name, value, own)
    }


def _harmless(name: str, value: Any, own: dict[str, Any]) -> bool:
    if name == "ollama_url":
        return isinstance(value, str) and is_loopback(value)
    if name in MODEL_SETTINGS:
        return all(_stays_with_user(model, own) for model in _models(name, value))
    if name in BUDGET_SETTINGS:
        return isinstance(value, int) and value <= own.get(name, 0)
    if name == "sleep_consolidate_every":  # how often the budget is spent: rarer is harmless
        mine = own.get(name, 0)
        return isinstance(value, int) and (value == 0 or 0 < mine <= value)
    return False


def _models(name: str, value: Any) -> tuple[str, ...]:
    if name == "fallbacks":
        return tuple(value)
    if name == "embedding_model" and value.strip().lower() in LOCAL_EMBEDDINGS:
        return ()
    return (value,)


def _stays_with_user(model: str, own: dict[str, Any]) -> bool:
    """Whether a model's requests go only where the user already sends theirs."""
    provider = provider_of(model)
    if provider in KEYLESS_PROVIDERS:
        return True
    if not provider:
        return False
    if own.get("api_base"):
        return provider == provider_of(own.get("model") or "")
    return provider in _own_providers(own)


def _own_providers(own: dict[str, Any]) -> set[str]:
    models = [own.get(name) for name in ("model", "weak_model", "review_model", "sleep_model")]
    models += own.get("fallbacks", ())
    models.append(own.get("embedding_model"))
    return {provider_of(m) for m in models if isinstance(m, str)} - {""}


def is_loopback(url: str) -> bool:
    """Whether a URL names this machine by a loopback address (127.0.0.0/8, ::1, localhost)."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return False
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Showing settings to the user ----------------------------------------------------------------------


def shown_name(name: str) -> str:
    """A setting's name as one safe token: the file's author chooses names, so anything but plain
    characters is quoted with escapes (no newline or terminal control reaches the screen)."""
    return name if name and set(name) <= _PLAIN_NAME else json.dumps(name)


def shown_value(value: Any) -> str:
    """A setting's value as TOML-like text, every non-ASCII and control character escaped."""
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value, ensure_ascii=True, default=str)


def shown_names(names: Iterable[str]) -> str:
    return ", ".join(shown_name(n) for n in names)


def untrusted_notice(ignored: dict[str, Any]) -> str:
    """The one line that says which repository settings were ignored and how to apply them."""
    return (
        f"ignored {shown_names(ignored)} from {PROJECT_CONFIG}: this repository is not "
        f"trusted, so your own settings apply (run `{TRUST_COMMAND}` to trust the file as it is now)"
    )


def project_trust(
    paths: Paths, table: dict[str, Any], own: dict[str, Any], data: bytes | None
) -> ProjectTrust:
    """Judge a repository's project config table, parsed from `data` (the file's exact bytes;
    None when there is no file), against the user's own settings and the trust store."""
    digest = content_digest(data)
    trusted = (
        digest is not None
        and TrustStore.in_dir(paths.user_config).trusted_digest(paths.repo) == digest
    )
    return ProjectTrust(digest, sensitive_settings(table, own), trusted)


# The store -------------------------------------------------------------------------------------


def content_digest(data: bytes | None) -> str | None:
    """The sha256 of a config file's bytes; None for no file, which matches nothing trusted."""
    return None if data is None else hashlib.sha256(data).hexdigest()


def _repo_key(repo: Path) -> str:
    return os.path.realpath(repo)


class TrustStore:
    """The project config files the user trusted, by repository: `trusted.json` in the user's
    config dir, `{"repositories": {real path: {"sha256", "config", "trusted_at"}}}`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_dir(cls, user_config: Path) -> TrustStore:
        return cls(user_config / TRUST_FILE)

    def trusted_digest(self, repo: Path) -> str | None:
        """The digest trusted for `repo`; None when there is none, or the store is unreadable
        (nothing is trusted then: `mcode trust` says what is wrong with it)."""
        try:
            entry = self._read().get(_repo_key(repo))
        except TrustStoreError:
            return None
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        return digest if isinstance(digest, str) else None

    def trust(self, repo: Path, digest: str, config: Path) -> None:
        """Trust the project config of `repo` whose bytes hash to `digest`, and nothing else."""
        entry = {
            "sha256": digest,
            "config": str(config),
            "trusted_at": clock.iso(timespec="seconds"),
        }

        def add(entries: dict[str, Any]) -> None:
            entries[_repo_key(repo)] = entry

        self._update(add)

    def revoke(self, repo: Path) -> bool:
        """Forget `repo`; whether it was trusted."""
        return self._update(lambda entries: entries.pop(_repo_key(repo), None) is not None)

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise TrustStoreError(f"cannot read {self.path}: {exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TrustStoreError(
                f"{self.path} is not valid JSON ({exc}): fix it, or delete it and trust again"
            ) from exc
        entries = data.get("repositories") if isinstance(data, dict) else None
        if not isinstance(entries, dict):
            raise TrustStoreError(
                f"{self.path} has no `repositories` table: delete it and trust again"
            )
        return entries

    def _update(self, change: Callable[[dict[str, Any]], _T]) -> _T:
        """Read, change and atomically replace the store, one process at a time."""
        try:
            with file_lock(self.path.with_name(f".{self.path.name}.lock")):
                entries = self._read()
                result = change(entries)
                text = json.dumps({"repositories": entries}, indent=2, sort_keys=True)
                atomic_write_text(self.path, text + "\n")
        except OSError as exc:
            raise TrustStoreError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        return result


def keeps_trust(before: ProjectTrust, after: ProjectTrust, written: dict[str, Any]) -> bool:
    """Whether a project config the user changed with their own command (`mcode model NAME`)
    stays trusted: only if it was trusted or needed no trust before, and what needs trust now is
    what was trusted before plus what the command wrote (so a change someone else slipped in
    meanwhile is never trusted on the user's behalf)."""
    if before.sensitive and not before.trusted:
        return False
    allowed = {**before.sensitive, **written}
    return all(name in allowed and allowed[name] == v for name, v in after.sensitive.items())
