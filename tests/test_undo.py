"""Undo never destroys the user's work: a turn's checkpoint puts back only files that still hold what
the turn left; a file the user changed since keeps the user's edits, with the turn's change reversed
on top of them when it applies cleanly and shown as a diff when it does not."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from support.repos import make_repo

from mcode.tools import Permissions, RepoAccess, TurnCheckpoint, builtin_tools, write_file
from mcode.tools.merge import merge3

TOOLS = builtin_tools()
APP = "".join(f"def f{i}():\n    return {i}\n\n\n" for i in range(8))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"app.py": APP, "README.md": "# Demo\n"})


def turn(repo: Path, *calls: tuple[str, dict[str, Any]]) -> TurnCheckpoint:
    """One agent turn's tool calls, its checkpoint sealed as the session seals it when it ends."""
    checkpoint = TurnCheckpoint()
    ctx = RepoAccess(repo, Permissions.from_settings("auto"), recorder=checkpoint)
    for tool, args in calls:
        TOOLS.run(tool, ctx, args)
    checkpoint.seal()
    return checkpoint


def edit(path: str, old: str, new: str) -> tuple[str, dict[str, Any]]:
    return ("edit_file", {"path": path, "old_string": old, "new_string": new})


def outcomes(checkpoint: TurnCheckpoint, repo: Path) -> dict[str, str]:
    return {u.path: u.outcome for u in checkpoint.undo(repo)}


def test_a_file_the_user_left_alone_is_restored_exactly(repo: Path) -> None:
    checkpoint = turn(repo, edit("app.py", "return 1\n", "return 100\n"))
    assert outcomes(checkpoint, repo) == {"app.py": "restored"}
    assert (repo / "app.py").read_text() == APP


def test_the_users_edits_elsewhere_survive_and_the_turns_change_is_reversed(repo: Path) -> None:
    checkpoint = turn(repo, edit("app.py", "return 1\n", "return 100\n"))
    app = repo / "app.py"
    app.write_text(app.read_text().replace("return 6\n", "return 6  # mine\n") + "MINE = 1\n")

    [undone] = checkpoint.undo(repo)

    assert undone.outcome == "merged" and undone.reverted and undone.diff == ""
    assert "your edits are kept" in undone.describe()
    text = app.read_text()
    assert "return 1\n" in text and "return 100" not in text
    assert "return 6  # mine\n" in text and text.endswith("MINE = 1\n")
    assert text == APP.replace("return 6\n", "return 6  # mine\n") + "MINE = 1\n"


def test_overlapping_edits_leave_the_file_alone_and_show_the_turns_change(repo: Path) -> None:
    checkpoint = turn(repo, edit("app.py", "return 1\n", "return 100\n"))
    mine = APP.replace("return 1\n", "return 100  # checked by me\n")
    (repo / "app.py").write_text(mine)

    [undone] = checkpoint.undo(repo)

    assert undone.outcome == "conflict" and not undone.reverted
    assert (repo / "app.py").read_text() == mine
    assert undone.diff.startswith("--- a/app.py\n+++ b/app.py\n")
    assert "-    return 1\n+    return 100\n" in undone.diff
    assert "Revert the turn's change by hand" in undone.describe()


def test_a_created_file_the_user_added_to_is_kept(repo: Path) -> None:
    checkpoint = turn(
        repo,
        ("create_file", {"path": "pkg/new.py", "content": "NEW = 1\n"}),
        edit("README.md", "# Demo", "# Demo app"),
    )
    (repo / "pkg/new.py").write_text("NEW = 1\nUSED_BY_ME = NEW + 1\n")

    undone = checkpoint.undo(repo)

    assert [(u.path, u.outcome) for u in undone] == [
        ("pkg/new.py", "kept"),
        ("README.md", "restored"),
    ]
    assert (repo / "pkg/new.py").read_text() == "NEW = 1\nUSED_BY_ME = NEW + 1\n"
    assert "the turn created it and you edited it since" in undone[0].describe()
    assert (repo / "README.md").read_text() == "# Demo\n"


def test_a_created_file_left_alone_is_removed(repo: Path) -> None:
    checkpoint = turn(repo, ("create_file", {"path": "new.py", "content": "NEW = 1\n"}))
    assert outcomes(checkpoint, repo) == {"new.py": "removed"}
    assert not (repo / "new.py").exists()


