"""What the embedding model reads of a chunk, the order in which files get their vectors, and an index
re-embedding when the text it was embedded from changes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from support.repos import indexed_repo, opened_index, write_files

from mcode.index.rows import embedding_text

LICENCE_HEADER = (
    "/*\n"
    " *  GRUB  --  GRand Unified Bootloader\n"
    " *  Copyright (C) 2009  Free Software Foundation, Inc.\n"
    " *  This program is distributed WITHOUT ANY WARRANTY.\n"
    " */\n"
)


def test_the_model_reads_where_a_chunk_lives_and_its_name_first_as_plain_words() -> None:
    text = (
        "/* Read one block of an XFS inode into the buffer. */\n"
        "static grub_err_t\n"
        "grub_xfs_read_block (grub_fshelp_node_t node, grub_disk_addr_t fileblock)\n{\n"
        "  return GRUB_ERR_NONE;\n}\n"
    )
    read = embedding_text("grub-core/fs/xfs.c", "grub_xfs_read_block", text)
    assert read.startswith("grub core fs xfs read block: read one block xfs inode into buffer")
    assert "(" not in read and "_" not in read and "/*" not in read


def test_a_licence_header_is_not_what_the_model_reads_of_a_file() -> None:
    read = embedding_text("lib/disk.c", "", LICENCE_HEADER + "#include <grub/disk.h>\n")
    assert "copyright" not in read and "warranty" not in read
    assert read == "lib disk: grub disk"


def test_the_previous_style_is_kept_by_name_for_comparison() -> None:
    assert embedding_text("a/b.py", "f", "def f(): pass", "raw") == "a/b.py f\ndef f(): pass"


class RecordingEmbedder:
    """Constant unit vectors; remembers the texts it was asked for, in order."""

    id = "test:recording"
    dim = 8

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return np.full((len(texts), self.dim), 8**-0.5, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def test_files_the_rest_of_the_code_uses_get_their_vectors_first(tmp_path: Path) -> None:
    """A search while vectors are still coming meets the vectors of the code that matters most."""
    files = {f"app/a{i}.py": f"def leaf_{i}():\n    return 1\n" for i in range(6)}
    files["zz/core.py"] = "def load_settings():\n    return {}\n"
    for i in range(3):
        files[f"app/user{i}.py"] = f"def use_{i}():\n    return load_settings()\n"
    write_files(tmp_path / "repo", files)
    embedder = RecordingEmbedder()
    with opened_index(tmp_path / "repo", tmp_path, embedder) as indexer:
        indexer.update(embed=False)
        assert indexer.embed_pending(batch=1) == len(files)
    assert "load settings" in embedder.texts[0]


def test_an_index_embedded_from_another_text_is_embedded_again(tmp_path: Path) -> None:
    files = {"shop/cart.py": "def add_item(sku):\n    return sku\n"}
    first = RecordingEmbedder()
    with indexed_repo(tmp_path / "repo", files, tmp_path, first):
        assert len(first.texts) == 1 and first.texts[0].startswith("shop cart add item:")
    from mcode.config import Paths, Settings
    from mcode.index.pipeline import open_index

    again = RecordingEmbedder()
    paths = Paths(repo=tmp_path / "repo", user_config=tmp_path / "config", cache=tmp_path / "cache")
    indexer, lock = open_index(Settings(paths=paths), again, embedding_style="raw")
    try:
        report = indexer.update()
    finally:
        indexer.manifest.close()
        lock.release()
    assert report.vectors_written == 1
    stored = files["shop/cart.py"].rstrip("\n")  # a chunk's text, as the store keeps it
    assert again.texts == [embedding_text("shop/cart.py", "add_item", stored, "raw")]
