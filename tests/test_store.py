"""The LanceDB chunk table: per-file replace, vectors by (id, hash), the vector index, and upkeep that
keeps versions and disk flat over many updates."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcode.store.chunks import ChunkStore, StoreFormatError

DIM = 16


def rows_for(path: str, n: int, tag: str = "v1") -> list[dict]:
    return [
        {
            "id": f"{path}#{i}",
            "path": path,
            "language": "python",
            "kind": "function",
            "symbol": f"func_{i}",
            "signature": f"def func_{i}():",
            "docstring": "",
            "start_line": i * 3 + 1,
            "end_line": i * 3 + 2,
            "text": f"def func_{i}():\n    return '{tag} {path} {i}'",
            "head": f"func {i} {tag}",
            "hash": f"{path}-{i}-{tag}",
        }
        for i in range(n)
    ]


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def test_reads_answer_with_filters_and_before_the_full_text_index_exists(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "lance", DIM)
    store.append(rows_for("a.py", 3) + rows_for("b.py", 2, tag="other"))
    # A cold build adds every row before it indexes: a search meanwhile scans them.
    assert {r["path"] for r in store.full_text("other", 5)} == {"b.py"}
    store.ensure_indexes()
    assert {r["path"] for r in store.full_text("other", 5)} == {"b.py"}
    assert len(store.full_text("func", 5, where="path = 'a.py'")) == 3
    assert {r["path"] for r in store.full_text("func", 5, where="path = 'a.py'")} == {"a.py"}
    store.set_vectors([(f"a.py#{i}", f"a.py-{i}-v1", unit(i)) for i in range(3)])
    nearest = store.nearest(unit(1), 2)
    assert nearest[0]["id"] == "a.py#1" and nearest[0]["_distance"] == pytest.approx(0, abs=1e-5)
    assert [r["id"] for r in store.nearest(unit(1), 5, where="symbol = 'func_2'")] == ["a.py#2"]
    rows = store.rows_for_paths(["a.py", "b.py"], symbols=["func_1"])
    assert sorted(r["id"] for r in rows) == ["a.py#1", "b.py#1"]
    assert [r["id"] for r in store.rows_by_id(["b.py#0", "gone#9"])] == ["b.py#0"]


def test_replace_files_swaps_one_files_rows_and_leaves_the_others(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "lance", DIM)
    store.append(rows_for("a.py", 3) + rows_for("b.py", 2))
    store.ensure_indexes()
    store.replace_files(["a.py"], rows_for("a.py", 1, tag="v2"))
    rows = store.rows_for_paths(["a.py", "b.py"])
    assert sorted((r["path"], r["symbol"]) for r in rows) == [
        ("a.py", "func_0"),
        ("b.py", "func_0"),
        ("b.py", "func_1"),
    ]
    assert "v2" in store.texts(["a.py#0"])["a.py#0"]
    assert [r["path"] for r in store.full_text("v2", 5)] == ["a.py"]


def test_an_edit_rewrites_only_the_rows_that_changed(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "lance", DIM)
    rows = rows_for("a.py", 3) + rows_for("b.py", 2)
    store.append(rows)
    store.set_vectors([(r["id"], r["hash"], unit(i)) for i, r in enumerate(rows)])
    versions = store.version_count()
    store.replace_files(["a.py"], rows_for("a.py", 3))  # saved without a change
    assert store.version_count() == versions
    edited = rows_for("a.py", 3)
    edited[2] = rows_for("a.py", 3, tag="v2")[2]
    store.replace_files(["a.py"], edited)  # rows as the parser gives them: no vectors
    assert store.version_count() == versions + 1
    assert "v2" in store.texts(["a.py#2"])["a.py#2"]
    # The untouched chunks keep their vectors; the edited one lost the vector of its old text.
    assert [store.nearest(unit(i), 1)[0]["id"] for i in (0, 1)] == ["a.py#0", "a.py#1"]
    assert store.nearest(unit(2), 1)[0]["id"] != "a.py#2"


def test_only_the_rows_written_are_embedded_and_every_row_has_a_vector(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "lance", DIM)
    store.append(rows_for("b.py", 2))
    asked: list[str] = []

    def embed(rows: Sequence[dict[str, Any]]) -> np.ndarray:
        asked.extend(r["id"] for r in rows)
        return np.stack([unit(int(r["id"][-1])) for r in rows])

    store.replace_files(["a.py"], rows_for("a.py", 3), embed=embed)
    assert sorted(asked) == ["a.py#0", "a.py#1", "a.py#2"]
    asked.clear()
    edited = rows_for("a.py", 4)
    edited[1] = rows_for("a.py", 2, tag="v2")[1]
    store.replace_files(["a.py"], edited, embed=embed)
    assert sorted(asked) == ["a.py#1", "a.py#3"]
    assert [store.nearest(unit(i), 1)[0]["id"] for i in range(4)] == [f"a.py#{i}" for i in range(4)]


def test_a_reader_never_finds_a_file_missing_while_it_is_replaced(tmp_path: Path) -> None:
    writer = ChunkStore(tmp_path / "lance", DIM)
    writer.append(rows_for("a.py", 3) + rows_for("b.py", 2))
    writer.ensure_indexes()
    reader = ChunkStore(tmp_path / "lance", DIM)  # as another process would open it
    done = threading.Event()
    seen: list[int] = []

    def read() -> None:
        while not done.is_set():
            seen.append(len(reader.rows_for_paths(["a.py"])))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for step in range(24):
            count = 1 + step % 5  # the file grows and shrinks
            writer.replace_files(["a.py"], rows_for("a.py", count, tag=f"v{step}"))
            # Once the call returns, readers see exactly the new rows.
            found = reader.rows_for_paths(["a.py"])
            assert sorted(r["id"] for r in found) == [f"a.py#{i}" for i in range(count)]
            assert all(f"v{step} " in t for t in reader.texts([r["id"] for r in found]).values())
    finally:
        done.set()
        thread.join()
    assert seen and min(seen) > 0
    assert len(reader.rows_for_paths(["b.py"])) == 2


def test_rows_stored_twice_are_put_right_by_the_next_replace(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "lance", DIM)
    store.append(rows_for("a.py", 2))
    store.append(rows_for("a.py", 2))
    store.replace_files(["a.py"], rows_for("a.py", 2, tag="v2"))
    assert sorted(r["id"] for r in store.rows_for_paths(["a.py"])) == ["a.py#0", "a.py#1"]


def test_vectors_attach_only_to_the_text_they_were_computed_for(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "lance", DIM)
    store.append(rows_for("a.py", 2))
    store.replace_files(["a.py"], rows_for("a.py", 2, tag="v2"))  # text changed meanwhile
    store.set_vectors([("a.py#0", "a.py-0-v1", unit(0)), ("a.py#1", "a.py-1-v2", unit(1))])
    assert [r["id"] for r in store.nearest(unit(0), 5)] == [
        "a.py#1"
    ]  # the stale vector was refused


def test_vector_index_is_built_once_the_table_is_large_enough(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "lance", DIM)
    rows = [r for i in range(40) for r in rows_for(f"m{i}.py", 10)]
    store.append(rows)
    assert not store.ensure_vector_index(min_rows=300)  # no vectors yet
    store.set_vectors([(r["id"], r["hash"], unit(i)) for i, r in enumerate(rows)])
    assert store.ensure_vector_index(min_rows=300)
    assert store.nearest(unit(123), 1)[0]["id"] == rows[123]["id"]


def test_versions_and_disk_stay_flat_over_many_updates(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "lance", DIM)
    store.append([r for i in range(20) for r in rows_for(f"f{i}.py", 5)])
    store.ensure_indexes()
    sizes = []
    for step in range(240):
        path = f"f{step % 20}.py"
        store.replace_files([path], rows_for(path, 5, tag=f"v{step}"))
        if store.writes_since_optimize >= 60:
            store.optimize(keep_versions_for=timedelta(0))
            sizes.append((store.version_count(), store.disk_bytes()))
    versions = [v for v, _ in sizes]
    disk = [d for _, d in sizes]
    assert max(versions) <= 3
    assert max(disk) < 2 * min(disk)
    assert store.count() == 100
    assert {r["path"] for r in store.full_text("v239", 10)} == {"f19.py"}


def test_a_table_of_another_format_is_refused_so_the_indexer_rebuilds(tmp_path: Path) -> None:
    ChunkStore(tmp_path / "lance", DIM).append(rows_for("a.py", 1))
    with pytest.raises(StoreFormatError):
        ChunkStore(tmp_path / "lance", DIM * 2)
    ChunkStore.destroy(tmp_path / "lance")
    assert ChunkStore(tmp_path / "lance", DIM * 2).count() == 0


@pytest.mark.parametrize(("given", "expected"), [(None, str(os.cpu_count())), ("1", "1")])
def test_lance_computes_on_every_core_unless_the_user_says_otherwise(
    given: str | None, expected: str
) -> None:
    """Lance alone would leave one compute thread on two cores, and index builds would idle one."""
    env = {k: v for k, v in os.environ.items() if k != "LANCE_CPU_THREADS"}
    if given is not None:
        env["LANCE_CPU_THREADS"] = given
    probe = "import os, mcode.store.chunks; print(os.environ['LANCE_CPU_THREADS'])"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == expected


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="lancedb uses typing.override there")
def test_lancedb_loads_without_the_overrides_checks_and_leaves_that_package_as_it_was() -> None:
    """The checks cost ~0.2 s of every start-up; code that imports `overrides` later gets it whole."""
    probe = (
        "import mcode.store.chunks, lancedb.db; from overrides import override; "
        "print(lancedb.db.override.__module__, override.__module__)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["mcode.store.lancedb_import", "overrides.overrides"]


def test_consolidating_edits_changes_nothing_a_reader_sees(tmp_path: Path) -> None:
    """Edits' rows gathered into one fragment: every row, text and vector as before, found as
    before, by this store and by a reader that opened the table earlier."""
    store = ChunkStore(tmp_path / "lance", DIM)
    store.append([{**r, "vector": unit(i)} for i, r in enumerate(rows_for("a.py", 20))])
    store.ensure_indexes()
    reader = ChunkStore(tmp_path / "lance", DIM)
    for edit in range(8):
        path = f"e{edit}.py"
        store.replace_files([path], [{**r, "vector": unit(100 + edit)} for r in rows_for(path, 1)])
    store.replace_files(["a.py"], rows_for("a.py", 19))  # a deletion among the edits

    def seen(chunks: ChunkStore) -> list[tuple]:
        paths = [f"e{e}.py" for e in range(8)] + ["a.py"]
        rows = chunks.rows_for_paths(paths, with_text=True, with_vector=True)
        return sorted((r["id"], r["text"], tuple(np.round(r["vector"], 5))) for r in rows)

    before = seen(store)
    store.consolidate()
    assert seen(store) == seen(reader) == before
    assert store.count() == reader.count() == 27
    for edit in range(8):
        assert [r["path"] for r in reader.full_text(f"e{edit}", 3)] == [f"e{edit}.py"]


def test_rows_of_equal_score_rank_by_id_whatever_their_order_on_disk(tmp_path: Path) -> None:
    """An updated table and a fresh one hold the same rows in different places; where scores tie,
    both rank them alike, the k-th row included."""
    rows = [
        {**row, "id": f"t{i:02}.py#0", "path": f"t{i:02}.py", "text": "same words", "head": "same"}
        for i, row in enumerate(rows_for("x.py", 1) * 40)
    ]
    shuffled = list(reversed(rows))
    fresh, updated = ChunkStore(tmp_path / "fresh", DIM), ChunkStore(tmp_path / "updated", DIM)
    fresh.append(rows)
    updated.append(shuffled[:20])
    updated.append(shuffled[20:])
    for store in (fresh, updated):
        store.ensure_indexes()
    expected = [f"t{i:02}.py#0" for i in range(10)]
    assert [r["id"] for r in fresh.full_text("words", 10)] == expected
    assert [r["id"] for r in updated.full_text("words", 10)] == expected


def test_the_vector_index_answers_exactly_as_a_scan_of_every_vector(tmp_path: Path) -> None:
    """Its partitions come from the vectors there were when it was built; probing only some of
    them would answer one way before a batch of edits and another way after a fresh build."""
    store = ChunkStore(tmp_path / "lance", DIM)
    rows = [r for i in range(2_800) for r in rows_for(f"m{i}.py", 10)]  # 35 partitions
    vectors = np.random.default_rng(0).normal(size=(len(rows), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.append([{**row, "vector": vector} for row, vector in zip(rows, vectors, strict=True)])
    assert store.ensure_vector_index()
    for seed in range(5):
        query = unit(1_000 + seed)
        exact = np.argsort(-(vectors @ query), kind="stable")[:50]
        assert [r["id"] for r in store.nearest(query, 50)] == [rows[i]["id"] for i in exact]
