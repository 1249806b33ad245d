from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcode.embed import (
    CachedEmbedder,
    EmbedderUnavailable,
    EmbeddingCache,
    LiteLLMEmbedder,
    LocalEmbedder,
    make_embedder,
    text_hash,
)
from mcode.embed.local import VERIFIED_FILE, default_model_dir, verify_model

# --- the bundled local model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def local() -> LocalEmbedder:
    embedder = LocalEmbedder(threads=2)
    embedder.load()
    return embedder


def test_local_model_gives_normalised_384_dim_vectors_that_rank_by_meaning(local):
    cat, kitten, tax = local.embed_documents(
        ["a cat sits on the mat", "a kitten is sitting on a rug", "quarterly tax filing deadline"]
    )
    assert local.dim == 384 and cat.shape == (384,) and cat.dtype == np.float32
    for vector in (cat, kitten, tax):
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    assert float(cat @ kitten) > float(cat @ tax) + 0.3
    query = local.embed_query("a cat sits on the mat")
    assert query.shape == (384,)
    np.testing.assert_allclose(query, cat, atol=1e-5)


def test_local_id_names_model_and_truncation():
    assert LocalEmbedder().id == "local:all-MiniLM-L6-v2-int8:32"
    assert LocalEmbedder(max_tokens=128).id == "local:all-MiniLM-L6-v2-int8:128"


