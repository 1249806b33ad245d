"""What a litellm model name says about where its requests go: its provider, and whether that
provider needs a key. Shared by the agent (which key to send) and the trust rules (which settings
a repository may choose without asking)."""

from __future__ import annotations

# Local servers need no key.
KEYLESS_PROVIDERS = frozenset({"ollama", "ollama_chat", "lm_studio", "hosted_vllm", "llamafile"})


def provider_of(model: str) -> str:
    """`openai` for `openai/gpt-4.1`; "" for a bare name such as `gpt-4o`, whose provider litellm
    guesses."""
    return model.split("/", 1)[0].lower() if "/" in model else ""
