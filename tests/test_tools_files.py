"""The file tools on real repositories: reading with line numbers, exact-once edits and their
errors, atomic multi-edits, paths that try to leave the repository, secret files, grep, asking the
user with a diff, and per-turn checkpoints for /undo."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.repos import make_repo

from mcode.tools import (
    Permissions,
    RepoAccess,
    Request,
    ToolError,
    TurnCheckpoint,
    builtin_tools,
)

TOOLS = builtin_tools()

APP = """\
def add(a, b):
    return a + b


def total(items):
    result = 0
    for item in items:
        result = add(result, item)
    return result
"""


class Asker:
    """The user at the REPL: answers in turn, remembering every question."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Any:
        self.requests.append(request)
        return self.answers.pop(0)


def context(repo: Path, mode: str = "auto", ask: Asker | None = None, **kw: Any) -> RepoAccess:
    return RepoAccess(repo, Permissions.from_settings(mode), ask=ask, **kw)


def run(ctx: RepoAccess, tool: str, **args: Any) -> str:
    return TOOLS.run(tool, ctx, args)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {
            "src/app.py": APP,
            "src/util.py": "import os\n\nDEBUG = False\n",
            "README.md": "# Demo\n",
            ".gitignore": "build/\n",
        },
    )


# Declarations ---------------------------------------------------------------------------------------


def test_every_tool_declares_itself_for_the_model() -> None:
    for tool in TOOLS:
        schema = tool.schema()
        assert schema["type"] == "function"
        assert schema["function"]["name"] == tool.name
        assert len(tool.description) > 40
        assert schema["function"]["parameters"]["type"] == "object"
        json.dumps(schema)


def test_coding_and_memory_tools_share_one_registry() -> None:
    registry = builtin_tools()
    assert "edit_file" in registry and "memory_replace" in registry
    with pytest.raises(ValueError, match=r"already registered"):
        registry.register(registry.get("edit_file"))


def test_arguments_arrive_as_json_text_with_the_models_usual_slips(repo: Path) -> None:
    ctx = context(repo)
    arguments = json.dumps(
        {"path": "src/util.py", "old_string": "False", "new_string": "True", "replace_all": "true"}
    )
    TOOLS.run("edit_file", ctx, arguments)
    assert "DEBUG = True" in (repo / "src/util.py").read_text()
    with pytest.raises(ToolError, match=r"unexpected argument 'bogus'"):
        run(ctx, "read_file", path="README.md", bogus=1)
    with pytest.raises(ToolError, match=r"missing required argument 'path'"):
        run(ctx, "read_file")


# read_file ------------------------------------------------------------------------------------------


def test_read_file_numbers_lines(repo: Path) -> None:
    out = run(context(repo), "read_file", path="src/app.py")
    assert out.splitlines()[0] == "     1→def add(a, b):"
    assert "     9→    return result" in out
    assert "Showing" not in out


def test_read_file_pages_with_offset_and_limit(repo: Path) -> None:
    out = run(context(repo), "read_file", path="src/app.py", offset=5, limit=2)
    lines = out.splitlines()
    assert lines[:2] == ["     5→def total(items):", "     6→    result = 0"]
    assert "Showing lines 5-6 of 9" in out and "offset=7" in out
    with pytest.raises(ToolError, match=r"past the end of src/app\.py, which has 9 lines"):
        run(context(repo), "read_file", path="src/app.py", offset=50)


def test_read_file_pages_a_huge_file_and_truncates_long_lines(repo: Path) -> None:
    (repo / "big.txt").write_text("".join(f"line {n}\n" for n in range(1, 5001)))
    (repo / "wide.txt").write_text("x" * 5000 + "\nshort\n")
    out = run(context(repo), "read_file", path="big.txt")
    assert out.count("→") == 2000
    assert "Showing lines 1-2000 of 5000" in out and "offset=2001" in out
    wide = run(context(repo), "read_file", path="wide.txt")
    assert "line truncated, 5000 chars" in wide
    assert len(wide) < 2200


