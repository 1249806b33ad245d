"""`mcode memory` from the shell: output, stdin, $EDITOR, exit codes, review and revert."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from mcode.cli.memory_cmd import memory_app
from mcode.config import Paths
from mcode.memory import BlockStore

app = typer.Typer()
app.add_typer(memory_app, name="memory")
runner = CliRunner()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return repo


def mem(repo: Path, *args: str, stdin: str | None = None, env: dict | None = None) -> Result:
    return runner.invoke(app, ["memory", *args, "--repo", str(repo)], input=stdin, env=env)


def block_path(repo: Path, label: str) -> Path:
    return repo / ".agentmemory" / "blocks" / f"{label}.md"


def one_line_error(result: Result, code: int, fragment: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcode: ") and fragment in lines[0], lines


def editor(tmp_path: Path, body: str) -> dict[str, str]:
    """An $EDITOR that runs `body` with `path` bound to the file being edited."""
    script = tmp_path / "editor.py"
    script.write_text(f"import pathlib, sys\npath = pathlib.Path(sys.argv[1])\n{body}\n")
    return {"EDITOR": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"}


# Reading ------------------------------------------------------------------------------------------


def test_list_shows_scope_usage_against_limit_and_description(repo: Path):
    result = mem(repo, "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["LABEL", "SCOPE", "CHARS", "FLAGS", "DESCRIPTION"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert list(rows) == ["persona", "human", "project", "lessons"]
    assert rows["persona"][1] == "user" and rows["lessons"][1] == "project"
    assert rows["lessons"][2] == "0/4000"
    assert "Mistakes" in " ".join(rows["lessons"][3:])


def test_list_json_and_flags(repo: Path):
    mem(repo, "set", "policy", "No force pushes.")
    path = block_path(repo, "policy")
    path.write_text(path.read_text().replace("read_only: false", "read_only: true"))

    result = mem(repo, "list", "--json")
    assert result.exit_code == 0
    blocks = {b["label"]: b for b in json.loads(result.stdout)["blocks"]}
    assert blocks["policy"] == {
        "label": "policy",
        "scope": "project",
        "path": str(path),
        "chars": 16,
        "limit": 5000,
        "read_only": True,
        "description": "",
        "error": None,
    }
    assert "read-only" in mem(repo, "list").stdout


def test_show_prints_the_text_and_unknown_labels_exit_2(repo: Path):
    mem(repo, "set", "project", "Build with make.")
    assert mem(repo, "show", "project").stdout == "Build with make.\n"
    shown = json.loads(mem(repo, "show", "project", "--json").stdout)
    assert shown["value"] == "Build with make." and shown["chars"] == 16
    one_line_error(mem(repo, "show", "nope"), 2, "no memory block 'nope'")
    one_line_error(mem(repo, "rm", "nope"), 2, "no memory block 'nope'")
    one_line_error(mem(repo, "show", "Not A Label"), 2, "invalid memory block label")


def test_repo_defaults_to_the_git_top_level(repo: Path, monkeypatch: pytest.MonkeyPatch):
    (repo / "src").mkdir()
    monkeypatch.chdir(repo / "src")
    result = runner.invoke(app, ["memory", "set", "notes", "from a subdirectory"])
    assert result.exit_code == 0, result.output
    assert block_path(repo, "notes").is_file()


def test_broken_block_is_flagged_and_the_others_still_listed(repo: Path):
    mem(repo, "set", "project", "fine")
    broken = block_path(repo, "broken")
    broken.write_text("---\nlimit: a lot\n---\ntext\n")

    result = mem(repo, "list")
    assert result.exit_code == 0
    assert "project" in result.stdout and "BROKEN" in result.stdout and str(broken) in result.stdout
    blocks = {b["label"]: b for b in json.loads(mem(repo, "list", "--json").stdout)["blocks"]}
    assert "limit must be a whole number" in blocks["broken"]["error"]
    assert blocks["project"]["error"] is None

    one_line_error(mem(repo, "show", "broken"), 1, str(broken))
    one_line_error(mem(repo, "set", "broken", "overwrite"), 1, "limit must be a whole number")
    assert broken.read_text() == "---\nlimit: a lot\n---\ntext\n"


# Changing -----------------------------------------------------------------------------------------


def test_set_and_append_read_stdin_for_dash(repo: Path):
    assert mem(repo, "set", "project", "-", stdin="Line from stdin\n").exit_code == 0
    assert mem(repo, "append", "project", "-", stdin="Another line\n").exit_code == 0
    assert mem(repo, "show", "project").stdout == "Line from stdin\nAnother line\n"


def test_append_takes_text_that_starts_with_a_dash(repo: Path):
    result = mem(repo, "append", "lessons", "- never commit generated files")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("lessons: 30/4000 chars")
    # an "h" in the text once read as -h: the help, exit 0, nothing stored
    again = mem(repo, "append", "lessons", "- run the migrations before the tests")
    assert again.exit_code == 0, again.output
    assert mem(repo, "show", "lessons").stdout == (
        "- never commit generated files\n- run the migrations before the tests\n"
    )


def test_set_can_create_a_user_block_with_metadata(repo: Path, tmp_path: Path):
    result = mem(
        repo, "set", "style", "Prefer early returns.", "--user", "--description", "My style"
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "config" / "mcode" / "blocks" / "style.md").is_file()
    shown = json.loads(mem(repo, "show", "style", "--json").stdout)
    assert (shown["scope"], shown["description"]) == ("user", "My style")


def test_over_limit_exits_2_and_leaves_the_block_unchanged(repo: Path):
    mem(repo, "set", "tiny", "12345", "--limit", "10")
    before = block_path(repo, "tiny").read_bytes()
    one_line_error(mem(repo, "append", "tiny", "67890"), 2, "would be 11 chars, limit is 10")
    one_line_error(mem(repo, "set", "tiny", "x" * 11), 2, "would be 11 chars, limit is 10")
    assert block_path(repo, "tiny").read_bytes() == before


def test_read_only_exits_2_and_leaves_the_block_unchanged(repo: Path, tmp_path: Path):
    path = block_path(repo, "policy")
    path.parent.mkdir(parents=True)
    path.write_text("---\nread_only: true\n---\nNo force pushes.\n")
    marker = tmp_path / "editor-ran"
    for args in (("set", "policy", "x"), ("append", "policy", "x"), ("rm", "policy")):
        one_line_error(mem(repo, *args), 2, "read-only")
    result = mem(repo, "edit", "policy", env=editor(tmp_path, f"open({str(marker)!r}, 'w')"))
    one_line_error(result, 2, "read-only")
    assert not marker.exists()  # refused before the user spends time in the editor
    assert path.read_text() == "---\nread_only: true\n---\nNo force pushes.\n"


# $EDITOR ------------------------------------------------------------------------------------------


def test_edit_saves_a_valid_edit_with_its_front_matter(repo: Path, tmp_path: Path):
    mem(repo, "set", "style", "Use tabs.")
    body = (
        "path.write_text(path.read_text().replace('Use tabs.', 'Use spaces.')"
        ".replace('limit: 5000', '# raised for the monorepo\\nlimit: 9000'))"
    )
    result = mem(repo, "edit", "style", env=editor(tmp_path, body))
    assert result.exit_code == 0, result.output
    shown = json.loads(mem(repo, "show", "style", "--json").stdout)
    assert (shown["value"], shown["limit"]) == ("Use spaces.", 9000)
    assert "# raised for the monorepo" in block_path(repo, "style").read_text()
    entry = json.loads(mem(repo, "log", "style", "--json").stdout)["entries"][-1]
    assert (entry["actor"], entry["op"]) == ("user", "edit")


def test_a_block_is_marked_as_being_edited_while_the_editor_runs(repo: Path, tmp_path: Path):
    """So that a session's background consolidation leaves an unsaved edit alone."""
    mem(repo, "set", "project", "Use tabs.")
    body = (
        "from mcode.config import Paths\nfrom mcode.memory import BlockStore\n"
        f"store = BlockStore.for_paths(Paths.for_repo(pathlib.Path({str(repo)!r})))\n"
        "seen = [store.being_edited(label) for label in ('project', 'lessons')]\n"
        "path.write_text(path.read_text().replace('Use tabs.', str(seen)))"
    )
    assert mem(repo, "edit", "project", env=editor(tmp_path, body)).exit_code == 0
    assert mem(repo, "show", "project").stdout == "[True, False]\n"
    assert not BlockStore.for_paths(Paths.for_repo(repo)).being_edited("project")


