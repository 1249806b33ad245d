"""Text to vectors for archival memory: the bundled local model, any litellm model, and a cache.

Importing this package is cheap: numpy, onnxruntime, tokenizers and litellm load only when an
embedder class is first used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcode.embed.base import Embedder, EmbedderUnavailable, text_hash

if TYPE_CHECKING:
    from mcode.embed.cache import CachedEmbedder, EmbeddingCache
    from mcode.embed.local import LocalEmbedder
    from mcode.embed.remote import LiteLLMEmbedder

__all__ = [
    "CachedEmbedder",
    "Embedder",
    "EmbedderUnavailable",
    "EmbeddingCache",
    "LiteLLMEmbedder",
    "LocalEmbedder",
    "make_embedder",
    "text_hash",
]

_LAZY = {
    "CachedEmbedder": "mcode.embed.cache",
    "EmbeddingCache": "mcode.embed.cache",
    "LocalEmbedder": "mcode.embed.local",
    "LiteLLMEmbedder": "mcode.embed.remote",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def make_embedder(
    spec: str,
    cache_dir: Path | None,
    *,
    model_dir: Path | None = None,
    api_base: str | None = None,
) -> Embedder | None:
    """The embedder a setting names: "local", "none" (lexical search only) or a litellm model.

    With a `cache_dir`, vectors are cached there (shared by all repos) and the local model's
    checksum is verified once per file rather than on every start. Nothing loads before the first
    embed.
    """
    name = spec.strip()
    if not name:
        raise ValueError("embedding model is empty: use 'local', 'none' or a litellm model name")
    inner: Embedder
    if name.lower() == "none":
        return None
    if name.lower() == "local":
        from mcode.embed.local import LocalEmbedder

        inner = LocalEmbedder(model_dir, cache_dir=cache_dir)
    else:
        from mcode.embed.remote import LiteLLMEmbedder

        inner = LiteLLMEmbedder(name, api_base=api_base or None)
    if cache_dir is None:
        return inner
    from mcode.embed.cache import CachedEmbedder, EmbeddingCache

    return CachedEmbedder(inner, EmbeddingCache.in_dir(cache_dir))
