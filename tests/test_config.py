"""Settings precedence and the files mcode creates in a user's repository."""

from __future__ import annotations

from pathlib import Path

from support.repos import git, make_repo

from mcode.config import MEMORY_DIRNAME, Paths, load_settings
from mcode.config.paths import MEMORY_GITIGNORE
from mcode.memory import BlockStore

EXAMPLE = Path(__file__).resolve().parents[1] / ".agentmemory.example" / ".gitignore"


def test_the_example_gitignore_is_the_one_mcode_writes() -> None:
    assert EXAMPLE.read_text() == MEMORY_GITIGNORE


def test_writing_memory_in_a_fresh_repo_leaves_git_status_clean_but_the_block(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo", {"a.py": "x = 1\n"})
    store = BlockStore.for_paths(Paths.for_repo(repo))
    store.set_value("project", "Run tests with pytest.", actor="user", reason="test")
    status = git(repo, "status", "--porcelain", "--untracked-files=all").split("\n")
    untracked = sorted(line[3:] for line in status if line)
    assert f"{MEMORY_DIRNAME}/blocks/project.md" in untracked
    assert not [p for p in untracked if p.endswith(".lock")]


def test_flags_beat_environment_beat_project_beat_user(tmp_path: Path) -> None:
    paths = Paths.for_repo(tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    paths.user_config.mkdir(parents=True)
    paths.user_config_file.write_text(
        'model = "user/m"\nweak_model = "user/w"\nembedding_model = "none"\n'
    )
    paths.memory.mkdir()
    # The user's own provider: applies without the user trusting the file.
    paths.project_config.write_text('model = "user/project-m"\nweak_model = "user/project-w"\n')
    settings = load_settings(paths, env={"MCODE_MODEL": "env/m"}, overrides={"model": None})
    assert (settings.model, settings.weak_model, settings.embedding_model) == (
        "env/m",
        "user/project-w",
        "none",
    )
    assert (
        load_settings(paths, env={"MCODE_MODEL": "env/m"}, overrides={"model": "flag/m"}).model
        == "flag/m"
    )
