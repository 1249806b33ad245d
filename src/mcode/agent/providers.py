"""Which model a session talks to, with which key, and what to do when nothing is configured.

The model comes from the settings (flag > MCODE_MODEL > project config > user config, resolved by
the config package); failing that, from the first provider key the user has (a sensible default
model for that provider); failing that, from a local Ollama server if one answers. With none of
these, `NoModelError` says exactly what to set. Keys only ever come from `Settings.api_keys` (the
environment or the user config), never from the repository. Nothing here imports litellm.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from mcode.config import Settings
from mcode.config.providers import KEYLESS_PROVIDERS, provider_of

OLLAMA_TIMEOUT = 0.3
# When no model is configured but a key is: the model to use with it, in this order of preference.
DEFAULT_MODELS: tuple[tuple[str, str], ...] = (
    ("ANTHROPIC_API_KEY", "anthropic/claude-sonnet-4-5"),
    ("OPENAI_API_KEY", "openai/gpt-4.1"),
    ("OPENROUTER_API_KEY", "openrouter/anthropic/claude-sonnet-4.5"),
    ("GEMINI_API_KEY", "gemini/gemini-2.5-pro"),
)
# Providers that take a key and nothing else: without it, a request can only fail (after seconds
# of litellm's import and a round trip). Others may sign in another way (cloud credentials).
_KEY_ONLY = frozenset(
    {
        "openai",
        "anthropic",
        "openrouter",
        "gemini",
        "mistral",
        "groq",
        "deepseek",
        "together_ai",
        "xai",
        "fireworks_ai",
        "cohere",
        "perplexity",
    }
)
# Providers whose key variable is not simply PROVIDER_API_KEY.
_KEY_VARS = {"together_ai": "TOGETHERAI_API_KEY", "vertex_ai": "VERTEXAI_API_KEY"}
NO_MODEL_MESSAGE = (
    "no model configured: run `mcode model anthropic/claude-sonnet-4-5` and set ANTHROPIC_API_KEY, "
    "or start Ollama"
)


class NoModelError(Exception):
    """No model is configured, no provider key is set and no Ollama server answers."""


class NoKeyError(NoModelError):
    """The model's provider needs a key, and none is set."""


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The model a session uses and how to reach it. `source` says where the name came from;
    `note` is a line to show the user when the choice was made for them."""

    model: str
    source: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    note: str = ""


def key_var(model: str) -> str | None:
    """The environment variable holding `model`'s key; None for local providers."""
    provider = provider_of(model)
    if not provider or provider in KEYLESS_PROVIDERS:
        return None
    return _KEY_VARS.get(provider, f"{provider.upper()}_API_KEY")


def require_key(settings: Settings, choice: ModelChoice) -> None:
    """NoKeyError, before any request, when `choice` cannot work for want of a key."""
    var = key_var(choice.model)
    if choice.api_key or var is None or provider_of(choice.model) not in _KEY_ONLY:
        return
    raise NoKeyError(
        f"no key for {choice.model}: set {var} in the environment or under [keys] in "
        f"{settings.paths.user_config_file}"
    )


def api_key_for(settings: Settings, model: str) -> str | None:
    var = key_var(model)
    return settings.api_keys.get(var) if var else None


def api_base_for(settings: Settings, model: str) -> str | None:
    """The configured api_base applies to the configured model's provider only: switching from a
    proxied `openai/...` to `anthropic/...` must not send Anthropic requests to the proxy."""
    if not settings.api_base:
        return settings.ollama_url if provider_of(model) in ("ollama", "ollama_chat") else None
    configured = provider_of(settings.model)
    return settings.api_base if not configured or configured == provider_of(model) else None


def choice_for(settings: Settings, model: str, source: str, note: str = "") -> ModelChoice:
    return ModelChoice(
        model, source, api_base_for(settings, model), api_key_for(settings, model), note
    )


def resolve_model(
    settings: Settings, *, flag: str | None = None, ollama_timeout: float = OLLAMA_TIMEOUT
) -> ModelChoice:
    """The model to use; NoModelError with the advice when there is none at all."""
    if flag:
        return choice_for(settings, flag, "--model")
    if settings.model:
        return choice_for(settings, settings.model, settings.sources.get("model", "settings"))
    for var, model in DEFAULT_MODELS:
        if settings.api_keys.get(var):
            note = f"no model configured: using {model} because {var} is set"
            return choice_for(settings, model, f"default for {var}", note)
    models = detect_ollama(settings.ollama_url, ollama_timeout)
    if models:
        model = f"ollama_chat/{models[0]}"
        note = (
            f"no model configured: using {model} from the Ollama server at {settings.ollama_url} "
            f"(set another with `mcode model NAME`)"
        )
        return ModelChoice(
            model, f"Ollama at {settings.ollama_url}", settings.ollama_url, None, note
        )
    raise NoModelError(NO_MODEL_MESSAGE)


def detect_ollama(url: str, timeout: float = OLLAMA_TIMEOUT) -> list[str]:
    """The models a local Ollama server offers (GET /api/tags); [] when none answers in time."""
    if not url:
        return []
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # local: no proxy
    try:
        with opener.open(f"{url.rstrip('/')}/api/tags", timeout=timeout) as response:
            data = json.loads(response.read() or b"{}")
    except (OSError, ValueError, urllib.error.URLError):
        return []
    models = data.get("models") if isinstance(data, dict) else None
    names = [m.get("name") or m.get("model") for m in models or [] if isinstance(m, dict)]
    return [n for n in names if isinstance(n, str) and n]
