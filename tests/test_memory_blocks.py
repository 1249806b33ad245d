"""Memory blocks on disk: defaults, scopes, limits, read-only, corrupt files, hand edits, history,
and two mcode processes writing at once."""

from __future__ import annotations

import itertools
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mcode.config import Paths
from mcode.fsio import file_lock
from mcode.memory import (
    Block,
    BlockContent,
    BlockError,
    BlockNotFoundError,
    BlockStore,
    BlockStoreError,
    BrokenBlock,
    ConflictError,
    HistoryEntryNotFoundError,
    InvalidLabelError,
    LimitExceededError,
    ReadOnlyError,
    Scope,
)
from mcode.memory.frontmatter import parse_block, render_block


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return Paths.for_repo(repo, env=env)


@pytest.fixture
def store(paths: Paths) -> BlockStore:
    return BlockStore.for_paths(paths)


def project_file(paths: Paths, label: str) -> Path:
    return paths.memory / "blocks" / f"{label}.md"


def user_file(paths: Paths, label: str) -> Path:
    return paths.user_config / "blocks" / f"{label}.md"


def write_block(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# Defaults and scopes ------------------------------------------------------------------------------


def test_defaults_are_created_in_their_scopes_and_listed_first(paths: Paths, store: BlockStore):
    write_block(project_file(paths, "aaa"), "first by name, but not a default")
    assert store.ensure_defaults() == ["persona", "human", "project", "lessons"]

    assert user_file(paths, "persona").is_file()
    assert user_file(paths, "human").is_file()
    assert project_file(paths, "project").is_file()
    assert project_file(paths, "lessons").is_file()
    assert [b.label for b in store.blocks()] == ["persona", "human", "project", "lessons", "aaa"]
    assert {b.label: b.scope for b in store.blocks()}["human"] == "user"
    project = store.get("project")
    assert project.description and project.limit > 0 and not project.read_only
    assert [e.actor for e in store.log("project")] == ["init"]

    assert store.ensure_defaults() == []  # idempotent


def test_a_deleted_default_is_not_recreated(store: BlockStore):
    store.ensure_defaults()
    store.delete("lessons", actor="user", reason="we keep lessons elsewhere")
    assert store.ensure_defaults() == []
    assert store.find("lessons") is None


def test_project_block_overrides_user_block_of_same_label(paths: Paths, store: BlockStore):
    write_block(user_file(paths, "style"), "---\ndescription: mine\n---\ntabs")
    assert store.get("style").scope == "user"
    write_block(project_file(paths, "style"), "---\ndescription: team\n---\nspaces")
    block = store.get("style")
    assert (block.scope, block.value, block.description) == ("project", "spaces", "team")
    assert [b.label for b in store.blocks()].count("style") == 1


def test_writes_go_to_the_block_in_force_and_new_blocks_to_the_project(
    paths: Paths, store: BlockStore
):
    write_block(user_file(paths, "human"), "---\nlimit: 100\n---\nLikes short answers.")
    store.append("human", "Uses vim.", actor="agent", reason="told me")
    assert "Uses vim." in user_file(paths, "human").read_text()
    assert not project_file(paths, "human").exists()

    store.set_value("notes", "a new block", actor="agent", reason="test")
    assert project_file(paths, "notes").is_file()
    store.set_value("mine", "personal", actor="user", reason="test", scope="user")
    assert user_file(paths, "mine").is_file()


@pytest.mark.parametrize("label", ["Project", "../escape", "", "a" * 65, "with space", "x.md"])
def test_invalid_labels_are_refused(store: BlockStore, label: str):
    with pytest.raises(InvalidLabelError, match="a-z, 0-9"):
        store.set_value(label, "text", actor="user", reason="test")
    with pytest.raises(InvalidLabelError):
        store.find(label)


# The file format ----------------------------------------------------------------------------------


def test_file_format_round_trips_and_keeps_unknown_keys_and_comments(
    paths: Paths, store: BlockStore
):
    write_block(
        project_file(paths, "project"),
        "---\n# the team's note about this block\ndescription: Conventions\nlimit: 500\n"
        "owner: platform-team\n---\n\nUse ruff.\n\n",
    )
    block = store.get("project")
    assert block.value == "Use ruff."
    assert block.content.extra == {"owner": "platform-team"}

    store.append("project", "Use pytest.", actor="user", reason="test")
    text = project_file(paths, "project").read_text()
    assert "# the team's note about this block" in text
    assert "owner: platform-team" in text
    assert store.get("project").value == "Use ruff.\nUse pytest."

    store.set_value("project", "Use ruff.", actor="user", reason="test", limit=800)
    content = parse_block(project_file(paths, "project").read_text())
    assert content.limit == 800 and content.extra == {"owner": "platform-team"}


def test_file_without_front_matter_is_a_block_with_defaults(paths: Paths, store: BlockStore):
    write_block(project_file(paths, "notes"), "just some notes\n")
    block = store.get("notes")
    assert (block.value, block.description, block.read_only) == ("just some notes", "", False)


def test_windows_line_ends_and_bom_are_accepted(paths: Paths, store: BlockStore):
    project_file(paths, "win").parent.mkdir(parents=True)
    project_file(paths, "win").write_bytes(
        b"\xef\xbb\xbf---\r\ndescription: crlf\r\nlimit: 50\r\n---\r\nline one\r\nline two\r\n"
    )
    block = store.get("win")
    assert (block.description, block.limit, block.value) == ("crlf", 50, "line one\nline two")


def test_render_and_parse_are_inverse():
    content = BlockContent(value="a: b\n---\nc", description="x: y # not a comment", limit=9)
    assert parse_block(render_block(content)) == content


# Refusals leave the file as it was ----------------------------------------------------------------


def test_write_past_the_limit_is_refused_and_the_file_is_unchanged(paths: Paths, store: BlockStore):
    write_block(project_file(paths, "small"), "---\nlimit: 20\n---\n0123456789")
    before = project_file(paths, "small").read_bytes()
    with pytest.raises(LimitExceededError, match="would be 21 chars, limit is 20"):
        store.append("small", "0123456789", actor="agent", reason="test")
    assert project_file(paths, "small").read_bytes() == before
    assert store.log("small") == []

    store.append("small", "012345678", actor="agent", reason="exactly at the limit")
    assert store.get("small").chars == 20


def test_write_to_read_only_block_is_refused_and_the_file_is_unchanged(
    paths: Paths, store: BlockStore
):
    write_block(project_file(paths, "policy"), "---\nread_only: true\n---\nNo force pushes.")
    before = project_file(paths, "policy").read_bytes()
    for attempt in (
        lambda: store.append("policy", "More.", actor="agent", reason="test"),
        lambda: store.set_value("policy", "Anything.", actor="user", reason="test"),
        lambda: store.delete("policy", actor="user", reason="test"),
    ):
        with pytest.raises(ReadOnlyError, match="read-only"):
            attempt()
    assert project_file(paths, "policy").read_bytes() == before
    assert store.log("policy") == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("---\ndescription: [unclosed\n---\nbody", "invalid YAML"),
        ("---\nlimit: lots\n---\nbody", "limit must be a whole number"),
        ("---\nlimit: 12.5\n---\nbody", "limit must be a whole number"),
        ("---\ndescription: fine\nbody without a closing fence", "no closing '---'"),
        ("---\nread_only: maybe\n---\nbody", "read_only must be true or false"),
        ("---\n- a\n- list\n---\nbody", "key: value"),
    ],
)
def test_corrupt_front_matter_is_reported_with_the_file_and_never_overwritten(
    paths: Paths, store: BlockStore, text: str, problem: str
):
    store.set_value("good", "fine", actor="user", reason="test")
    broken = project_file(paths, "broken")
    write_block(broken, text)

    with pytest.raises(BlockError, match=problem) as caught:
        store.get("broken")
    assert str(broken) in str(caught.value)

    entries = {e.label: e for e in store.entries()}
    assert isinstance(entries["good"], Block)
    assert isinstance(entries["broken"], BrokenBlock)
    assert problem in entries["broken"].error

    with pytest.raises(BlockError):
        store.set_value("broken", "overwrite attempt", actor="user", reason="test")
    assert broken.read_text() == text


