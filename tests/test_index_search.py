"""End to end over real repositories and `mcode`'s commands: index, search, freshness, failure.

The commands run in this process (`run_in_process`) unless the process is the subject: the first
test runs them as a shell does, others kill them or stop them with a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from support.cli import run_in_process
from support.repos import git, make_repo, mcode_env, opened_index, run_mcode, write_files

from mcode.config import Paths

FILES = {
    "shop/cart.py": '''"""Shopping cart."""

import decimal


class Cart:
    """Holds the items a customer is about to buy."""

    def add_item(self, sku: str, quantity: int) -> None:
        """Put `quantity` units of `sku` in the cart."""
        self.items[sku] = self.items.get(sku, 0) + quantity

    def total_price(self) -> decimal.Decimal:
        """Sum of unit price times quantity over every line."""
        return sum(PRICES[s] * q for s, q in self.items.items())
''',
    "shop/payment.py": '''"""Talking to the card processor."""


def charge_credit_card(card_number: str, amount: int) -> str:
    """Charge a card through the processor and return the transaction id."""
    return processor.charge(card_number, amount)


def refund_transaction(transaction_id: str) -> None:
    """Give the money of a transaction back."""
    processor.refund(transaction_id)
''',
    "web/server.js": """// HTTP entry point
function startServer(port) {
  return http.createServer(handleRequest).listen(port);
}

class RequestRouter {
  route(path) { return this.routes[path]; }
}
""",
    "docs/guide.md": "# Guide\n\nHow to run the shop.\n\n## Refunds\n\nUse refund_transaction.\n",
    "tests/test_cart.py": "from shop.cart import Cart\n\ndef test_add_item():\n    Cart().add_item('a', 1)\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", FILES)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return mcode_env(tmp_path / "home", MCODE_EMBEDDING_MODEL="none")


def index(repo: Path, env: dict[str, str], *extra: str, run=run_in_process) -> dict:
    out = run(["index", "--json", "--repo", str(repo), *extra], env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def search(
    repo: Path, env: dict[str, str], query: str, *extra: str, run=run_in_process
) -> list[dict]:
    out = run(["search", query, "--json", "--repo", str(repo), *extra], env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["results"]


def test_index_then_search_finds_the_function_by_its_name_and_by_prose(repo, env):
    """The commands as a shell runs them: `python -m mcode`, each in its own process."""
    report = index(repo, env, run=run_mcode)
    assert report["files"] == len(FILES)
    assert report["changed"] == len(FILES)
    results = search(repo, env, "charge_credit_card", run=run_mcode)
    assert results[0]["path"] == "shop/payment.py"
    assert results[0]["symbol"] == "charge_credit_card"
    assert set(results[0]) == {
        "path",
        "start_line",
        "end_line",
        "symbol",
        "kind",
        "score",
        "snippet",
    }
    assert results[0]["start_line"] <= 4 <= results[0]["end_line"]
    results = search(repo, env, "give money of a transaction back to the customer")
    assert results[0]["symbol"] == "refund_transaction"


def test_camel_case_and_snake_case_are_split_for_matching(repo, env):
    index(repo, env)
    assert search(repo, env, "request router")[0]["symbol"] == "RequestRouter"
    assert search(repo, env, "total price of the cart")[0]["symbol"] == "Cart.total_price"


def test_query_from_stdin_and_file_level(repo, env):
    index(repo, env)
    out = run_in_process(
        ["search", "-", "--json", "--level", "file", "-k", "2", "--repo", str(repo)],
        env,
        stdin="where do we talk to the card processor to charge a card",
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)["results"]
    assert len(results) <= 2
    assert results[0]["path"] == "shop/payment.py"
    assert len({r["path"] for r in results}) == len(results)


def test_stack_trace_frames_point_at_the_right_chunk(repo, env):
    index(repo, env)
    report = """Traceback (most recent call last):
  File "/home/me/work/shop/cart.py", line 16, in total_price
