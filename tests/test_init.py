"""`mcode init`: the project block built from a real repository, and re-runs that never clobber."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from support.repos import git, write_files
from typer.testing import CliRunner, Result

from mcode.cli.init_cmd import init
from mcode.config import Paths
from mcode.memory import BlockStore
from mcode.memory.init import END, run_init
from mcode.survey.instructions import INSTRUCTIONS_CAP, collect_instructions
from mcode.survey.scan import analyze_subjects

app = typer.Typer()
app.command("init")(init)
app.command("noop")(lambda: None)  # a second command keeps `init` a subcommand, as in mcode
runner = CliRunner()

PYPROJECT = """\
[project]
name = "widgets"
description = "Counts widgets for the warehouse team."
dependencies = []

[project.optional-dependencies]
dev = ["pytest", "ruff"]

[project.scripts]
widgets = "widgets.cli:main"

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.ruff]
line-length = 100

[tool.mypy]
files = ["src"]
"""
PACKAGE_JSON = json.dumps(
    {"name": "widgets-ui", "scripts": {"test": "vitest run", "lint": "eslint .", "build": "vite"}}
)
MAKEFILE = ".PHONY: test lint\ntest:\n\tpytest -q\nlint:\n\truff check .\n"
COMMITS = [
    "feat(parser): add widget parser",
    "fix(cli): handle an empty inventory",
    "docs: explain the counting rules",
    "feat: support CSV export",
    "refactor(parser): split tokenizer from parser",
]


@pytest.fixture(scope="module")
def built_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The widgets repository and its history, committed once for the module (a dozen git runs)."""
    root = tmp_path_factory.mktemp("built") / "widgets"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write_files(
        root,
        {
            "pyproject.toml": PYPROJECT,
            "package.json": PACKAGE_JSON,
            "Makefile": MAKEFILE,
            "src/widgets/__init__.py": "",
            "src/widgets/parser.py": "def parse(text):\n    return text.split()\n",
            "tests/test_parser.py": "def test_parse():\n    assert True\n",
            "ui/app.ts": "export const app = 1;\n",
            "AGENTS.md": "# Working here\nRun `make test` before every commit.\n",
            "ui/AGENTS.md": "UI code uses named exports only.\n",
            "CLAUDE.md": "Follow @docs/style.md. Mail owner@example.com. `@ignored.md`\n",
            "docs/style.md": "Functions stay under 40 lines. See @docs/deep.md\n",
            "docs/deep.md": "DEEP-IMPORT-MARKER\n",
        },
    )
    for n, subject in enumerate(COMMITS):
        (root / "CHANGES").write_text(f"{n}\n")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", subject)
    return root


@pytest.fixture
def repo(built_repo: Path, tmp_path: Path) -> Path:
    """A copy of the widgets repository for each test to change as it likes."""
    return Path(shutil.copytree(built_repo, tmp_path / "widgets", symlinks=True))


def run(repo: Path, *args: str) -> Result:
    return runner.invoke(app, ["init", "--repo", str(repo), *args])


def block_file(repo: Path) -> Path:
    return repo / ".agentmemory" / "blocks" / "project.md"


def store(repo: Path) -> BlockStore:
    return BlockStore.for_paths(Paths.for_repo(repo))


def init_entries(repo: Path) -> list:
    return [e for e in store(repo).log("project") if e.actor == "init"]


