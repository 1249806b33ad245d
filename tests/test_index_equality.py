"""An index kept up to date through hundreds of edits, deletions, additions and renames answers exactly
as a fresh build of the same files does: the same results in the same order, scores equal up to
floating-point noise, for lexical and hybrid search, read from the store or from a long-lived resident
copy. It gets there within the stated bound: at the end of every whole pass (`mcode index`), when the
watcher settles, and after `EXACT_WITHIN_UPDATES` watcher batches at the latest."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.embedders import HashEmbedder
from support.polling import poll
from support.repos import indexed_repo, opened_index, write_files

from mcode.index.pipeline import EXACT_WITHIN_UPDATES, FULL_TEXT_EXACT, Indexer
from mcode.retrieval.resident import ResidentChunks
from mcode.retrieval.search import Searcher
from mcode.watch import IndexFollower

WORDS = """
invoice payment refund customer order cart discount coupon shipping address tax currency ledger
account balance report export parse render template cache session token retry timeout queue worker
schedule batch record schema migrate validate serialize decode encode buffer stream price total
""".split()  # noqa: SIM905 - a word list reads best as words
ANCHORS = ("billing/ledger.py", "shop/cart.py", "util/text.py")  # edited, never deleted or moved
QUERIES = [
    "refund the customer payment when the order is cancelled",
    "validate the schema before we migrate a batch of records",
    "LedgerAccount.post_balance",
    "`render_template` keeps an old session token in the cache",
    'Traceback (most recent call last):\n  File "billing/ledger.py", line 9, in post_balance\n'
    "    total = balance_account(record)\nKeyError: 'currency'",
    "shop/cart.py: the discount coupon is applied twice to the shipping price",
]


def _words(rng: random.Random, n: int) -> list[str]:
    return rng.sample(WORDS, n)


def _function(rng: random.Random, name: str | None = None, indent: str = "") -> str:
    name = name or "_".join(_words(rng, 2))
    first, second = _words(rng, 2)
    params = f"self, {first}" if indent else f"{first}, {second}"
    doc = " ".join(rng.choices(WORDS, k=rng.randint(3, 9))).capitalize()
    body = [
        f"{indent}    {'_'.join(_words(rng, 2))} = {'_'.join(_words(rng, 2))}({first})"
        for _ in range(rng.randint(1, 4))
    ]
    lines = [f"{indent}def {name}({params}):", f'{indent}    """{doc}."""', *body]
    return "\n".join([*lines, f"{indent}    return {rng.choice(WORDS)}"])


def _class(rng: random.Random) -> str:
    name = "".join(word.title() for word in _words(rng, 2))
    methods = [_function(rng, indent="    ") for _ in range(rng.randint(1, 3))]
    return f"class {name}:\n" + "\n\n".join(methods)


def _definition(rng: random.Random) -> str:
    return _class(rng) if rng.random() < 0.3 else _function(rng)


def _module(rng: random.Random) -> str:
    return "\n\n\n".join(_definition(rng) for _ in range(rng.randint(2, 5))) + "\n"


def _document(rng: random.Random) -> str:
    paragraphs = [" ".join(rng.choices(WORDS, k=rng.randint(20, 60))) for _ in range(6)]
    return "\n\n".join(f"## {' '.join(_words(rng, 2))}\n\n{p}" for p in paragraphs) + "\n"


def make_tree(rng: random.Random) -> dict[str, str]:
    files = {
        "billing/ledger.py": (
            "class LedgerAccount:\n"
            "    def post_balance(self, record):\n"
            '        """Post a record to the account balance."""\n'
            "        total = balance_account(record)\n"
            "        return total\n\n\n" + _module(rng)
        ),
        "shop/cart.py": _module(rng),
        "util/text.py": _module(rng),
    }
    for i in range(24):
        files[f"{rng.choice(['billing', 'shop', 'util'])}/{rng.choice(WORDS)}_{i}.py"] = _module(
            rng
        )
    for i in range(3):
        files[f"docs/{rng.choice(WORDS)}_{i}.md"] = _document(rng)
    return files


def tree_files(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and ".agentmemory" not in p.parts
    )


class Edits:
    """Random changes to a tree on disk, reported as the watcher reports them (both ends of a move)."""

    def __init__(self, root: Path, seed: int) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.made = 0

    def batch(self, size: int) -> list[str]:
        changed: set[str] = set()
        for _ in range(size):
            changed.update(self.one())
        return sorted(changed)

    def one(self) -> list[str]:
        rng, files = self.rng, tree_files(self.root)
        movable = [path for path in files if path not in ANCHORS]
        kind = rng.choices(["edit", "delete", "add", "move"], weights=[6, 1, 1, 1])[0]
        self.made += 1
        if kind == "delete" and movable:
            path = rng.choice(movable)
            (self.root / path).unlink()
            return [path]
        if kind == "move" and movable:
            path = rng.choice(movable)
            new = f"{rng.choice(['billing', 'shop', 'util', 'lib'])}/moved_{self.made}_{Path(path).name}"
            (self.root / new).parent.mkdir(parents=True, exist_ok=True)
            (self.root / path).rename(self.root / new)
            return [path, new]
        if kind == "add" or not files:
            new = f"{rng.choice(['billing', 'shop', 'util'])}/{rng.choice(WORDS)}_{self.made}.py"
            write_files(self.root, {new: _module(rng)})
            return [new]
        path = rng.choice(files)
        target = self.root / path
        target.write_text(self._edited(target.read_text(), path.endswith(".md")))
        return [path]

    def _edited(self, text: str, document: bool) -> str:
        rng = self.rng
        if document:
            paragraphs = text.split("\n\n")
            paragraphs[rng.randrange(len(paragraphs))] = " ".join(rng.choices(WORDS, k=30))
            return "\n\n".join(paragraphs)
        parts = text.rstrip("\n").split("\n\n\n")
        where = rng.randrange(len(parts))
        change = rng.choice(["replace", "insert", "drop", "rename"])
        if change == "replace":
            parts[where] = _definition(rng)
        elif change == "insert":
            parts.insert(where, _definition(rng))
        elif change == "drop" and len(parts) > 1:
            del parts[where]
        else:
            renamed = "_".join(_words(rng, 2))
            parts[where] = re.sub(r"def \w+", f"def {renamed}", parts[where], count=1)
        return "\n\n\n".join(parts) + "\n"


def ranked(searcher: Searcher, query: str, level: str) -> list[tuple]:
    return [
        (r.path, r.start_line, r.end_line, r.symbol, r.kind, r.score)
        for r in searcher.search(query, 10, level)
    ]


def assert_answers_as_fresh(updated: Indexer, resident: ResidentChunks, tmp: Path) -> None:
    """Build the same files afresh in another folder and compare every query, both levels, lexical
    and hybrid, from the updated store and from the resident copy that followed it."""
    files = {path: (updated.root / path).read_text() for path in tree_files(updated.root)}
    folder = tmp / f"fresh-{len(list(tmp.glob('fresh-*')))}"
    embedder = updated.embedder
    with indexed_repo(folder / "repo", files, folder, HashEmbedder()) as fresh:
        readers: dict[str, tuple[Searcher, Searcher]] = {
            "lexical": (
                Searcher(updated.root, updated.store, updated.manifest),
                Searcher(fresh.root, fresh.store, fresh.manifest),
            ),
            "hybrid": (
                Searcher(updated.root, updated.store, updated.manifest, embedder),
                Searcher(fresh.root, fresh.store, fresh.manifest, fresh.embedder),
            ),
            "hybrid, resident": (
                Searcher(updated.root, resident, updated.manifest, embedder),
                Searcher(fresh.root, fresh.store, fresh.manifest, fresh.embedder),
            ),
        }
        for mode, (mine, theirs) in readers.items():
            for level in ("file", "symbol"):
                for query in QUERIES:
                    got, want = ranked(mine, query, level), ranked(theirs, query, level)
                    assert want, (mode, level, query)  # every query finds something
                    where = f"{mode}, {level} level, {query!r}"
                    assert [g[:5] for g in got] == [w[:5] for w in want], where
                    scores = [g[5] for g in got]
                    assert scores == pytest.approx([w[5] for w in want], rel=1e-6), where


@pytest.fixture
def kept(tmp_path: Path) -> Iterator[tuple[Indexer, ResidentChunks, Edits]]:
    """An indexed tree, a resident copy that follows it (as the REPL keeps one), and its edits."""
    tree = make_tree(random.Random(7))
    with indexed_repo(tmp_path / "repo", tree, tmp_path / "state", HashEmbedder()) as indexer:
        resident = ResidentChunks(indexer.store, indexer.manifest)
        resident.refresh()
        yield indexer, resident, Edits(indexer.root, seed=11)


def test_hundreds_of_updates_answer_as_a_fresh_build_within_the_bound(
    kept: tuple[Indexer, ResidentChunks, Edits], tmp_path: Path
) -> None:
    indexer, resident, edits = kept
    # Watcher batches without a pause: exact again by the bound. The follower (what `mcode watch`
    # and a session run) rebuilds right after the update that reaches it, in its own turn.
    follower = IndexFollower(indexer, settle_after=3600)
    try:
        for _ in range(EXACT_WITHIN_UPDATES):
            follower.process(edits.batch(7))
        assert poll(lambda: not indexer.upkeep_due, timeout=120)
    finally:
        follower.stop()  # waits for a rebuild under way
    assert indexer.manifest.get_meta(FULL_TEXT_EXACT)
    assert_answers_as_fresh(indexer, resident, tmp_path)
    # More batches, then the pause after which the watcher settles.
    for _ in range(8):
        indexer.process_changes(edits.batch(7))
    indexer.settle()
    assert_answers_as_fresh(indexer, resident, tmp_path)
    # Batches, then files changed while nothing watched, then `mcode index`.
    for _ in range(6):
        indexer.process_changes(edits.batch(7))
    edits.batch(12)
    indexer.update()
    assert edits.made >= 300
    assert_answers_as_fresh(indexer, resident, tmp_path)


def test_an_index_left_mid_edits_is_made_exact_by_the_next_index_run(tmp_path: Path) -> None:
    """A watcher stopped before it settled leaves the index inexact; the manifest says so, and the
    next `mcode index` repairs it even when no file changed since."""
    tree, state = make_tree(random.Random(7)), tmp_path / "state"
    with indexed_repo(tmp_path / "repo", tree, state, HashEmbedder()) as watcher:
        edits = Edits(watcher.root, seed=5)
        for _ in range(4):
            watcher.process_changes(edits.batch(7))
    with opened_index(tmp_path / "repo", state, HashEmbedder()) as reopened:
        report = reopened.update()
        assert report.changed == report.deleted == 0
        resident = ResidentChunks(reopened.store, reopened.manifest)
        assert_answers_as_fresh(reopened, resident, tmp_path)