def test_a_file_that_is_not_utf8_is_a_broken_block(paths: Paths, store: BlockStore):
    project_file(paths, "binary").parent.mkdir(parents=True)
    project_file(paths, "binary").write_bytes(b"---\nlimit: 10\n---\n\xff\xfe")
    with pytest.raises(BlockError, match="not UTF-8"):
        store.get("binary")


# Hand edits while mcode runs ----------------------------------------------------------------------


def test_block_deleted_by_hand_is_reported_missing(paths: Paths, store: BlockStore):
    store.set_value("scratch", "temporary", actor="user", reason="test")
    assert store.get("scratch").value == "temporary"
    project_file(paths, "scratch").unlink()
    with pytest.raises(BlockNotFoundError, match="no memory block 'scratch'"):
        store.get("scratch")
    assert "scratch" not in [b.label for b in store.blocks()]


def test_block_edited_by_hand_is_seen_and_kept_by_the_next_write(paths: Paths, store: BlockStore):
    store.set_value("project", "Use tabs.", actor="user", reason="test")
    store.get("project")
    path = project_file(paths, "project")
    path.write_text(path.read_text().replace("Use tabs.", "Use spaces."))
    assert store.get("project").value == "Use spaces."

    entry = store.append("project", "Four of them.", actor="agent", reason="test")
    assert entry is not None and entry.old is not None
    assert entry.old.value == "Use spaces."
    assert store.get("project").value == "Use spaces.\nFour of them."


