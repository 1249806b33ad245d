"""The in-memory copy of the chunk table that long-lived searchers use: it must answer exactly as the
store does, and follow every edit, deletion and newly stored vector without being reopened."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.embedders import HashEmbedder
from support.repos import indexed_repo, write_files

from mcode.index.pipeline import Indexer
from mcode.index.rows import embedding_text
from mcode.retrieval import resident as resident_module
from mcode.retrieval.resident import ResidentChunks
from mcode.retrieval.search import Searcher

FILES = {
    "shop/cart.py": (
        "class Cart:\n"
        '    """A shopping cart that holds line items."""\n\n'
        "    def add_item(self, sku: str, quantity: int) -> None:\n"
        '        """Put a product into the cart."""\n'
        "        self.items[sku] = quantity\n\n"
        "    def total_price(self) -> float:\n"
        '        """Sum of every line, taxes included."""\n'
        "        return sum(self.items.values())\n"
    ),
    "shop/payment.py": (
        "def charge_card(card_number: str, amount: float) -> bool:\n"
        '    """Charge a credit card through the payment gateway."""\n'
        "    return gateway.charge(card_number, amount)\n\n\n"
        "def refund(payment_id: str) -> None:\n"
        '    """Give the money back."""\n'
        "    gateway.refund(payment_id)\n"
    ),
    "util/text.py": (
        "def slugify(title: str) -> str:\n"
        '    """Lower-case words joined by dashes, for URLs."""\n'
        '    return "-".join(title.lower().split())\n'
    ),
}


@pytest.fixture
def indexer(tmp_path: Path) -> Iterator[Indexer]:
    with indexed_repo(tmp_path / "repo", FILES, tmp_path, HashEmbedder()) as opened:
        yield opened


def resident_for(indexer: Indexer) -> ResidentChunks:
    return ResidentChunks(indexer.store, indexer.manifest)


def answers(searcher: Searcher, query: str) -> list[tuple[str, str, int, str]]:
    return [(r.path, r.symbol, r.start_line, r.snippet) for r in searcher.search(query, k=8)]


QUERIES = [
    "charge the credit card",
    "Cart.total_price",
    "slugify a title for urls",
    "refund(payment_id) fails",
    'File "shop/cart.py", line 4, in add_item',
]


def test_the_resident_copy_ranks_exactly_as_the_store(indexer: Indexer) -> None:
    root, manifest, embedder = indexer.root, indexer.manifest, indexer.embedder
    from_store = Searcher(root, indexer.store, manifest, embedder)
    from_memory = Searcher(root, resident_for(indexer), manifest, embedder)
    for query in QUERIES:
        assert answers(from_memory, query) == answers(from_store, query), query


def test_nearest_is_the_exact_cosine_ranking(indexer: Indexer) -> None:
    resident = resident_for(indexer)
    probe = HashEmbedder._vector("anything at all")
    from_store = [r["id"] for r in indexer.store.nearest(probe, 5)]
    assert [r["id"] for r in resident.nearest(probe, 5)] == from_store
    distances = [r["_distance"] for r in resident.nearest(probe, 5)]
    assert distances == sorted(distances)


def test_the_copy_follows_edits_and_deletions_without_reopening(indexer: Indexer) -> None:
    resident = resident_for(indexer)
    searcher = Searcher(indexer.root, resident, indexer.manifest, indexer.embedder)
    assert answers(searcher, "slugify")[0][:2] == ("util/text.py", "slugify")

    with open(indexer.root / "shop/cart.py", "a", encoding="utf-8") as handle:
        handle.write("\n\ndef apply_discount_voucher(cart, code):\n    return cart\n")
    indexer.process_changes(["shop/cart.py"])
    path, symbol, _, snippet = answers(searcher, "apply_discount_voucher")[0]
    assert (path, symbol) == ("shop/cart.py", "apply_discount_voucher")
    assert snippet.startswith("def apply_discount_voucher(cart, code):")

    (indexer.root / "util/text.py").unlink()
    indexer.process_changes(["util/text.py"])
    assert resident.rows_for_paths(["util/text.py"]) == []
    assert all(r.path != "util/text.py" for r in searcher.search("slugify title urls", k=20))
    every = resident.nearest(HashEmbedder._vector("x"), 100)
    assert {r["path"] for r in every} == {"shop/cart.py", "shop/payment.py"}


def test_vectors_stored_later_reach_the_copy(indexer: Indexer) -> None:
    resident = resident_for(indexer)
    resident.refresh()  # the rows without vectors arrive as a change, not in the first load
    write_files(indexer.root, {"late.py": "def arrives_late():\n    return 1\n"})
    indexer.update(embed=False)
    assert resident.rows_for_paths(["late.py"])  # searchable by text at once
    row = indexer.store.rows_for_paths(["late.py"], with_text=True)[0]
    exact = HashEmbedder._vector(embedding_text(row["path"], row["symbol"], row["text"]))
    assert all(r["path"] != "late.py" for r in resident.nearest(exact, 3))  # no vector yet
    indexer.embed_pending()
    assert resident.nearest(exact, 1)[0]["id"] == row["id"]


def test_rows_written_before_the_manifest_knows_them_are_read_from_the_store(
    indexer: Indexer,
) -> None:
    resident = resident_for(indexer)
    resident.refresh()
    rows = indexer.store.rows_for_paths(["util/text.py"], with_text=True)
    fresh = [{**r, "text": r["text"] + "\n# zebra_marker", "hash": "new"} for r in rows]
    indexer.store.replace_files(["util/text.py"], fresh)  # as a writer does, before the manifest
    hits = resident.full_text("zebra_marker", 5)
    assert [(h["path"], h["symbol"]) for h in hits] == [("util/text.py", "slugify")]


def test_many_edits_compact_the_copy_and_keep_it_right(
    indexer: Indexer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resident_module, "COMPACT_MIN_DEAD", 0)
    resident = resident_for(indexer)
    searcher = Searcher(indexer.root, resident, indexer.manifest, indexer.embedder)
    for i in range(6):
        write_files(indexer.root, {"util/text.py": f"def version_{i}_marker():\n    return {i}\n"})
        indexer.process_changes(["util/text.py"])
        assert answers(searcher, f"version_{i}_marker")[0][:2] == (
            "util/text.py",
            f"version_{i}_marker",
        )
    assert [r["symbol"] for r in resident.rows_for_paths(["util/text.py"])] == ["version_5_marker"]
    assert len(resident.rows_for_paths(["shop/cart.py", "shop/payment.py"])) == len(
        indexer.store.rows_for_paths(["shop/cart.py", "shop/payment.py"])
    )