def test_edit_creates_a_missing_block(repo: Path, tmp_path: Path):
    body = "path.write_text('---\\ndescription: Deploy notes\\n---\\nDeploy with ansible.\\n')"
    assert mem(repo, "edit", "deploy", env=editor(tmp_path, body)).exit_code == 0
    assert mem(repo, "show", "deploy").stdout == "Deploy with ansible.\n"


def test_edit_with_invalid_front_matter_is_refused_and_the_draft_kept(repo: Path, tmp_path: Path):
    mem(repo, "set", "project", "Use tabs.")
    before = block_path(repo, "project").read_bytes()
    body = "path.write_text('---\\nlimit: twelve\\n---\\nmy careful edit\\n')"
    result = mem(repo, "edit", "project", env=editor(tmp_path, body))
    one_line_error(result, 2, "limit must be a whole number")
    assert block_path(repo, "project").read_bytes() == before
    draft = Path(result.stderr.strip().rsplit(" ", 1)[-1])
    assert "my careful edit" in draft.read_text()
    draft.unlink()


def test_edit_past_the_limit_is_refused(repo: Path, tmp_path: Path):
    mem(repo, "set", "tiny", "short", "--limit", "10")
    before = block_path(repo, "tiny").read_bytes()
    body = "path.write_text(path.read_text().replace('short', 'much too long now'))"
    result = mem(repo, "edit", "tiny", env=editor(tmp_path, body))
    one_line_error(result, 2, "would be 17 chars, limit is 10")
    assert block_path(repo, "tiny").read_bytes() == before