# History, review and revert -----------------------------------------------------------------------


def test_every_change_is_recorded_with_who_why_and_both_values(paths: Paths, store: BlockStore):
    store.set_value("project", "v1", actor="user", reason="start")
    store.append("project", "v2", actor="agent", reason="learned v2")
    store.delete("project", actor="user", reason="cleanup")

    log = store.log("project")
    assert [(e.actor, e.op, e.reason) for e in log] == [
        ("user", "set", "start"),
        ("agent", "append", "learned v2"),
        ("user", "delete", "cleanup"),
    ]
    assert log[0].old is None and log[0].new is not None and log[0].new.value == "v1"
    assert log[1].old == log[0].new and log[1].new is not None and log[1].new.value == "v1\nv2"
    assert log[2].new is None
    assert all(e.time.endswith("Z") for e in log)

    lines = (paths.memory / "history" / "project.jsonl").read_text().splitlines()
    raw = json.loads(lines[1])
    assert set(raw) == {"id", "time", "actor", "reason", "op", "old", "new"}
    assert raw["new"]["value"] == "v1\nv2"


def test_no_op_write_is_not_recorded(store: BlockStore):
    store.set_value("project", "same", actor="user", reason="test")
    assert store.set_value("project", "same", actor="user", reason="again") is None
    assert len(store.log("project")) == 1


def test_revert_restores_value_and_metadata_exactly(store: BlockStore):
    store.set_value("project", "original", actor="user", reason="test", description="d1")
    change = store.set_value(
        "project", "rewritten", actor="agent", reason="test", description="d2", limit=99
    )
    assert change is not None
    store.revert("project", change.id, actor="user")
    block = store.get("project")
    assert (block.value, block.description, block.limit) == ("original", "d1", 5000)
    assert store.log("project")[-1].op == "revert"


def test_revert_of_a_creation_deletes_and_of_a_deletion_restores(store: BlockStore):
    created = store.set_value("scratch", "hello", actor="agent", reason="test")
    assert created is not None
    store.revert("scratch", created.id[:6], actor="user")  # a unique prefix is enough
    assert store.find("scratch") is None

    store.set_value("keep", "precious", actor="user", reason="test")
    deleted = store.delete("keep", actor="agent", reason="oops")
    store.revert("keep", deleted.id, actor="user")
    assert store.get("keep").value == "precious"


def test_revert_refuses_to_drop_later_changes_unless_forced(store: BlockStore):
    first = store.set_value("project", "one", actor="user", reason="test")
    store.append("project", "two", actor="agent", reason="test")
    assert first is not None
    with pytest.raises(ConflictError, match="--force"):
        store.revert("project", first.id, actor="user")
    assert store.get("project").value == "one\ntwo"
    store.revert("project", first.id, actor="user", force=True)
    assert store.find("project") is None


def test_revert_of_unknown_entry_is_an_error(store: BlockStore):
    store.set_value("project", "one", actor="user", reason="test")
    with pytest.raises(HistoryEntryNotFoundError):
        store.revert("project", "ffffffffffff", actor="user")


def test_torn_history_line_does_not_hide_other_entries(paths: Paths, store: BlockStore):
    store.set_value("project", "one", actor="user", reason="test")
    history = paths.memory / "history" / "project.jsonl"
    with history.open("a") as handle:
        handle.write('{"id": "torn", "time": "2025')  # a crash mid-append
    store.append("project", "two", actor="user", reason="test")
    assert [e.op for e in store.log("project")] == ["set", "append"]
    assert len(history.read_text().splitlines()) == 3


