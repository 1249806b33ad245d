"""A stand-in for the embedding model: deterministic, instant, and the same vector for the same text."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mcode.embed.base import text_hash

DIM = 16


class HashEmbedder:
    """Deterministic unit vectors from the text: the same text always gets the same vector."""

    id = "test:hash"
    dim = DIM

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.empty((0, DIM))

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    @staticmethod
    def _vector(text: str) -> np.ndarray:
        seed = int(text_hash(text)[:8], 16)
        raw = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
        return raw / np.linalg.norm(raw)