def test_edit_that_fails_or_changes_nothing_leaves_the_block(repo: Path, tmp_path: Path):
    mem(repo, "set", "project", "Use tabs.")
    before = block_path(repo, "project").read_bytes()
    one_line_error(mem(repo, "edit", "project", env=editor(tmp_path, "sys.exit(3)")), 1, "status 3")
    result = mem(repo, "edit", "project", env=editor(tmp_path, "pass"))
    assert result.exit_code == 0 and "unchanged" in result.stdout
    assert block_path(repo, "project").read_bytes() == before


def test_edit_does_not_overwrite_a_change_made_while_editing(repo: Path, tmp_path: Path):
    mem(repo, "set", "project", "Use tabs.")
    real = block_path(repo, "project")
    body = (
        f"real = pathlib.Path({str(real)!r})\n"
        "real.write_text(real.read_text().replace('Use tabs.', 'Changed by a teammate.'))\n"
        "path.write_text(path.read_text().replace('Use tabs.', 'My edit.'))"
    )
    result = mem(repo, "edit", "project", env=editor(tmp_path, body))
    one_line_error(result, 1, "changed while you were editing")
    assert mem(repo, "show", "project").stdout == "Changed by a teammate.\n"


# Review and revert --------------------------------------------------------------------------------


def test_log_and_revert_bring_back_a_removed_block(repo: Path):
    mem(repo, "set", "notes", "Remember the staging URL.", "--reason", "first note")
    mem(repo, "rm", "notes", "--reason", "cleanup")
    one_line_error(mem(repo, "show", "notes"), 2, "no memory block 'notes'")

    entries = json.loads(mem(repo, "log", "notes", "--json").stdout)["entries"]
    assert [(e["op"], e["reason"]) for e in entries] == [
        ("set", "first note"),
        ("delete", "cleanup"),
    ]
    assert set(entries[0]) >= {"id", "time", "actor", "reason", "op", "old", "new", "scope"}
    text = mem(repo, "log", "notes").stdout
    assert entries[1]["id"] in text and "cleanup" in text

    result = mem(repo, "revert", "notes", entries[1]["id"])
    assert result.exit_code == 0, result.output
    assert mem(repo, "show", "notes").stdout == "Remember the staging URL.\n"
    assert json.loads(mem(repo, "log", "notes", "--json").stdout)["entries"][-1]["op"] == "revert"


def test_revert_needs_force_to_drop_later_changes(repo: Path):
    mem(repo, "set", "project", "one")
    mem(repo, "append", "project", "two")
    first = json.loads(mem(repo, "log", "project", "--json").stdout)["entries"][-2]["id"]
    one_line_error(mem(repo, "revert", "project", first), 1, "--force")
    assert mem(repo, "revert", "project", first, "--force").exit_code == 0
    one_line_error(mem(repo, "revert", "project", "0000000"), 2, "no change")
    one_line_error(mem(repo, "log", "never-existed"), 2, "no memory block")


# The installed console script ---------------------------------------------------------------------


def _console_script() -> str | None:
    candidate = Path(sys.executable).with_name("mcode")
    script = str(candidate) if candidate.exists() else shutil.which("mcode")
    if script is None:
        return None
    probe = subprocess.run([script, "memory", "--help"], capture_output=True, timeout=60)
    return script if probe.returncode == 0 else None


def test_console_script_runs_memory_commands(repo: Path, tmp_path: Path):
    script = _console_script()
    if script is None:
        pytest.skip("`mcode memory` is not wired into the console script yet")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run(
        [script, "memory", "append", "lessons", "-", "--repo", str(repo)],
        input="- pin the database version",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    listed = subprocess.run(
        [script, "memory", "list", "--json", "--repo", str(repo)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    blocks = {b["label"]: b for b in json.loads(listed.stdout)["blocks"]}
    assert blocks["lessons"]["chars"] == len("- pin the database version")
