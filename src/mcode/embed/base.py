"""What every embedder promises, so the store and the retrieval code never depend on a model."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


class EmbedderUnavailable(Exception):
    """The embedder cannot produce vectors: model file missing or corrupt, endpoint failing.

    Callers fall back to lexical search; the message names the file or the model so the user can
    act.
    """


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors.

    `id` names the model and every setting that changes the vectors; it is part of the embedding
    cache key and of the store's schema, so vectors from different embedders never mix.
    """

    @property
    def id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape (len(texts), dim), rows in the order of `texts`."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """float32 array of shape (dim,)."""
        ...


def text_hash(text: str) -> str:
    """Content address of a text in the embedding cache.

    `surrogatepass` keeps texts decoded with `surrogateescape` hashable instead of raising.
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def safe_text(text: str) -> str:
    """The text with lone surrogates replaced, which tokenizers and JSON encoders reject."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text