def test_read_file_refuses_binary_files_and_directories(repo: Path) -> None:
    (repo / "blob.dat").write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(ToolError, match=r"binary"):
        run(context(repo), "read_file", path="blob.dat")
    with pytest.raises(ToolError, match=r"directory"):
        run(context(repo), "read_file", path="src")


def test_read_file_refuses_a_fifo_instead_of_hanging(repo: Path) -> None:
    os.mkfifo(repo / "pipe")
    with pytest.raises(ToolError, match=r"not a regular file"):
        run(context(repo), "read_file", path="pipe")


def test_read_file_suggests_the_file_meant(repo: Path) -> None:
    with pytest.raises(ToolError, match=r"Did you mean src/app\.py"):
        run(context(repo), "read_file", path="src/ap.py")


# edit_file --------------------------------------------------------------------------------------------


def test_edit_replaces_exactly_one_occurrence(repo: Path) -> None:
    out = run(
        context(repo),
        "edit_file",
        path="src/app.py",
        old_string="    return a + b",
        new_string="    return a + b + 0",
    )
    assert "return a + b + 0" in (repo / "src/app.py").read_text()
    assert "     2→    return a + b + 0" in out


def test_edit_with_no_match_points_at_the_closest_line_and_changes_nothing(repo: Path) -> None:
    with pytest.raises(ToolError) as caught:
        run(
            context(repo),
            "edit_file",
            path="src/app.py",
            old_string="def totl(itms):",
            new_string="def total(items, start=0):",
        )
    message = str(caught.value)
    assert "old_string not found in src/app.py" in message
    assert "closest line is 5: `def total(items):`" in message
    assert (repo / "src/app.py").read_text() == APP


def test_edit_with_line_number_prefixes_says_so(repo: Path) -> None:
    with pytest.raises(ToolError, match=r"line-number prefixes"):
        run(
            context(repo),
            "edit_file",
            path="src/app.py",
            old_string="     1→def add(a, b):",
            new_string="def add(a, b, c):",
        )


def test_edit_with_several_matches_lists_their_lines(repo: Path) -> None:
    with pytest.raises(ToolError) as caught:
        run(context(repo), "edit_file", path="src/app.py", old_string="result", new_string="acc")
    message = str(caught.value)
    assert "old_string occurs 4 times in src/app.py (lines 6, 8, 9)" in message
    assert "replace_all" in message
    assert (repo / "src/app.py").read_text() == APP


def test_edit_replace_all(repo: Path) -> None:
    out = run(
        context(repo),
        "edit_file",
        path="src/app.py",
        old_string="result",
        new_string="acc",
        replace_all=True,
    )
    assert "replaced 4 occurrences" in out
    assert "result" not in (repo / "src/app.py").read_text()


def test_edit_keeps_windows_line_endings_and_the_file_mode(repo: Path) -> None:
    script = repo / "run.sh"
    script.write_bytes(b"#!/bin/sh\r\necho one\r\necho two\r\n")
    script.chmod(0o755)
    run(
        context(repo),
        "edit_file",
        path="run.sh",
        old_string="echo one\necho two",
        new_string="echo 1\necho 2",
    )
    assert script.read_bytes() == b"#!/bin/sh\r\necho 1\r\necho 2\r\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


def test_edit_refuses_pasted_line_numbers_in_the_new_text(repo: Path) -> None:
    with pytest.raises(ToolError, match=r"new_string has line-number prefixes"):
        run(
            context(repo),
            "edit_file",
            path="src/app.py",
            old_string="def add(a, b):\n    return a + b",
            new_string="     1→def add(a, b):\n     2→    return b + a",
        )
    assert (repo / "src/app.py").read_text() == APP


def test_edit_of_a_missing_file_points_to_create_file(repo: Path) -> None:
    with pytest.raises(ToolError, match=r"use create_file"):
        run(context(repo), "edit_file", path="src/new.py", old_string="a", new_string="b")


# multi_edit -------------------------------------------------------------------------------------------