KeyError: 'sku-1'
"""
    results = search(repo, env, report)
    assert results[0]["path"] == "shop/cart.py"
    assert results[0]["symbol"] == "Cart.total_price"


def test_a_long_bug_report_works_like_a_short_query(repo, env):
    index(repo, env)
    filler = "We saw this in production after the last deploy and it keeps happening. " * 60
    report = filler + "\nThe refund_transaction call never gives the money back.\n" + filler
    assert len(report) > 8000
    assert search(repo, env, report, "--level", "file")[0]["path"] == "shop/payment.py"


def test_second_run_is_incremental_and_sees_edits_and_deletions(repo, env):
    index(repo, env)
    again = index(repo, env)
    assert again["changed"] == 0 and again["unchanged"] == len(FILES)
    write_files(
        repo, {"shop/payment.py": FILES["shop/payment.py"] + "\n\ndef void_invoice(x):\n    pass\n"}
    )
    (repo / "web/server.js").unlink()
    third = index(repo, env)
    assert third["changed"] == 1 and third["deleted"] == 1
    assert search(repo, env, "void_invoice")[0]["symbol"] == "void_invoice"
    assert all(r["path"] != "web/server.js" for r in search(repo, env, "startServer RequestRouter"))


def test_search_never_returns_a_deleted_file_even_before_reindexing(repo, env):
    index(repo, env)
    (repo / "shop/payment.py").unlink()
    assert all(r["path"] != "shop/payment.py" for r in search(repo, env, "charge_credit_card"))


def test_untracked_files_are_indexed_and_ignored_ones_are_not(repo, env):
    write_files(
        repo, {"shop/new.py": "def brand_new_helper():\n    pass\n", ".gitignore": "secret/\n"}
    )
    write_files(repo, {"secret/keys.py": "def hidden_secret_function():\n    pass\n"})
    index(repo, env)
    assert search(repo, env, "brand_new_helper")[0]["path"] == "shop/new.py"
    assert all(r["path"] != "secret/keys.py" for r in search(repo, env, "hidden_secret_function"))


def test_skipped_files_are_counted_by_reason(repo, env):
    (repo / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    (repo / "huge.py").write_text("x = 1\n" * 400_000)
    (repo / "app.min.js").write_text("var a=1;" * 100)
    (repo / "node_modules/lib").mkdir(parents=True)
    (repo / "node_modules/lib/index.js").write_text("function f(){}\n")
    (repo / "bad.py").write_bytes(b"def caf\xe9_latin1():\n    return '\xff'\n")
    (repo / "broken.py").write_text(
        "def good_function():\n    return 1\n\ndef broken(:\n    pass\n"
    )
    report = index(repo, env)
    skipped = report["skipped"]
    assert "blob.bin" in skipped["binary"]["paths"]
    assert "huge.py" in skipped["oversized"]["paths"]
    assert "app.min.js" in skipped["generated"]["paths"] + skipped.get("minified", {}).get(
        "paths", []
    )
    assert "node_modules/lib/index.js" in skipped["vendored"]["paths"]
    assert "bad.py" in report["invalid_utf8"]
    assert "broken.py" in report["syntax_errors"]
    assert search(repo, env, "good_function")[0]["path"] == "broken.py"


def skipped_paths(report: dict, reason: str) -> list[str]:
    return report["skipped"].get(reason, {}).get("paths", [])


def test_missing_repo_is_a_usage_error_with_one_line(tmp_path, env):
    out = run_in_process(["index", "--repo", str(tmp_path / "nope")], env)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "does not exist" in out.stderr


def test_search_before_indexing_says_what_to_run(repo, env):
    out = run_in_process(["search", "cart", "--repo", str(repo)], env)
    assert out.returncode == 1
    assert "mcode index" in out.stderr and out.stderr.count("\n") == 1


def test_empty_repo_indexes_to_nothing(tmp_path, env):
    empty = make_repo(tmp_path / "empty", {})
    report = index(empty, env)
    assert report["files"] == 0 and report["total_chunks"] == 0


def test_broken_project_config_is_a_clear_usage_error(repo, env):
    (repo / ".agentmemory").mkdir()
    (repo / ".agentmemory/config.toml").write_text("model = [unclosed\n")
    out = run_in_process(["index", "--repo", str(repo)], env)
    assert out.returncode == 2
    assert "config.toml" in out.stderr and "invalid TOML" in out.stderr


def test_a_second_writer_gets_a_clear_message_not_a_corrupt_table(repo, env):
    from mcode.store import IndexLock

    index(repo, env)
    with IndexLock(repo / ".agentmemory/index/write.lock", purpose="another test"):
        out = run_in_process(["index", "--repo", str(repo)], env)
    assert out.returncode == 1
    assert "being written by another test" in out.stderr
    assert search(repo, env, "charge_credit_card")[0]["symbol"] == "charge_credit_card"


def test_kill_9_during_indexing_then_the_next_run_completes(tmp_path, env):
    files = {
        f"pkg/mod_{i}.py": f"def function_number_{i}(x):\n    return x + {i}\n" for i in range(400)
    }
    repo = make_repo(tmp_path / "big", files)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcode", "index", "--repo", str(repo)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # Kill as soon as the store has started to receive rows (or the run ends first).
    lance = repo / ".agentmemory/index/lance"
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if lance.exists() and any(lance.rglob("*.lance")):
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for i in range(0, 400, 2):
        (repo / f"pkg/mod_{i}.py").unlink()
    report = index(repo, env)
    assert report["files"] == 200
    assert report["total_chunks"] == 200
    results = search(repo, env, "function_number_10 function_number_11", "-k", "50")
    assert results and all(int(r["path"].split("_")[1][:-3]) % 2 == 1 for r in results)


def test_changing_the_embedder_rebuilds_instead_of_crashing(repo, env, tmp_path):
    index(repo, env)
    from mcode.store import Manifest

    manifest = Manifest(Paths.for_repo(repo).index / "manifest.db")
    manifest.set_meta("identity", {"schema": 0, "embedder": "old"})
    manifest.close()
    out = run_in_process(["search", "cart", "--repo", str(repo)], env)
    assert out.returncode == 1 and "mcode index" in out.stderr
    report = index(repo, env)
    assert report["changed"] == len(FILES)
    assert search(repo, env, "charge_credit_card")[0]["symbol"] == "charge_credit_card"


def test_works_outside_a_git_repository(tmp_path, env):
    plain = tmp_path / "plain"
    write_files(plain, {"a.py": "def outside_git_function():\n    pass\n"})
    index(plain, env)
    assert search(plain, env, "outside_git_function")[0]["path"] == "a.py"


def test_git_checkout_of_another_branch_reindexes_only_what_changed(repo, env):
    index(repo, env)
    git(repo, "checkout", "-q", "-b", "feature")
    write_files(repo, {"shop/cart.py": FILES["shop/cart.py"].replace("total_price", "grand_total")})
    git(repo, "commit", "-qam", "rename")
    report = index(repo, env)
    assert report["changed"] == 1
    git(repo, "checkout", "-q", "main")
    report = index(repo, env)
    assert report["changed"] == 1
    assert search(repo, env, "total_price")[0]["symbol"] == "Cart.total_price"


def test_indexing_leaves_git_status_clean(repo, env):
    index(repo, env)
    assert git(repo, "status", "--porcelain") == ""


def test_watch_keeps_search_fresh_as_files_are_saved(repo, env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcode", "watch", "--repo", str(repo)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "watching" in proc.stderr.readline() + proc.stderr.readline()
        write_files(repo, {"shop/fresh.py": "def freshly_saved_function():\n    return 1\n"})
        deadline = time.monotonic() + 30
        found = []
        while time.monotonic() < deadline and not found:
            found = [
                r
                for r in search(repo, env, "freshly_saved_function")
                if r["path"] == "shop/fresh.py"
            ]
        assert found, "the saved file never became searchable"
        (repo / "shop/fresh.py").unlink()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and found:
            found = [
                r
                for r in search(repo, env, "freshly_saved_function")
                if r["path"] == "shop/fresh.py"
            ]
        assert not found
        out = run_in_process(["index", "--repo", str(repo)], env)
        assert out.returncode == 1 and "mcode watch (pid" in out.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_vectors_from_the_local_model_are_resumable_and_find_code_by_meaning(repo, tmp_path):
    local = mcode_env(tmp_path / "home-local")  # the default embedder: the bundled local model
    lexical_first = index(repo, local, "--no-embed")
    assert lexical_first["vectors_pending"] == lexical_first["total_chunks"] > 0
    assert search(repo, local, "charge_credit_card")[0]["symbol"] == "charge_credit_card"
    report = index(repo, local)
    assert report["vectors_written"] == lexical_first["total_chunks"]
    assert report["vectors_pending"] == 0
    # No word of the query occurs in the function: only the vectors can connect them.
    assert search(repo, local, "undo a purchase")[0]["symbol"] == "refund_transaction"
    # An edit is embedded as it is written: nothing waits for a later pass.
    write_files(
        repo, {"shop/shipping.py": "def ship_parcel(order):\n    return courier.pickup(order)\n"}
    )
    after_edit = index(repo, local)
    assert after_edit["changed"] == 1 and after_edit["vectors_pending"] == 0
    assert search(repo, local, "post the package")[0]["symbol"] == "ship_parcel"


def test_map_prints_a_ranked_outline_within_the_budget(repo, env):
    index(repo, env)
    out = run_in_process(["map", "--tokens", "120", "--json", "--repo", str(repo)], env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert 0 < data["tokens"] <= 120
    shown = {d["symbol"] for f in data["files"] for d in f["definitions"]}
    assert shown & {"Cart", "charge_credit_card", "RequestRouter", "Cart.total_price"}
    text = run_in_process(
        ["map", "--tokens", "2000", "--query", "refund", "--repo", str(repo)], env
    )
    assert text.returncode == 0 and "refund_transaction" in text.stdout


def test_map_keeps_its_focus_and_refuses_one_the_index_does_not_hold(repo, env):
    index(repo, env)
    focused = run_in_process(["map", "--tokens", "30", "--focus", "shop/cart.py"], env, cwd=repo)
    assert focused.returncode == 0, focused.stderr
    assert "shop/cart.py" in focused.stdout
    missing = run_in_process(["map", "--focus", "nonexist.py"], env, cwd=repo)
    assert missing.returncode == 2
    assert missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "nonexist.py" in missing.stderr


class _CountingEmbedder:
    """Constant unit vectors; with `stop`, the user stops the run (Ctrl-C) at the first batch."""

    id = "test:counting"
    dim = 8

    def __init__(self, stop: bool) -> None:
        self.stop = stop

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if self.stop:
            raise KeyboardInterrupt
        return np.full((len(texts), self.dim), 8**-0.5, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


@pytest.mark.parametrize("stopped", [True, False], ids=["stopped", "finished"])
def test_the_full_text_index_covers_every_row_whether_embedding_finished_or_not(tmp_path, stopped):
    """Embedding a large repository takes an hour; searches meanwhile, after the user stops it,
    and after it ends (vectors rewrite the rows they attach to) must not scan rows one by one."""
    repo = make_repo(tmp_path / "repo", FILES)
    with opened_index(repo, tmp_path, _CountingEmbedder(stopped)) as indexer:
        if stopped:
            with pytest.raises(KeyboardInterrupt):
                indexer.update()
        else:
            assert indexer.update().vectors_written == indexer.store.count()
        unindexed = indexer.store.unindexed_rows()
        assert unindexed["text_idx"] == unindexed["head_idx"] == 0
        assert indexer.store.full_text("charge credit card", 3)[0]["symbol"] == "charge_credit_card"


def test_search_ranks_by_words_when_the_embedding_service_fails(repo, tmp_path, llm_server):
    env = mcode_env(
        tmp_path / "home",
        MCODE_EMBEDDING_MODEL="openai/mock-embedding",
        MCODE_API_BASE=llm_server.url,
        OPENAI_API_KEY="sk-test",
    )
    index(repo, env)
    llm_server.stop()  # the service goes down after indexing
    query = "give the money of a transaction back"
    out = run_mcode(["search", query, "--repo", str(repo)], env)  # no connection kept alive
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("shop/payment.py:")
    assert "note: ranked by words only: embedding model openai/mock-embedding failed" in out.stderr