def test_batch_embedding_keeps_order_and_matches_one_by_one(local):
    words = ["parse", "the", "json", "document", "and", "return", "a", "dict", "of", "values"]
    texts = [" ".join(words[: 1 + i % len(words)] * (1 + i // 7)) for i in range(40)]
    texts += ["", "x", "def f(x):\n    return x + 1\n" * 30]
    batched = local.embed_documents(texts)
    assert batched.shape == (len(texts), 384)
    single = np.stack([local.embed_documents([t])[0] for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_long_text_is_truncated_to_max_tokens():
    embedder = LocalEmbedder(max_tokens=32, threads=2)
    long_text = "def handler(request):\n    return respond(request.body)\n" * 500
    first, with_tail = embedder.embed_documents([long_text, long_text + "\nraise SystemExit(1)"])
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-5
    # Text past the first 32 tokens does not reach the model.
    np.testing.assert_allclose(first, with_tail, atol=1e-6)


def test_a_query_is_read_further_than_a_document():
    """A chunk is cut short to embed fast; a bug report's prose goes on and all of it counts."""
    embedder = LocalEmbedder(max_tokens=8, query_tokens=64, threads=2)
    report = "the parser crashes on empty input files"
    longer = report + " after the config is reloaded twice"
    short_doc, long_doc = embedder.embed_documents([report, longer])
    np.testing.assert_allclose(short_doc, long_doc, atol=1e-6)
    assert float(embedder.embed_query(report) @ embedder.embed_query(longer)) < 0.99


def test_text_with_lone_surrogates_embeds(local):
    vector = local.embed_query("name = b'\udcff'.decode()")
    assert np.isfinite(vector).all()


def test_corrupt_model_file_is_refused_with_its_path(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    model = model_dir / "model.onnx"
    shutil.copyfile(default_model_dir() / "model.onnx", model)
    with model.open("r+b") as handle:
        handle.seek(1_000_000)
        byte = handle.read(1)
        handle.seek(1_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(EmbedderUnavailable, match="corrupt") as info:
        LocalEmbedder(model_dir, cache_dir=tmp_path / "cache").embed_query("hello")
    assert str(model) in str(info.value)


def test_fake_model_file_is_refused(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(EmbedderUnavailable, match=str(tmp_path / "model.onnx")):
        LocalEmbedder(tmp_path).load()


def test_missing_model_dir_or_file_is_reported(tmp_path):
    with pytest.raises(EmbedderUnavailable, match=str(tmp_path / "nowhere")):
        LocalEmbedder(tmp_path / "nowhere").embed_documents(["x"])
    with pytest.raises(EmbedderUnavailable, match=str(tmp_path / "model.onnx")):
        LocalEmbedder(tmp_path).embed_documents(["x"])


def test_model_verification_is_remembered_until_the_file_changes(tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"pretend weights")
    digest = hashlib.sha256(b"pretend weights").hexdigest()
    cache_dir = tmp_path / "cache"
    verify_model(model, digest, cache_dir)
    record = json.loads((cache_dir / VERIFIED_FILE).read_text())
    assert record[str(model.resolve())]["sha256"] == digest
    verify_model(model, digest, cache_dir)  # answered from the record
    model.write_bytes(b"tampered weights")
    with pytest.raises(EmbedderUnavailable, match=str(model)):
        verify_model(model, digest, cache_dir)


# --- the cache -----------------------------------------------------------------------------------


class CountingEmbedder:
    """Deterministic vectors from the text's hash; records every text it is asked to embed."""

    def __init__(self, id: str = "fake:1", dim: int = 4) -> None:
        self.id = id
        self.dim = dim
        self.seen: list[str] = []

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return np.stack([self.vector(t) for t in texts]) if texts else np.empty((0, self.dim))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def vector(self, text: str) -> np.ndarray:
        seed = int(text_hash(f"{self.id}|{text}")[:8], 16)
        raw = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        return raw / np.linalg.norm(raw)


def test_cached_embedder_computes_each_text_once(tmp_path):
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, EmbeddingCache.in_dir(tmp_path))
    texts = ["alpha", "beta", "gamma", "beta"]
    first = cached.embed_documents(texts)
    assert sorted(inner.seen) == ["alpha", "beta", "gamma"]
    inner.seen.clear()
    second = cached.embed_documents(texts)
    assert inner.seen == []
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(second[1], inner.vector("beta"))
    assert (cached.hits, cached.misses) == (4, 3)
    assert (cached.id, cached.dim) == (inner.id, inner.dim)


def test_cache_is_shared_across_instances_but_not_across_embedder_ids(tmp_path):
    one = CountingEmbedder("fake:one")
    CachedEmbedder(one, EmbeddingCache.in_dir(tmp_path)).embed_documents(["shared text"])
    again = CountingEmbedder("fake:one")
    CachedEmbedder(again, EmbeddingCache.in_dir(tmp_path)).embed_documents(["shared text"])
    other = CountingEmbedder("fake:two")
    result = CachedEmbedder(other, EmbeddingCache.in_dir(tmp_path)).embed_documents(["shared text"])
    assert again.seen == [] and other.seen == ["shared text"]
    np.testing.assert_allclose(result[0], other.vector("shared text"))


def test_cached_vectors_of_another_size_are_recomputed(tmp_path):
    cache = EmbeddingCache.in_dir(tmp_path)
    cache.put_many([(("fake:1", text_hash("t")), np.ones(3, dtype=np.float32))])
    inner = CountingEmbedder("fake:1", dim=4)
    vectors = CachedEmbedder(inner, cache).embed_documents(["t"])
    assert vectors.shape == (1, 4) and inner.seen == ["t"]
    assert cache.get_many([("fake:1", text_hash("t"))])[("fake:1", text_hash("t"))].shape == (4,)


def test_unusable_cache_still_embeds(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    inner = CountingEmbedder()
    vectors = CachedEmbedder(inner, EmbeddingCache(blocker / "x.sqlite3")).embed_documents(["a"])
    np.testing.assert_allclose(vectors[0], inner.vector("a"))


def _write_cache(path: str, worker: str, start: Any, rounds: int) -> None:
    start.wait(30)
    cache = EmbeddingCache(Path(path))
    for r in range(rounds):
        items = [
            ((f"fake:{worker}", f"{r}-{i}"), np.full(8, r, dtype=np.float32)) for i in range(50)
        ]
        items.append((("fake:shared", f"{r}"), np.full(8, r, dtype=np.float32)))
        cache.put_many(items)
    cache.close()


def test_two_processes_write_the_cache_at_once(tmp_path):
    path = tmp_path / "cache" / "embeddings.sqlite3"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    rounds = 200
    workers = [
        ctx.Process(target=_write_cache, args=(str(path), name, start, rounds)) for name in "ab"
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    cache = EmbeddingCache(path)
    keys = [(f"fake:{w}", f"{r}-{i}") for w in "ab" for r in range(rounds) for i in range(50)]
    keys += [("fake:shared", f"{r}") for r in range(rounds)]
    found = cache.get_many(keys)
    assert len(found) == len(keys)
    assert all(float(found[("fake:a", f"{r}-7")][0]) == r for r in range(rounds))


# --- choosing an embedder ------------------------------------------------------------------------


def test_make_embedder_by_name(tmp_path):
    assert make_embedder("none", tmp_path) is None
    local = make_embedder("local", tmp_path)
    assert isinstance(local, CachedEmbedder) and local.id == "local:all-MiniLM-L6-v2-int8:32"
    bare = make_embedder("local", None, model_dir=tmp_path)
    assert isinstance(bare, LocalEmbedder)
    remote = make_embedder("openai/text-embedding-3-small", None, api_base="http://127.0.0.1:1")
    assert isinstance(remote, LiteLLMEmbedder) and remote.api_base == "http://127.0.0.1:1"
    with pytest.raises(ValueError):
        make_embedder("  ", None)


def test_importing_and_choosing_loads_no_heavy_library(tmp_path):
    code = (
        "import sys; from pathlib import Path; import mcode.embed as e;"
        "heavy = ('numpy', 'onnxruntime', 'tokenizers', 'litellm');"
        "assert not [m for m in heavy if m in sys.modules], 'import';"
        f"e.make_embedder('local', Path({str(tmp_path)!r})); e.make_embedder('openai/x', None);"
        "assert not [m for m in heavy[1:] if m in sys.modules], 'make'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- a litellm model over real HTTP --------------------------------------------------------------


def _server_vector(text: str) -> list[float]:
    """Deliberately not unit length, so the test sees the client normalise."""
    return [float(len(text)), float(text.count("a")), float(text.count("e")), 3.0]


class _EmbeddingsHandler(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        auth = self.headers.get("Authorization", "")
        self.server.requests.append({"path": self.path, "auth": auth, "body": body})  # type: ignore[attr-defined]
        if auth != "Bearer sk-test":
            self._reply(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
            return
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for index, text in enumerate(inputs):
            vector: Any = _server_vector(text)
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        data.reverse()  # clients must order by index, not by position
        usage = {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}
        self._reply(200, {"object": "list", "data": data, "model": body["model"], "usage": usage})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def embeddings_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingsHandler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _api_base(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


def _expected(text: str) -> np.ndarray:
    raw = np.asarray(_server_vector(text), dtype=np.float32)
    return raw / np.linalg.norm(raw)


def test_litellm_embedder_over_http(embeddings_server):
    embedder = LiteLLMEmbedder(
        "openai/test-embed", api_base=_api_base(embeddings_server), api_key="sk-test", batch_size=2
    )
    texts = ["a", "banana bread", "", "see the tree", "ab"]
    vectors = embedder.embed_documents(texts)
    assert vectors.shape == (5, 4) and vectors.dtype == np.float32 and embedder.dim == 4
    np.testing.assert_allclose(vectors, np.stack([_expected(t or " ") for t in texts]), atol=1e-6)
    sent = embeddings_server.requests
    assert [r["path"] for r in sent] == ["/v1/embeddings"] * 3
    assert {r["auth"] for r in sent} == {"Bearer sk-test"}
    assert [r["body"]["model"] for r in sent] == ["test-embed"] * 3
    assert embedder.id == "litellm:openai/test-embed:8000"


def test_litellm_dim_is_probed_when_asked_first(embeddings_server):
    embedder = LiteLLMEmbedder(
        "openai/test-embed", api_base=_api_base(embeddings_server), api_key="sk-test"
    )
    assert embedder.dim == 4
    assert len(embeddings_server.requests) == 1


def test_litellm_failure_is_unavailable_naming_the_model(embeddings_server):
    embedder = LiteLLMEmbedder(
        "openai/test-embed",
        api_base=_api_base(embeddings_server),
        api_key="sk-wrong",
        num_retries=0,
    )
    with pytest.raises(EmbedderUnavailable, match="openai/test-embed"):
        embedder.embed_query("hello")


def test_cached_litellm_embedder_skips_the_network_the_second_time(
    embeddings_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    embedder = make_embedder("openai/test-embed", tmp_path, api_base=_api_base(embeddings_server))
    assert isinstance(embedder, CachedEmbedder)
    first = embedder.embed_documents(["one", "two"])
    calls = len(embeddings_server.requests)
    second = embedder.embed_documents(["two", "one"])
    assert len(embeddings_server.requests) == calls
    np.testing.assert_array_equal(first[::-1], second)