def test_multi_edit_applies_edits_in_order(repo: Path) -> None:
    out = run(
        context(repo),
        "multi_edit",
        path="src/app.py",
        edits=[
            {"old_string": "def add(a, b):", "new_string": "def plus(a, b):"},
            {"old_string": "add(result, item)", "new_string": "plus(result, item)"},
            {"old_string": "plus", "new_string": "sum_two", "replace_all": True},
        ],
    )
    text = (repo / "src/app.py").read_text()
    assert "Applied 3 edits" in out
    assert "def sum_two(a, b):" in text and "sum_two(result, item)" in text


def test_multi_edit_is_all_or_nothing(repo: Path) -> None:
    before = (repo / "src/app.py").read_bytes()
    with pytest.raises(ToolError, match=r"edit 2 of 2 failed, so none was applied"):
        run(
            context(repo),
            "multi_edit",
            path="src/app.py",
            edits=[
                {"old_string": "def add(a, b):", "new_string": "def plus(a, b):"},
                {"old_string": "no such text", "new_string": "x"},
            ],
        )
    assert (repo / "src/app.py").read_bytes() == before


# create_file ------------------------------------------------------------------------------------------


def test_create_file_makes_directories_and_refuses_to_overwrite(repo: Path) -> None:
    ctx = context(repo)
    assert "Created pkg/sub/mod.py (2 lines)" in run(
        ctx, "create_file", path="pkg/sub/mod.py", content="a = 1\nb = 2\n"
    )
    with pytest.raises(ToolError, match=r"already exists.*overwrite=true"):
        run(ctx, "create_file", path="pkg/sub/mod.py", content="gone")
    assert (repo / "pkg/sub/mod.py").read_text() == "a = 1\nb = 2\n"
    run(ctx, "create_file", path="pkg/sub/mod.py", content="c = 3\n", overwrite=True)
    assert (repo / "pkg/sub/mod.py").read_text() == "c = 3\n"
    assert not [p for p in (repo / "pkg/sub").iterdir() if p.name.endswith(".tmp")]


# Paths ------------------------------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "loot.txt").write_text("outside the repo\n")
    return elsewhere


def test_dot_dot_cannot_leave_the_repository(repo: Path, outside: Path) -> None:
    ctx = context(repo)
    with pytest.raises(ToolError, match=r"outside the repository"):
        run(ctx, "read_file", path="../elsewhere/loot.txt")
    with pytest.raises(ToolError, match=r"outside the repository"):
        run(ctx, "create_file", path="src/../../elsewhere/new.txt", content="x")
    with pytest.raises(ToolError, match=r"outside the repository"):
        run(ctx, "read_file", path=str(outside / "loot.txt"))
    assert not (outside / "new.txt").exists()


def test_a_symlink_cannot_lead_out_of_the_repository(repo: Path, outside: Path) -> None:
    (repo / "escape").symlink_to(outside)
    (repo / "loot-link.txt").symlink_to(outside / "loot.txt")
    ctx = context(repo)
    for path in ("escape/loot.txt", "loot-link.txt"):
        with pytest.raises(ToolError, match=r"leads outside the repository"):
            run(ctx, "read_file", path=path)
    with pytest.raises(ToolError, match=r"leads outside the repository"):
        run(ctx, "create_file", path="escape/planted.txt", content="x")
    with pytest.raises(ToolError, match=r"leads outside the repository"):
        run(ctx, "edit_file", path="loot-link.txt", old_string="outside", new_string="inside")
    assert (outside / "loot.txt").read_text() == "outside the repo\n"
    assert not (outside / "planted.txt").exists()


def test_a_symlink_inside_the_repository_is_followed(repo: Path) -> None:
    (repo / "alias.py").symlink_to("src/util.py")
    ctx = context(repo)
    assert "DEBUG = False" in run(ctx, "read_file", path="alias.py")
    run(ctx, "edit_file", path="alias.py", old_string="False", new_string="True")
    assert (repo / "alias.py").is_symlink()
    assert "DEBUG = True" in (repo / "src/util.py").read_text()


def test_the_tools_never_write_into_git(repo: Path) -> None:
    with pytest.raises(ToolError, match=r"git's or mcode's own data"):
        run(context(repo), "create_file", path=".git/hooks/pre-commit", content="#!/bin/sh\n")
    assert not (repo / ".git/hooks/pre-commit").exists()


