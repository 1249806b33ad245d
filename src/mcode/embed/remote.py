"""Embeddings from any model litellm can reach (OpenAI, Ollama, a local OpenAI-compatible server).

litellm is imported on the first call only: importing it takes seconds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from mcode.embed.base import EmbedderUnavailable, safe_text

# Roughly 2,000 tokens of code: under every common embedding model's input limit that matters for
# retrieval, and a chunk longer than that is diluted into a vague vector anyway.
DEFAULT_MAX_CHARS = 8000


def _import_litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # Otherwise every failed call prints a "Give Feedback / Get Help" banner into the terminal.
    litellm.suppress_debug_info = True
    return litellm


def _normalise(rows: np.ndarray) -> np.ndarray:
    """Providers do not all normalise; the store's cosine scores assume unit vectors."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.clip(norms, 1e-12, None)).astype(np.float32)


class LiteLLMEmbedder:
    """A litellm embedding model, called in batches of `batch_size` texts.

    `dim` is learnt from the first response; reading it before any call costs one probe request.
    Any failure of the call is an EmbedderUnavailable naming the model.
    """

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        dim: int | None = None,
        batch_size: int = 64,
        max_chars: int = DEFAULT_MAX_CHARS,
        timeout: float = 60.0,
        num_retries: int = 2,
    ) -> None:
        if not model.strip():
            raise ValueError("an embedding model name is required")
        self.model = model
        self.api_base = api_base
        self.api_key = api_key
        self.batch_size = batch_size
        self.max_chars = max_chars
        self.timeout = timeout
        self.num_retries = num_retries
        self.id = f"litellm:{model}:{max_chars}"
        self._dim = dim

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.embed_query("dimension probe")
        assert self._dim is not None
        return self._dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        prepared = [safe_text(t)[: self.max_chars] or " " for t in texts]
        parts = [
            self._call(prepared[start : start + self.batch_size])
            for start in range(0, len(prepared), self.batch_size)
        ]
        return np.concatenate(parts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def _call(self, batch: list[str]) -> np.ndarray:
        litellm = _import_litellm()
        try:
            response = litellm.embedding(
                model=self.model,
                input=batch,
                api_base=self.api_base,
                api_key=self.api_key,
                timeout=self.timeout,
                num_retries=self.num_retries,
            )
        except Exception as exc:  # litellm maps provider errors onto many unrelated classes
            raise EmbedderUnavailable(f"embedding model {self.model} failed: {exc}") from exc
        rows = self._rows(response, len(batch))
        if self._dim is None:
            self._dim = rows.shape[1]
        elif rows.shape[1] != self._dim:
            raise EmbedderUnavailable(
                f"embedding model {self.model} returned {rows.shape[1]} dimensions, "
                f"expected {self._dim}"
            )
        return _normalise(rows)

    def _rows(self, response: Any, expected: int) -> np.ndarray:
        data = sorted(response.data, key=lambda item: _field(item, "index"))
        if len(data) != expected:
            raise EmbedderUnavailable(
                f"embedding model {self.model} returned {len(data)} vectors for {expected} texts"
            )
        return np.asarray([_field(item, "embedding") for item in data], dtype=np.float32)


def _field(item: Any, name: str) -> Any:
    """litellm gives dicts for some providers and objects for others."""
    return item[name] if isinstance(item, dict) else getattr(item, name)
