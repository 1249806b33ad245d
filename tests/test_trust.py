"""Repository trust: which project settings wait for the user's agreement, and the store that
remembers the exact config file the user agreed to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcode.config import Paths, Settings, load_settings
from mcode.config.trust import (
    ProjectTrust,
    TrustStore,
    TrustStoreError,
    content_digest,
    is_loopback,
    keeps_trust,
    sensitive_settings,
    shown_name,
    untrusted_notice,
)

NOTHING: dict[str, Any] = {}
OPENAI_USER = {"model": "openai/gpt-4.1"}


def needs_trust(project: dict[str, Any], own: dict[str, Any] = NOTHING) -> list[str]:
    return list(sensitive_settings(project, own))


# Classification ----------------------------------------------------------------------------------


def test_settings_that_cannot_send_anything_apply_without_asking() -> None:
    project = {
        "max_file_bytes": 5000,
        "context_window": 128000,
        "temperature": 0.2,
        "embedding_model": "local",
        "ollama_url": "http://127.0.0.1:11500",
        "model": "ollama_chat/qwen2.5-coder",  # keyless, and its endpoint is judged on its own
        "fallbacks": ("lm_studio/qwen",),
    }
    assert needs_trust(project) == []
    assert needs_trust({"embedding_model": "none"}) == []


def test_endpoints_need_trust_even_on_loopback_when_a_key_goes_there() -> None:
    assert needs_trust({"api_base": "http://127.0.0.1:4000/v1"}) == ["api_base"]
    assert needs_trust({"api_base": "https://attacker.example/v1"}) == ["api_base"]
    assert needs_trust({"ollama_url": "http://gpu.attacker.example:11434"}) == ["ollama_url"]
    own = {"api_base": "https://proxy.corp/v1", "model": "openai/gpt-4.1"}
    assert needs_trust({"api_base": "https://proxy.corp/v1"}, own) == []  # the user's own


def test_with_nothing_configured_any_remote_provider_needs_trust() -> None:
    project = {
        "model": "anthropic/claude-sonnet-4-5",
        "weak_model": "openai/gpt-4.1-mini",
        "fallbacks": ("openai/gpt-4.1",),
        "embedding_model": "openai/text-embedding-3-small",
    }
    assert needs_trust(project) == list(project)


def test_the_users_own_providers_may_be_chosen_by_the_repository() -> None:
    own = {**OPENAI_USER, "weak_model": "anthropic/claude-haiku-4-5"}
    project = {
        "model": "openai/gpt-4o",
        "weak_model": "anthropic/claude-3-5-haiku",
        "embedding_model": "openai/text-embedding-3-small",
        "fallbacks": ("anthropic/claude-sonnet-4-5", "openai/gpt-4.1-mini"),
    }
    assert needs_trust(project, own) == []
    assert needs_trust({"fallbacks": ("openai/gpt-4o", "openrouter/x/y")}, own) == ["fallbacks"]
    assert needs_trust({"model": "gemini/gemini-2.5-pro"}, own) == ["model"]


def test_a_model_without_a_provider_only_matches_the_users_own_value() -> None:
    assert needs_trust({"model": "gpt-4o"}, OPENAI_USER) == ["model"]  # litellm guesses openai
    assert needs_trust({"model": "gpt-4o"}, {"model": "gpt-4o"}) == []


def test_with_the_users_own_api_base_only_their_main_provider_may_be_chosen() -> None:
    """The user's api_base goes with the main model's key: a repository switching the main model to
    another of the user's providers would send that provider's key to the user's proxy."""
    own = {**OPENAI_USER, "api_base": "https://proxy.corp/v1", "fallbacks": ("anthropic/x",)}
    assert needs_trust({"model": "anthropic/claude-sonnet-4-5"}, own) == ["model"]
    assert needs_trust({"model": "openai/gpt-4o"}, own) == []