# Atomic, locked writes ----------------------------------------------------------------------------


def test_write_leaves_no_temp_files_and_keeps_permissions(paths: Paths, store: BlockStore):
    store.set_value("project", "one", actor="user", reason="test")
    path = project_file(paths, "project")
    path.chmod(0o600)
    store.append("project", "two", actor="user", reason="test")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["project.md"]


def test_a_held_lock_delays_then_times_out_a_writer(paths: Paths):
    store = BlockStore.for_paths(paths)
    impatient = BlockStore(store.project, store.user, lock_timeout=0.2)
    with file_lock(store.project.lock_path), pytest.raises(BlockStoreError, match="held"):
        impatient.set_value("project", "blocked", actor="user", reason="test")
    assert impatient.find("project") is None

    release = threading.Event()
    holder_has_lock = threading.Event()

    def holder() -> None:
        with file_lock(store.project.lock_path):
            holder_has_lock.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    assert holder_has_lock.wait(5)
    threading.Timer(0.1, release.set).start()
    store.set_value("project", "after the holder", actor="user", reason="test")
    thread.join(5)
    assert store.get("project").value == "after the holder"


WRITER = """
import sys, time
from pathlib import Path
from mcode.memory.blocks import BlockStore, Scope

root, name, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
store = BlockStore(Scope.under("project", root / "project"), Scope.under("user", root / "user"))
deadline = time.monotonic() + 30
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no start signal")
    time.sleep(0.001)
for i in range(50):
    store.append("shared", f"{name}-{i}", actor=name, reason="concurrency test")
"""


def test_two_processes_appending_at_once_lose_nothing(tmp_path: Path):
    root = tmp_path / "mem"
    store = BlockStore(Scope.under("project", root / "project"), Scope.under("user", root / "user"))
    store.set_value("shared", "start", actor="user", reason="test", limit=100_000)
    go = tmp_path / "go"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(root), name, str(go)])
        for name in ("alpha", "beta")
    ]
    go.touch()
    for writer in writers:
        assert writer.wait(timeout=120) == 0

    lines = store.get("shared").value.split("\n")
    assert lines[0] == "start"
    for name in ("alpha", "beta"):
        mine = [line for line in lines if line.startswith(name)]
        assert mine == [f"{name}-{i}" for i in range(50)]  # all there, each once, in order
    assert len(lines) == 101

    log = store.log("shared")
    assert len(log) == 101
    for before, after in itertools.pairwise(log):
        assert after.old == before.new  # each write saw the one before it: none was lost
    assert not [p for p in (root / "project" / "blocks").iterdir() if p.suffix != ".md"]
    assert os.path.exists(root / "project" / "blocks.lock")


def test_concurrent_writes_wait_for_each_other_in_one_process_too(store: BlockStore):
    store.set_value("shared", "", actor="user", reason="test", limit=100_000)

    def work(name: str) -> None:
        for i in range(20):
            store.append("shared", f"{name}{i}", actor="agent", reason="threads")

    threads = [threading.Thread(target=work, args=(n,)) for n in "abc"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(store.get("shared").value.split("\n")) == 60


def test_user_block_history_lives_in_the_user_directory_and_reverts_there(
    paths: Paths, store: BlockStore
):
    write_block(user_file(paths, "human"), "---\ndescription: me\n---\nPrefers tabs.")
    entry = store.set_value("human", "Prefers spaces.", actor="agent", reason="told me")
    assert entry is not None and entry.scope == "user"
    assert (paths.user_config / "history" / "human.jsonl").is_file()
    assert not (paths.memory / "history" / "human.jsonl").exists()
    store.revert("human", entry.id, actor="user")
    assert user_file(paths, "human").read_text().endswith("Prefers tabs.\n")


def test_an_unusable_memory_directory_is_a_clear_error(paths: Paths, store: BlockStore):
    paths.memory.write_text("a file where the directory should be")
    with pytest.raises(BlockStoreError, match="cannot lock"):
        store.set_value("project", "x", actor="user", reason="test")
    assert store.ensure_defaults() == ["persona", "human"]  # best effort: the user's still work
    assert [b.label for b in store.blocks()] == ["persona", "human"]