def test_a_file_the_user_deleted_since_stays_deleted(repo: Path) -> None:
    checkpoint = turn(
        repo,
        edit("app.py", "return 1\n", "return 100\n"),
        ("create_file", {"path": "new.py", "content": "NEW = 1\n"}),
    )
    (repo / "app.py").unlink()
    (repo / "new.py").unlink()

    undone = checkpoint.undo(repo)

    assert [(u.path, u.outcome) for u in undone] == [("app.py", "deleted"), ("new.py", "unchanged")]
    assert "left deleted" in undone[0].describe()
    assert not (repo / "app.py").exists() and not (repo / "new.py").exists()


def test_a_later_shell_command_in_the_same_turn_is_part_of_what_the_turn_left(repo: Path) -> None:
    checkpoint = turn(
        repo,
        edit("app.py", "return 1\n", "return 100\n"),
        ("run_shell", {"command": "echo 'GENERATED = 1' >> app.py"}),
    )
    assert outcomes(checkpoint, repo) == {"app.py": "restored"}
    assert (repo / "app.py").read_text() == APP


def test_binary_files_are_restored_when_untouched_and_never_merged(repo: Path) -> None:
    blob = repo / "logo.bin"
    blob.write_bytes(b"\x89PNG\0\0old")
    checkpoint = TurnCheckpoint()
    ctx = RepoAccess(repo, Permissions.from_settings("auto"), recorder=checkpoint)
    write_file(ctx, blob.resolve(), b"\x89PNG\0\0agent")
    checkpoint.seal()
    assert outcomes(checkpoint, repo) == {"logo.bin": "restored"}
    assert blob.read_bytes() == b"\x89PNG\0\0old"

    write_file(ctx, blob.resolve(), b"\x89PNG\0\0agent")
    checkpoint.seal()
    blob.write_bytes(b"\x89PNG\0\0user")

    [undone] = checkpoint.undo(repo)

    assert undone.outcome == "conflict"
    assert undone.diff == "Binary files a/logo.bin and b/logo.bin differ\n"
    assert blob.read_bytes() == b"\x89PNG\0\0user"


def test_a_path_turned_into_a_symlink_since_is_never_written_through(
    repo: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.py"
    checkpoint = turn(repo, edit("app.py", "return 1\n", "return 100\n"))
    outside.write_text((repo / "app.py").read_text())
    (repo / "app.py").unlink()
    os.symlink(outside, repo / "app.py")

    [undone] = checkpoint.undo(repo)

    assert undone.outcome == "failed" and "symlink" in undone.describe()
    assert "return 100" in outside.read_text()


def test_undo_empties_the_checkpoint(repo: Path) -> None:
    checkpoint = turn(repo, edit("app.py", "return 1\n", "return 100\n"))
    checkpoint.undo(repo)
    assert len(checkpoint) == 0 and checkpoint.undo(repo) == []


# The three-way merge -------------------------------------------------------------------------------


def test_merge_takes_both_sides_when_they_touch_separate_lines() -> None:
    base = b"a\nb\nc\nd\ne\n"
    assert merge3(base, b"A\nb\nc\nd\ne\n", b"a\nb\nc\nd\nE\n") == b"A\nb\nc\nd\nE\n"
    assert merge3(base, base, b"a\nc\nd\ne\n") == b"a\nc\nd\ne\n"
    assert merge3(base, b"a\nB\nc\nd\ne\n", b"a\nB\nc\nd\ne\n") == b"a\nB\nc\nd\ne\n"


def test_merge_refuses_overlapping_or_adjacent_changes() -> None:
    base = b"a\nb\nc\n"
    assert merge3(base, b"a\nX\nc\n", b"a\nY\nc\n") is None
    assert merge3(base, b"a\nX\nc\n", b"a\nb\nY\n") is None
    assert merge3(base, b"a\nb\nc\nmine\n", b"a\nb\nc\ntheirs\n") is None


def test_merge_keeps_line_endings_and_a_missing_final_newline() -> None:
    base = b"a\r\nb\r\nc\r\nd\r\ne"
    assert merge3(base, b"a\r\nb\r\nc\r\nd\r\ne!", b"A\r\nb\r\nc\r\nd\r\ne") == (
        b"A\r\nb\r\nc\r\nd\r\ne!"
    )