@pytest.mark.parametrize(
    "path", [".GIT/hooks/pre-commit", ".Git/config", ".agentMemory/blocks/x.md", "．ｇｉｔ/config"]
)
def test_git_and_mcode_data_are_refused_in_any_letter_case(repo: Path, path: str) -> None:
    # On macOS's case-insensitive file system `.GIT/hooks/pre-commit` is git's own hook.
    with pytest.raises(ToolError, match=r"git's or mcode's own data"):
        run(context(repo), "create_file", path=path, content="#!/bin/sh\n")
    assert not (repo / path).exists()


def test_list_files_hides_mcode_data_in_any_letter_case(repo: Path) -> None:
    (repo / ".AgentMemory").mkdir()
    (repo / ".AgentMemory" / "notes.md").write_text("x\n")
    assert ".AgentMemory/notes.md" not in run(context(repo), "list_files")


# Secrets ----------------------------------------------------------------------------------------------


def test_reading_a_secret_file_asks_even_in_auto_mode(repo: Path) -> None:
    (repo / ".env").write_text("API_KEY=sk-very-secret\n")
    asker = Asker("no", "yes")
    ctx = context(repo, "auto", asker)
    with pytest.raises(ToolError, match=r"the user denied reading the secret file \.env"):
        run(ctx, "read_file", path=".env")
    assert asker.requests[0].kind == "secret"
    assert "Read the secret file .env?" in asker.requests[0].summary
    assert "sk-very-secret" in run(ctx, "read_file", path=".env")