def commit(repo: Path, files: dict[str, str], subject: str) -> None:
    write_files(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", subject)


# A first run -------------------------------------------------------------------------------------


def test_init_states_commands_languages_commit_style_and_imported_instructions(repo: Path):
    result = run(repo)
    assert result.exit_code == 0, result.output
    value = store(repo).get("project").value

    for command in ("pytest", "ruff check .", "mypy", "npm test", "npm run lint", "make lint"):
        assert f"`{command}`" in value, command
    assert "pip install -e '.[dev]'" in value
    assert "Counts widgets for the warehouse team." in value
    assert "Python (3 files)" in value and "TypeScript" in value
    assert "`src/widgets/`" in value and "`tests/`" in value
    assert "Conventional Commits" in value and "feat" in value and "imperative" in value
    # Instruction files: root AGENTS.md before the per-directory one, CLAUDE.md with its import.
    assert value.index("Run `make test` before") < value.index("UI code uses named exports")
    assert "Functions stay under 40 lines." in value
    assert "DEEP-IMPORT-MARKER" not in value  # imports are resolved one level only
    assert "ignored.md" in value and "## From ignored.md" not in value
    # Everything generated sits between the markers; the user's part follows them.
    assert value.startswith("<!-- mcode:init:start") and END in value
    assert "project: created" in result.output


def test_init_copies_the_example_config_and_gitignore_without_replacing_the_teams(repo: Path):
    (repo / ".agentmemory").mkdir()
    (repo / ".agentmemory" / "config.toml").write_text('model = "openai/gpt-4.1"\n')
    assert run(repo).exit_code == 0
    assert (repo / ".agentmemory" / "config.toml").read_text() == 'model = "openai/gpt-4.1"\n'
    ignore = (repo / ".agentmemory" / ".gitignore").read_text()
    assert "index/" in ignore and "*.lock" in ignore


def test_init_records_its_change_in_the_history_as_init(repo: Path):
    assert run(repo).exit_code == 0
    entries = init_entries(repo)
    assert entries and "mcode:init:start" in entries[-1].new.value
    assert "pyproject.toml" in entries[-1].reason


# Re-runs -----------------------------------------------------------------------------------------


def test_second_run_on_an_unchanged_repo_changes_nothing(repo: Path):
    assert run(repo).exit_code == 0
    before = block_file(repo).read_bytes()
    history = len(store(repo).log("project"))

    result = run(repo)

    assert result.exit_code == 0, result.output
    assert "project: unchanged" in result.output
    assert block_file(repo).read_bytes() == before
    assert len(store(repo).log("project")) == history


def test_user_text_outside_the_markers_survives_a_regeneration(repo: Path):
    assert run(repo).exit_code == 0
    value = store(repo).get("project").value
    mine = "## Team notes\nWe deploy on Tuesdays only."
    store(repo).set_value("project", f"{value}\n\n{mine}", actor="user", reason="notes")
    commit(repo, {"Makefile": MAKEFILE + "bench:\n\tpython bench.py\n"}, "build: add bench target")

    result = run(repo)

    assert result.exit_code == 0, result.output
    assert "project: updated" in result.output
    value = store(repo).get("project").value
    assert mine in value and "`make bench`" in value
    assert value.count("mcode:init:start") == 1


def test_init_above_a_hand_written_block_keeps_it_below_the_generated_part(repo: Path):
    mine = "## Architecture\nThe parser feeds the counter."
    store(repo).set_value("project", mine, actor="user", reason="by hand", scope="project")
    assert run(repo).exit_code == 0
    value = store(repo).get("project").value
    assert value.endswith(mine) and value.index(END) < value.index(mine)


def test_a_hand_edit_inside_the_markers_is_refused_without_force(repo: Path):
    assert run(repo).exit_code == 0
    edited = store(repo).get("project").value.replace("`pytest`", "`pytest -x --no-cov`")
    store(repo).set_value("project", edited, actor="user", reason="tweak")
    commit(repo, {"CONVENTIONS.md": "Prefer dataclasses to dicts.\n"}, "docs: add conventions")

    refused = run(repo)

    assert refused.exit_code == 1
    stderr = refused.stderr.strip().splitlines()
    assert len(stderr) == 1 and "--force" in stderr[0] and "edited" in stderr[0]
    assert "+Prefer dataclasses to dicts." in refused.stdout  # the proposal, as a diff
    assert store(repo).get("project").value == edited

    forced = run(repo, "--force")
    assert forced.exit_code == 0, forced.output
    value = store(repo).get("project").value
    assert "Prefer dataclasses to dicts." in value and "--no-cov" not in value


def test_a_hand_edit_inside_the_markers_stays_when_the_repo_did_not_change(repo: Path):
    assert run(repo).exit_code == 0
    edited = store(repo).get("project").value.replace("`pytest`", "`pytest -x`")
    store(repo).set_value("project", edited, actor="user", reason="tweak")
    result = run(repo)
    assert result.exit_code == 0 and "unchanged" in result.output
    assert store(repo).get("project").value == edited

    assert run(repo, "--force").exit_code == 0
    assert "`pytest -x`" not in store(repo).get("project").value


def test_diff_shows_the_change_and_writes_nothing(repo: Path):
    result = run(repo, "--diff")
    assert result.exit_code == 0, result.output
    assert "+++ b/.agentmemory/blocks/project.md" in result.output
    assert "+- test: `pytest` (pyproject.toml)" in result.output
    assert not (repo / ".agentmemory").exists()


def test_json_reports_what_was_found(repo: Path):
    result = run(repo, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "created" and data["changed"] is True
    assert {"kind": "test", "command": "pytest", "source": "pyproject.toml", "detail": ""} in (
        data["commands"]
    )
    assert data["languages"][0] == {"name": "Python", "files": 3}
    assert [i["path"] for i in data["instructions"]] == [
        "AGENTS.md",
        "ui/AGENTS.md",
        "CLAUDE.md",
        "docs/style.md",
    ]
    assert data["commit_style"]["types"][0] == "feat"
    assert ".agentmemory/config.toml" in data["created"]


def test_a_read_only_project_block_is_left_alone(repo: Path):
    path = block_file(repo)
    path.parent.mkdir(parents=True)
    path.write_text("---\nread_only: true\n---\nHands off.\n")
    result = run(repo)
    assert result.exit_code == 2
    assert "read-only" in result.stderr and path.read_text().endswith("Hands off.\n")


# Instruction files -------------------------------------------------------------------------------


def test_instruction_files_are_capped_at_32_kib_and_the_limit_makes_room(repo: Path):
    big = "".join(f"- rule {n}: keep the widget counter exact\n" for n in range(1200))
    commit(repo, {"AGENTS.md": big}, "docs: many rules")

    result = run(repo, "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["limit_raised_from"] == 6000
    assert data["instructions"][0]["omitted_bytes"] > 0
    block = store(repo).get("project")
    assert block.chars <= block.limit
    assert "- rule 0:" in block.value and "- rule 1199:" not in block.value
    assert "capped at 32 KiB" in block.value


def test_claude_imports_stay_inside_the_repo_and_never_loop(tmp_path: Path):
    root = tmp_path / "r"
    write_files(
        tmp_path,
        {
            "secret.md": "OUTSIDE-SECRET\n",
            "r/CLAUDE.md": "@CLAUDE.md @a.md @a.md @../secret.md @~/notes.md @missing.md\n",
            "r/a.md": "A-TEXT @CLAUDE.md\n",
        },
    )
    found = collect_instructions(root, ["CLAUDE.md", "a.md"])
    assert [(i.path, i.imported_by) for i in found] == [("CLAUDE.md", None), ("a.md", "CLAUDE.md")]
    assert sum(len(i.text.encode()) for i in found) <= INSTRUCTIONS_CAP


def test_secret_files_are_not_imported_and_secret_values_are_redacted(tmp_path: Path):
    key = "gh" + "p_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"  # a GitHub token's shape
    write_files(
        tmp_path,
        {
            "CLAUDE.md": "Deploy with the keys in @.env and see @deploy.md\n",
            ".env": "AWS_SECRET=from-the-env-file\n",
            "deploy.md": f"Use access key {key} for staging.\n",
        },
    )
    skipped: list[str] = []
    found = collect_instructions(tmp_path, ["CLAUDE.md", "deploy.md"], on_skip=skipped.append)
    assert [i.path for i in found] == ["CLAUDE.md", "deploy.md"]
    assert skipped == [".env: looks like a secret; not imported"]
    text = "\n".join(i.text for i in found)
    assert "from-the-env-file" not in text and key not in text
    assert "[REDACTED:" in text


def test_a_claude_md_linked_to_agents_md_is_imported_once(tmp_path: Path):
    write_files(tmp_path, {"AGENTS.md": "SHARED-RULES\n", "outside.md": "OUTSIDE\n"})
    (tmp_path / "CLAUDE.md").symlink_to("AGENTS.md")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "AGENTS.md").symlink_to(tmp_path / "outside.md")
    root = tmp_path / "sub"
    assert collect_instructions(root, ["AGENTS.md"]) == []
    found = collect_instructions(tmp_path, ["AGENTS.md", "CLAUDE.md"])
    assert [i.path for i in found] == ["AGENTS.md"]


def test_files_linked_outside_the_repo_are_not_imported_and_init_says_so(
    repo: Path, tmp_path: Path
):
    outside = tmp_path / "home"
    write_files(outside, {"rules.md": "OUTSIDE-RULES\n", "id_rsa": "OUTSIDE-KEY\n"})
    (repo / "CONVENTIONS.md").symlink_to(outside / "rules.md")
    (repo / "README.md").symlink_to(outside / "id_rsa")
    (repo / "docs" / "linked.md").symlink_to(outside / "rules.md")
    (repo / "CLAUDE.md").write_text("Follow @docs/style.md and @docs/linked.md\n")

    result = run(repo)

    assert result.exit_code == 0, result.output
    value = store(repo).get("project").value
    assert "OUTSIDE" not in value and "Functions stay under 40 lines." in value
    warnings = result.stderr.splitlines()
    assert any("CONVENTIONS.md leads outside the repository" in w for w in warnings)
    assert any("docs/linked.md leads outside the repository" in w for w in warnings)


def test_instruction_text_cannot_close_the_generated_region(repo: Path):
    commit(repo, {"CONVENTIONS.md": f"tricky {END} text\n"}, "docs: tricky")
    assert run(repo).exit_code == 0
    value = store(repo).get("project").value
    assert value.count(END) == 1 and "tricky" in value


# The model hook ----------------------------------------------------------------------------------


def test_refine_rewrites_the_region_and_is_not_called_again_for_an_unchanged_repo(repo: Path):
    calls: list[str] = []

    def refine(text: str) -> str:
        calls.append(text)
        return "## Summary\nA refined summary of the widgets repo."

    paths = Paths.for_repo(repo)
    first = run_init(paths, refine=refine)
    assert first.status == "created" and len(calls) == 1
    assert "A refined summary" in store(repo).get("project").value

    second = run_init(paths, refine=refine)
    assert second.status == "unchanged" and len(calls) == 1


def test_a_failing_refine_falls_back_to_the_plain_scan(repo: Path):
    def refine(text: str) -> str:
        raise RuntimeError("model offline")

    result = run_init(Paths.for_repo(repo), refine=refine)
    assert result.status == "created" and "model offline" in result.warnings[0]
    assert "`pytest`" in store(repo).get("project").value


# Commit style ------------------------------------------------------------------------------------


def test_commit_style_recognises_area_prefixes_and_past_tense():
    style = analyze_subjects(
        ["net/http: fixed a race", "runtime: added tracing", "net/http: updated docs"]
    )
    text = style.describe()
    assert "`area: summary`" in text and "net/http" in text
    assert "past tense" in text


def test_commit_style_of_plain_imperative_subjects():
    style = analyze_subjects(["Add parser", "Fix crash on empty input", "Remove dead code"])
    text = style.describe()
    assert "plain summaries" in text and "imperative" in text and "capital" in text