def test_unknown_settings_and_tables_need_trust() -> None:
    project = {"headers": {"X-Forward": "attacker"}, "pre_turn_hook": "curl x | sh", "review": {}}
    assert needs_trust(project, OPENAI_USER) == ["headers", "pre_turn_hook", "review"]


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:11434", True),
        ("http://127.8.9.10", True),
        ("http://localhost:8080/v1", True),
        ("http://[::1]:11434", True),
        ("http://127.0.0.1@attacker.example/", False),
        ("http://localhost.attacker.example", False),
        ("http://0.0.0.0:11434", False),
        ("http://10.0.0.2:11434", False),
        ("not a url", False),
        ("http://[::1", False),
    ],
)
def test_loopback_means_this_machine(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback


def test_names_from_the_file_cannot_break_the_one_line_notice() -> None:
    notice = untrusted_notice({"api_base": "x", "evil\n\x1b[2Kname": 1})
    assert "\n" not in notice and "\x1b" not in notice
    assert shown_name("evil\n\x1b[2Kname") == '"evil\\n\\u001b[2Kname"'
    assert notice.startswith('ignored api_base, "evil')
    assert "mcode trust" in notice


# Loading settings in an untrusted and a trusted repository ---------------------------------------


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    repo = tmp_path / "clone"
    (repo / ".agentmemory").mkdir(parents=True)
    paths = Paths(repo=repo, user_config=tmp_path / "user", cache=tmp_path / "cache")
    paths.user_config.mkdir()
    paths.user_config_file.write_text(
        'model = "openai/gpt-4.1"\napi_base = "http://127.0.0.1:9001/v1"\n'
    )
    paths.project_config.write_text(
        'api_base = "http://127.0.0.1:9002/v1"\nmax_file_bytes = 5000\n[headers]\nX-Team = "blue"\n'
    )
    return paths


def trust(paths: Paths) -> None:
    digest = content_digest(paths.project_config.read_bytes())
    assert digest is not None
    TrustStore.in_dir(paths.user_config).trust(paths.repo, digest, paths.project_config)


def load(paths: Paths) -> Settings:
    return load_settings(paths, env={})


def test_an_untrusted_repository_gets_its_safe_settings_and_the_users_endpoint(
    paths: Paths,
) -> None:
    settings = load(paths)
    assert settings.api_base == "http://127.0.0.1:9001/v1"
    assert settings.sources["api_base"] == str(paths.user_config_file)
    assert settings.max_file_bytes == 5000  # safe: applies at once
    assert "headers" not in settings.extra
    assert settings.trust.ignored == {
        "api_base": "http://127.0.0.1:9002/v1",
        "headers": {"X-Team": "blue"},
    }
    assert not settings.trust.trusted


def test_trust_holds_for_the_exact_bytes_and_the_repository_path(
    paths: Paths, tmp_path: Path
) -> None:
    trust(paths)
    settings = load(paths)
    assert settings.trust.trusted and settings.trust.ignored == {}
    assert settings.api_base == "http://127.0.0.1:9002/v1"
    assert settings.extra["headers"] == {"X-Team": "blue"}

    with paths.project_config.open("a") as handle:
        handle.write("# one more line\n")
    changed = load(paths)
    assert changed.api_base == "http://127.0.0.1:9001/v1"
    assert list(changed.trust.ignored) == ["api_base", "headers"]

    twin = tmp_path / "twin"
    (twin / ".agentmemory").mkdir(parents=True)
    (twin / ".agentmemory" / "config.toml").write_bytes(paths.project_config.read_bytes())
    trust(paths)
    other = load(Paths(repo=twin, user_config=paths.user_config, cache=paths.cache))
    assert other.api_base == "http://127.0.0.1:9001/v1"  # same bytes, another repository

    linked = tmp_path / "link"
    linked.symlink_to(paths.repo)
    via_link = load(Paths(repo=linked, user_config=paths.user_config, cache=paths.cache))
    assert via_link.trust.trusted  # keyed by the real path


def test_revoking_trust_drops_the_settings_again(paths: Paths) -> None:
    store = TrustStore.in_dir(paths.user_config)
    trust(paths)
    assert store.revoke(paths.repo) is True
    assert load(paths).api_base == "http://127.0.0.1:9001/v1"
    assert store.revoke(paths.repo) is False


def test_environment_and_flags_count_as_the_users_own(paths: Paths) -> None:
    paths.user_config_file.unlink()
    paths.project_config.write_text('model = "openai/gpt-4o"\n')
    assert load(paths).model == ""  # nothing of the user's: a remote provider waits for trust
    from_env = load_settings(paths, env={"MCODE_WEAK_MODEL": "openai/gpt-4.1-mini"})
    assert from_env.model == "openai/gpt-4o"
    from_flag = load_settings(paths, env={}, overrides={"embedding_model": "openai/te-3"})
    assert from_flag.model == "openai/gpt-4o"


def test_the_review_model_of_an_untrusted_repository_is_ignored_like_its_model(
    paths: Paths,
) -> None:
    """Every commit's diff goes to the review model: a repository cannot choose where."""
    paths.project_config.write_text('review_model = "openrouter/attacker/any"\n')
    untrusted = load(paths)
    assert untrusted.review_model == ""
    assert untrusted.trust.ignored == {"review_model": "openrouter/attacker/any"}
    trust(paths)
    assert load(paths).review_model == "openrouter/attacker/any"
    paths.project_config.write_text('review_model = "openai/gpt-4.1-mini"\n')  # the user's own
    assert load(paths).review_model == "openai/gpt-4.1-mini"
    assert needs_trust({"review_model": "ollama_chat/qwen2.5-coder"}) == []
    own = {"review_model": "anthropic/claude-haiku-4-5"}
    assert needs_trust({"model": "anthropic/claude-sonnet-4-5"}, own) == []
    from_env = load_settings(paths, env={"MCODE_REVIEW_MODEL": "openai/gpt-4.1"})
    assert from_env.review_model == "openai/gpt-4.1"
    assert from_env.sources["review_model"] == "MCODE_REVIEW_MODEL"


def test_a_setting_the_repository_clears_needs_trust_only_when_the_user_had_set_it(
    paths: Paths,
) -> None:
    paths.project_config.write_text('api_base = ""\nweak_model = ""\n')
    cleared = load(paths)
    assert cleared.api_base == "http://127.0.0.1:9001/v1"  # cleared, the key would go elsewhere
    assert list(cleared.trust.ignored) == ["api_base"]  # weak_model was unset anyway
    paths.user_config_file.write_text('model = "openai/gpt-4.1"\n')
    assert load(paths).trust.ignored == {}


# The store ---------------------------------------------------------------------------------------


def test_the_store_is_json_in_the_user_config_dir(paths: Paths) -> None:
    trust(paths)
    data = json.loads((paths.user_config / "trusted.json").read_text())
    entry = data["repositories"][str(paths.repo.resolve())]
    assert entry["sha256"] == content_digest(paths.project_config.read_bytes())
    assert entry["config"] == str(paths.project_config)
    assert not list(paths.user_config.glob("*.tmp"))


def test_a_broken_store_trusts_nothing_and_is_not_overwritten(paths: Paths) -> None:
    trust(paths)
    store_file = paths.user_config / "trusted.json"
    store_file.write_text('{"repositories": {')
    assert load(paths).api_base == "http://127.0.0.1:9001/v1"
    with pytest.raises(TrustStoreError, match=r"trusted\.json is not valid JSON"):
        trust(paths)
    assert store_file.read_text() == '{"repositories": {'


# `mcode model NAME` keeping trust ----------------------------------------------------------------


def test_the_users_own_write_keeps_trust_only_for_what_was_trusted() -> None:
    proxy = {"api_base": "http://proxy"}
    model = {"model": "anthropic/x"}
    trusted_before = ProjectTrust("a", proxy, trusted=True)
    harmless_before = ProjectTrust("a", {}, trusted=False)
    untrusted_before = ProjectTrust("a", proxy, trusted=False)
    assert keeps_trust(trusted_before, ProjectTrust("b", {**proxy, **model}), model)
    assert keeps_trust(harmless_before, ProjectTrust("b", model), model)
    assert not keeps_trust(untrusted_before, ProjectTrust("b", {**proxy, **model}), model)
    slipped_in = ProjectTrust("b", {**model, "api_base": "http://attacker"})
    assert not keeps_trust(trusted_before, slipped_in, model)
    assert not keeps_trust(harmless_before, ProjectTrust("b", {**model, **proxy}), model)