def test_a_secret_file_is_refused_when_nobody_can_be_asked(repo: Path) -> None:
    (repo / "deploy.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(ToolError, match=r"needs the user's approval"):
        run(context(repo, "auto", ask=None), "read_file", path="deploy.pem")


def test_always_for_a_secret_file_stops_asking_about_it(repo: Path) -> None:
    (repo / ".env").write_text("A=1\n")
    asker = Asker("always")
    ctx = context(repo, "ask", asker)
    run(ctx, "read_file", path=".env")
    run(ctx, "read_file", path=".env")
    assert len(asker.requests) == 1


# grep and list_files ----------------------------------------------------------------------------------


def test_grep_finds_lines_in_files_git_does_not_ignore(repo: Path) -> None:
    (repo / "build").mkdir()
    (repo / "build/out.py").write_text("def add(x): pass\n")
    out = run(context(repo), "grep", pattern=r"def \w+\(")
    assert "src/app.py:1:def add(a, b):" in out
    assert "src/app.py:5:def total(items):" in out
    assert "build/" not in out
    assert "(2 matches in 1 file.)" in out


def test_grep_skips_secret_files_unless_named(repo: Path) -> None:
    (repo / ".env").write_text("DEBUG_TOKEN=abc\n")
    asker = Asker("yes")
    ctx = context(repo, "auto", asker)
    out = run(ctx, "grep", pattern="DEBUG")
    assert "src/util.py:3:DEBUG = False" in out
    assert "abc" not in out
    assert "Skipped 1 secret file: .env" in out
    assert not asker.requests
    named = run(ctx, "grep", pattern="DEBUG", path=".env")
    assert ".env:1:DEBUG_TOKEN=abc" in named
    assert asker.requests[0].kind == "secret"


def test_grep_filters_caps_and_explains_bad_patterns(repo: Path) -> None:
    (repo / "many.txt").write_text("hit\n" * 250)
    ctx = context(repo)
    out = run(ctx, "grep", pattern="hit", max_results=10)
    assert out.count("many.txt:") == 10
    assert "250 matches in 1 file; showing the first 10" in out
    assert "src/util.py" in run(ctx, "grep", pattern="debug", ignore_case=True, glob="*.py")
    assert "No matches" in run(ctx, "grep", pattern="DEBUG", glob="*.md")
    assert "src/app.py:5:def total" in run(ctx, "grep", pattern="^def total$|^def total\\(")
    assert run(ctx, "grep", pattern="import", files_only=True).startswith("src/util.py (1)")
    with pytest.raises(ToolError, match=r"invalid regular expression.*escape"):
        run(ctx, "grep", pattern="add(")


def test_grep_skips_files_a_read_rule_denies(repo: Path) -> None:
    ctx = RepoAccess(repo, Permissions.from_settings("auto", deny=["Read(src/util.py)"]))
    out = run(ctx, "grep", pattern="import")
    assert "No matches" in out and "denied by a Read rule" in out


def test_list_files_with_a_glob(repo: Path) -> None:
    ctx = context(repo)
    everything = run(ctx, "list_files")
    assert "src/app.py" in everything and "README.md" in everything
    assert run(ctx, "list_files", pattern="*.py").splitlines() == [
        "src/app.py",
        "src/util.py",
        "(2 files)",
    ]
    assert run(ctx, "list_files", path="src", pattern="u*").splitlines()[0] == "src/util.py"


def test_list_files_summarises_a_big_tree(repo: Path) -> None:
    for n in range(400):
        (repo / "gen").mkdir(exist_ok=True)
        (repo / f"gen/f{n}.txt").write_text("x")
    out = run(context(repo), "list_files")
    assert "too many to list" in out
    assert "gen/ (400 files)" in out


# Asking before edits -----------------------------------------------------------------------------------


def test_ask_mode_shows_the_diff_and_a_no_leaves_the_file_alone(repo: Path) -> None:
    asker = Asker("no")
    ctx = context(repo, "ask", asker)
    with pytest.raises(ToolError, match=r"the user denied editing src/util\.py"):
        run(ctx, "edit_file", path="src/util.py", old_string="False", new_string="True")
    request = asker.requests[0]
    assert request.kind == "edit" and request.summary == "Edit src/util.py?"
    assert "-DEBUG = False\n+DEBUG = True" in request.detail
    assert request.detail.startswith("--- a/src/util.py\n+++ b/src/util.py")
    assert request.always == ("Edit",)
    assert (repo / "src/util.py").read_text() == "import os\n\nDEBUG = False\n"


def test_always_accepts_every_later_edit(repo: Path) -> None:
    asker = Asker("always")
    ctx = context(repo, "ask", asker)
    run(ctx, "edit_file", path="src/util.py", old_string="False", new_string="True")
    run(ctx, "create_file", path="notes.md", content="hi\n")
    assert len(asker.requests) == 1
    assert (repo / "notes.md").exists()


def test_accept_edits_mode_does_not_ask_for_edits_and_shows_their_diff(repo: Path) -> None:
    asker, shown = Asker(), []
    ctx = context(repo, "accept-edits", asker, on_output=shown.append)
    run(ctx, "create_file", path="x.txt", content="x\n")
    run(ctx, "edit_file", path="src/util.py", old_string="False", new_string="True")
    assert not asker.requests
    assert shown[:3] == ["--- /dev/null", "+++ b/x.txt", "@@ -0,0 +1 @@"]
    assert "-DEBUG = False" in shown and "+DEBUG = True" in shown


def test_an_edit_the_user_was_asked_about_is_not_shown_twice(repo: Path) -> None:
    shown: list[str] = []
    ctx = context(repo, "ask", Asker("yes"), on_output=shown.append)
    run(ctx, "edit_file", path="src/util.py", old_string="False", new_string="True")
    assert shown == []


def test_a_deny_rule_refuses_an_edit_without_asking(repo: Path) -> None:
    (repo / "poetry.lock").write_text("locked\n")
    asker = Asker()
    perms = Permissions.from_settings("auto", deny=["Write(*.lock)"])
    ctx = RepoAccess(repo, perms, ask=asker)
    with pytest.raises(ToolError, match=r"denied by the permission rule Write\(\*\.lock\)"):
        run(ctx, "edit_file", path="poetry.lock", old_string="locked", new_string="open")
    assert not asker.requests
    assert (repo / "poetry.lock").read_text() == "locked\n"


def test_a_file_changed_while_the_user_looked_is_not_overwritten(repo: Path) -> None:
    def meddling_user(request: Request) -> Any:
        (repo / "src/util.py").write_text("typed by the user\n")
        return "yes"

    ctx = RepoAccess(repo, Permissions(), ask=meddling_user)
    with pytest.raises(ToolError, match=r"changed on disk"):
        run(ctx, "edit_file", path="src/util.py", old_string="False", new_string="True")
    assert (repo / "src/util.py").read_text() == "typed by the user\n"


# Checkpoints -------------------------------------------------------------------------------------------


def test_turn_checkpoint_restores_edited_and_created_files_only(repo: Path) -> None:
    checkpoint = TurnCheckpoint()
    ctx = context(repo, recorder=checkpoint)
    run(ctx, "edit_file", path="src/app.py", old_string="a + b", new_string="a - b")
    run(ctx, "edit_file", path="src/app.py", old_string="a - b", new_string="a * b")
    run(ctx, "create_file", path="src/new.py", content="NEW = 1\n")
    (repo / "README.md").write_text("# Edited by the user meanwhile\n")
    real = repo.resolve()
    assert checkpoint.paths == [real / "src/app.py", real / "src/new.py"]

    checkpoint.seal()

    undone = checkpoint.undo(repo)

    assert [(u.path, u.outcome) for u in undone] == [
        ("src/app.py", "restored"),
        ("src/new.py", "removed"),
    ]
    assert (repo / "src/app.py").read_text() == APP
    assert not (repo / "src/new.py").exists()
    assert (repo / "README.md").read_text() == "# Edited by the user meanwhile\n"
    assert len(checkpoint) == 0


def test_a_refused_edit_records_nothing(repo: Path) -> None:
    checkpoint = TurnCheckpoint()
    ctx = context(repo, recorder=checkpoint)
    with pytest.raises(ToolError):
        run(ctx, "edit_file", path="src/app.py", old_string="nope", new_string="x")
    assert len(checkpoint) == 0


# code_search -------------------------------------------------------------------------------------------


@dataclass
class Hit:
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    snippet: str
    summary: str = ""


class FakeSearcher:
    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        self.calls: list[tuple[str, int, str]] = []

    def search(self, query: str, k: int, level: str) -> list[Hit]:
        self.calls.append((query, k, level))
        return self.hits[:k]


def test_code_search_shows_located_snippets(repo: Path) -> None:
    searcher = FakeSearcher(
        [
            Hit("src/app.py", 5, 9, "total", "function", "def total(items):\n    result = 0\n…"),
            Hit(".env", 1, 1, "", "file", "API_KEY=x"),
        ]
    )
    out = run(context(repo, searcher=searcher), "code_search", query="sum items", k=5)
    assert searcher.calls == [("sum items", 5, "symbol")]
    assert out.startswith("1. src/app.py:5-9 function total\n     5→def total(items):")
    assert "     6→    result = 0\n      …" in out
    assert ".env" not in out


def test_code_search_gives_a_files_module_summary_with_its_first_result(repo: Path) -> None:
    about = "Totals of orders (key sk-live-0123456789abcdef0123 in a comment)"
    searcher = FakeSearcher(
        [
            Hit("src/app.py", 5, 9, "total", "function", "def total(items):", about),
            Hit("src/app.py", 12, 14, "tax", "function", "def tax(amount):", about),
            Hit("src/util.py", 1, 2, "pad", "function", "def pad(text):"),
        ]
    )
    out = run(context(repo, searcher=searcher), "code_search", query="order totals")
    first, second, third = out.split("\n\n")
    assert first.split("\n")[:2] == [
        "1. src/app.py:5-9 function total",
        "   module summary: Totals of orders (key [REDACTED:openai-key] in a comment)",
    ]
    assert "module summary" not in second and "module summary" not in third


def test_code_search_without_an_index_suggests_grep(repo: Path) -> None:
    with pytest.raises(ToolError, match=r"not available.*grep"):
        run(context(repo), "code_search", query="anything")


def test_writes_leave_no_temp_files(repo: Path) -> None:
    ctx = context(repo)
    run(ctx, "edit_file", path="src/util.py", old_string="False", new_string="True")
    assert sorted(os.listdir(repo / "src")) == ["app.py", "util.py"]
