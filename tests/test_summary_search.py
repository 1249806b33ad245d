"""Module summaries as search sees them: each result carries its file's purpose, a summary hit
counts for its file when given a weight, and a summaries table of another format is not misread."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from support.llm_server import ScriptedLLMServer
from support.repos import make_repo, opened_index

from mcode.config import Paths, Settings
from mcode.context.system_prompt import fit_snippets
from mcode.retrieval.ranking import Weights
from mcode.retrieval.search import SearchResult
from mcode.retrieval.workspace import Workspace
from mcode.sleep import PassOptions, run_pass
from mcode.store.lancedb_import import import_lancedb
from mcode.store.summaries import SummaryStore

STORE = '''"""Keeps the shop's stock: what is on the shelves and what was sold."""


class Stock:
    def take(self, item: str) -> int:
        return 0
'''
TILL = '''"""The till: sells items out of the stock."""

from shop.store import Stock


def sell(stock: Stock, item: str) -> None:
    stock.take(item)
'''
FILES = {"shop/store.py": STORE, "shop/till.py": TILL}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    root = make_repo(tmp_path / "shop", FILES)
    state = tmp_path / "state"
    with opened_index(root, state) as indexer:
        indexer.update()
    paths = Paths(repo=root, user_config=state / "config", cache=state / "cache")
    return Settings(paths=paths, embedding_model="none")


def test_results_carry_their_files_purpose_once_a_pass_has_written_it(settings: Settings) -> None:
    workspace = Workspace.open_reader(settings)
    try:
        searcher = workspace.searcher()  # opened before any summary exists, as a session's is
        assert all(hit.summary == "" for hit in searcher.search("sell stock", 5))
        run_pass(settings)
        by_path = {hit.path: hit.summary for hit in searcher.search("sell stock", 5)}
        assert by_path["shop/till.py"] == "The till: sells items out of the stock."
        assert by_path["shop/store.py"].startswith("Keeps the shop's stock")

        till = settings.paths.repo / "shop" / "till.py"
        till.write_text(till.read_text().replace("The till: sells", "The till: rings up"))
        with opened_index(settings.paths.repo, settings.paths.user_config.parent) as indexer:
            indexer.update()
        run_pass(settings)
        by_path = {hit.path: hit.summary for hit in searcher.search("sell stock", 5)}
        assert by_path["shop/till.py"] == "The till: rings up items out of the stock."
    finally:
        workspace.manifest.close()


def test_a_summary_hit_counts_for_its_file_only_with_a_weight(
    settings: Settings, llm_server: ScriptedLLMServer
) -> None:
    # The model describes the till in words its code never uses, on one very long line.
    long_line = "the checkout counter where customers pay" + ", and then some" * 100
    llm_server.reply_text(f"shop/till.py — {long_line}")
    with_model = replace(
        settings,
        sleep_model="openai/mock-model",
        api_base=llm_server.url,
        api_keys={"OPENAI_API_KEY": "sk-test"},
    )
    run_pass(with_model, PassOptions(paths=("shop/till.py",)))
    assert len(llm_server.requests) == 1
    workspace = Workspace.open_reader(settings)
    try:
        plain = workspace.searcher(summaries=False)
        assert plain.search("checkout counter customers pay", 5, level="file") == []
        searcher = workspace.searcher()
        searcher.weights = Weights(summary=1.0)
        hits = searcher.search("checkout counter customers pay", 5, level="file")
        assert [hit.path for hit in hits] == ["shop/till.py"]
        about = hits[0].summary  # cut to one short line for every result it labels
        assert about.startswith("the checkout counter where customers pay, and then some")
        assert len(about) <= 300 and about.endswith("…")
        searcher.weights = Weights(summary=0.0)
        assert searcher.search("checkout counter customers pay", 5, level="file") == []
    finally:
        workspace.manifest.close()


def test_a_summaries_table_of_another_format_is_not_read_and_the_next_pass_rebuilds_it(
    settings: Settings,
) -> None:
    # A table from an older mcode: no schema marker, other columns.
    db = import_lancedb().connect(str(settings.paths.summaries))
    db.create_table(
        "summaries", data=[{"id": "file:shop/till.py", "path": "shop/till.py", "text": "stale"}]
    )
    reader = SummaryStore(settings.paths.summaries)
    assert reader.get("file", "shop/till.py") is None
    assert reader.purposes(["shop/till.py"]) == {}
    assert reader.search_files("stale", 5) == []

    report = run_pass(settings)
    assert sorted(f["path"] for f in report.files) == sorted(FILES)
    rebuilt = SummaryStore(settings.paths.summaries).get("file", "shop/till.py")
    assert rebuilt is not None and rebuilt.text.startswith("shop/till.py — The till")
    assert reader.purposes(["shop/till.py"]) == {
        "shop/till.py": "The till: sells items out of the stock."
    }


def test_retrieved_code_in_the_prompt_gives_each_files_purpose_once() -> None:
    about = "The till: sells items out of the stock."
    hits = [
        SearchResult(
            "shop/till.py", 6, 7, "sell", "function", 1.0, "def sell(): ...", summary=about
        ),
        SearchResult(
            "shop/till.py", 9, 9, "refund", "function", 0.9, "def refund(): ...", summary=about
        ),
        SearchResult("shop/store.py", 4, 6, "Stock", "class", 0.8, "class Stock: ..."),
    ]
    text = fit_snippets(hits, 2_000, lambda t: len(t) // 4).text
    assert text.count("module summary:") == 1
    assert f"shop/till.py:6-7 sell\nmodule summary: {about}\n```" in text
    assert "shop/till.py:9-9 refund\n```" in text
