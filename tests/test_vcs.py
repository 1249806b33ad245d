"""mcode.vcs on real repositories: finding the repository, listing files, status, diffs, history,
blobs and commits, and a repository's own git config and hooks running nothing on a read."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support.repos import git, make_repo, plant_git_traps, use_git_identity
from typer.testing import CliRunner

import mcode.vcs as vcs
from mcode.cli.app import app
from mcode.index.discover import discover
from mcode.index.ignore import IgnoreRules
from mcode.tools import Permissions, RepoAccess, builtin_tools


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Commits made through vcs inherit the environment: an identity, and no user git config."""
    use_git_identity(monkeypatch, tmp_path)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"app.py": "print('hi')\n", "docs/README.md": "# Demo\n"})


# Discovery -------------------------------------------------------------------------------------


def test_the_root_is_the_directory_holding_git_from_anywhere_inside(repo: Path) -> None:
    assert vcs.find_repo_root(repo / "docs") == repo
    assert vcs.toplevel(repo / "docs") == repo


def test_outside_git_the_root_is_where_mcode_started(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / ".git").mkdir(parents=True)  # not a repository: passed over, as git does
    assert vcs.find_repo_root(plain) == plain
    assert vcs.toplevel(plain) is None


def test_an_explicit_repository_must_be_an_existing_directory(tmp_path: Path) -> None:
    with pytest.raises(vcs.RepoNotFoundError, match="does not exist"):
        vcs.find_repo_root(explicit=tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(vcs.RepoNotFoundError, match="not a directory"):
        vcs.find_repo_root(explicit=tmp_path / "file")


def test_a_linked_worktree_is_its_own_root_and_shares_the_common_git_dir(
    repo: Path, tmp_path: Path
) -> None:
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked))
    assert vcs.find_repo_root(linked) == linked
    assert vcs.common_dir(linked) == (repo / ".git").resolve()
    assert vcs.current_branch(linked) == "linked"


# Reading ---------------------------------------------------------------------------------------


def test_files_status_and_changes(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\n")
    (repo / "app.py").write_text("print('bye')\n")
    (repo / "new file.py").write_text("x = 1\n")
    (repo / "debug.log").write_text("noise\n")
    assert sorted(vcs.work_tree_files(repo) or []) == [
        ".gitignore",
        "app.py",
        "docs/README.md",
        "new file.py",
    ]
    assert vcs.untracked_files(repo) == [".gitignore", "new file.py"]
    assert vcs.status_summary(repo).splitlines() == [
        "## main",
        " M app.py",
        "?? .gitignore",
        '?? "new file.py"',
    ]
    assert vcs.changes(repo, "app.py") == [vcs.Change(" M", "app.py")]
    git(repo, "mv", "docs/README.md", "README.md")
    assert vcs.staged_changes(repo) == [vcs.Change("R ", "README.md")]


def test_outside_git_listing_is_none_and_other_reads_say_so(tmp_path: Path) -> None:
    assert vcs.work_tree_files(tmp_path) is None
    assert vcs.current_branch(tmp_path) is None
    assert vcs.recent_subjects(tmp_path, 5) == []
    with pytest.raises(vcs.GitError, match=r"is not a git repository"):
        vcs.status_summary(tmp_path)


def test_diffs_of_the_work_tree_the_index_and_a_revision(repo: Path) -> None:
    (repo / "app.py").write_text("print('bye')\n")
    assert "+print('bye')" in vcs.diff(repo)
    assert vcs.diff(repo, staged=True) == ""
    git(repo, "add", "app.py")
    assert vcs.diff_names(repo, staged=True) == ["app.py"]
    assert "+print('bye')" in vcs.diff(repo, "app.py", rev="HEAD")
    assert vcs.diff_names(repo / "docs", rev="HEAD") == []  # relative to where git runs


def test_a_revision_that_looks_like_an_option_is_refused(repo: Path, tmp_path: Path) -> None:
    written = tmp_path / "written"
    with pytest.raises(vcs.GitError, match="looks like an option"):
        vcs.diff(repo, rev=f"--output={written}")
    with pytest.raises(vcs.GitError, match="looks like an option"):
        vcs.blob(repo, "--output=x", "app.py")
    assert not written.exists()


def test_history_branch_and_blobs(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2090-01-01T00:00:00 +0000")  # after "initial"
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "app.py").write_text("print('side')\n")
    git(repo, "commit", "-qam", "Change the greeting")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge side", "side")
    assert vcs.recent_subjects(repo, 5) == ["Change the greeting", "initial"]
    assert vcs.recent_subjects(repo, 1) == ["Change the greeting"]
    assert vcs.current_branch(repo) == "main"
    (repo / "app.py").write_text("print('uncommitted')\n")
    assert vcs.blob(repo, "HEAD~1", "app.py") == b"print('hi')\n"
    assert vcs.blob(repo, "HEAD", "app.py") == b"print('side')\n"
    assert vcs.blob(repo, "HEAD", "missing.py") is None
    git(repo, "checkout", "-q", "--detach")
    assert vcs.current_branch(repo) == "HEAD"


def test_config_values_come_from_the_users_config(repo: Path, tmp_path: Path) -> None:
    git(repo, "config", "--global", "core.excludesFile", "~/ignores")
    assert vcs.config_value(repo, "core.excludesFile", path=True) == str(Path.home() / "ignores")
    assert vcs.config_value(repo, "mcode.nothing") is None


def test_without_git_reads_fail_in_one_line_and_discovery_walks(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vcs.current_branch(repo)  # GitPython imported while git is still there
    monkeypatch.setenv("PATH", str(repo / "docs"))
    with pytest.raises(vcs.GitError, match=r"^git is not installed$"):
        vcs.status_summary(repo)
    assert vcs.work_tree_files(repo) is None
    assert [f.path for f in discover(repo).files] == ["app.py", "docs/README.md"]


# Committing ------------------------------------------------------------------------------------


def test_commit_paths_all_and_tracked(repo: Path) -> None:
    (repo / "app.py").write_text("print('bye')\n")
    (repo / "new.py").write_text("x = 1\n")
    (repo / "docs/README.md").write_text("# Changed\n")
    done = vcs.commit(repo, "Say bye", "app.py", "new.py", add_all=True)
    assert done.ok and "2 files changed" in done.output
    assert git(repo, "status", "--short") == " M docs/README.md\n"
    assert vcs.commit(repo, "Docs", tracked=True).ok
    refused = vcs.commit(repo, "Nothing")
    assert not refused.ok and "nothing to commit" in refused.output
    assert vcs.recent_subjects(repo, 3) == ["Docs", "Say bye", "initial"]


def test_a_commit_hook_that_hangs_is_stopped(repo: Path) -> None:
    hook = repo / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\nsleep 60\n")
    hook.chmod(0o755)
    (repo / "app.py").write_text("print('bye')\n")
    started = time.monotonic()
    with pytest.raises(vcs.GitError, match=r"git commit took longer than 0.5 s and was stopped"):
        vcs.commit(repo, "x", add_all=True, timeout=0.5)
    assert time.monotonic() - started < 30
    assert vcs.recent_subjects(repo, 1) == ["initial"]


# A repository someone else prepared --------------------------------------------------------------


@pytest.fixture
def trapped(repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    """`repo` with a change of each kind, then its git config and hooks planted with traps."""
    (repo / "notes.txt").write_text("notes\n")
    git(repo, "add", "notes.txt")
    git(repo, "commit", "-qm", "notes")
    (repo / "app.py").write_text("print('bye')\n")
    (repo / "staged.py").write_text("y = 2\n")
    git(repo, "add", "staged.py")
    (repo / "new.py").write_text("x = 1\n")
    marker = tmp_path / "ran"
    plant_git_traps(repo, marker, tmp_path / "elsewhere")
    return repo, marker


def test_the_traps_are_live_for_plain_git(trapped: tuple[Path, Path]) -> None:
    """The control: git run as the user would run it in this work tree runs the planted commands."""
    repo, marker = trapped
    git(repo, f"--work-tree={repo}", "status", "--", "app.py")  # a `*.txt` file breaks `process`
    git(repo, f"--work-tree={repo}", "diff", "--", "app.py")
    roles = {line.split()[0] for line in marker.read_text().splitlines()}
    assert {"fsmonitor", "post-index-change", "clean", "command"} <= roles


def test_reads_run_nothing_the_repository_config_names(trapped: tuple[Path, Path]) -> None:
    repo, marker = trapped
    assert "new.py" in (vcs.work_tree_files(repo) or [])
    assert "outside.txt" not in vcs.status_summary(repo)  # core.worktree moved nothing
    assert vcs.changes(repo) == [
        vcs.Change(" M", "app.py"),
        vcs.Change("A ", "staged.py"),
        vcs.Change("??", "new.py"),
    ]
    assert vcs.staged_changes(repo) == [vcs.Change("A ", "staged.py")]
    assert "+print('bye')" in vcs.diff(repo)
    assert "+y = 2" in vcs.diff(repo, staged=True)
    assert "+print('bye')" in vcs.diff(repo, rev="HEAD~1")
    assert vcs.diff_names(repo, rev="HEAD") == ["app.py", "staged.py"]
    assert vcs.untracked_files(repo) == ["new.py"]
    assert vcs.recent_subjects(repo, 5) == ["notes", "initial"]
    assert vcs.current_branch(repo) == "main"
    assert vcs.blob(repo, "HEAD", "notes.txt") == b"notes\n"
    assert vcs.find_repo_root(repo / "docs") == repo
    assert not marker.exists()


def test_the_git_tools_and_mcode_index_run_nothing_the_repository_config_names(
    trapped: tuple[Path, Path],
) -> None:
    repo, marker = trapped
    tools = builtin_tools()
    ctx = RepoAccess(repo, Permissions.from_settings("auto"))
    assert "?? new.py" in tools.run("git_status", ctx, {})
    assert "+print('bye')" in tools.run("git_diff", ctx, {})
    assert "+y = 2" in tools.run("git_diff", ctx, {"staged": True, "path": "staged.py"})
    IgnoreRules.load(repo)  # what `mcode watch` reads
    result = CliRunner().invoke(app, ["index", "--repo", str(repo), "--no-embed"])
    assert result.exit_code == 0, result.output
    assert not marker.exists()


def test_a_filter_the_user_also_defines_keeps_the_users_command(repo: Path, tmp_path: Path) -> None:
    users = tmp_path / "users-filter-ran"
    git(repo, "config", "--global", "filter.trap.clean", f"sh -c 'touch {users}; cat'")
    marker = tmp_path / "ran"
    plant_git_traps(repo, marker, tmp_path / "elsewhere")
    (repo / "app.py").write_text("print('bye')\n")
    assert "+print('bye')" in vcs.diff(repo)
    assert users.exists()
    assert not marker.exists()


def test_a_filter_that_cannot_be_turned_off_stops_the_read(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    git(repo, "config", "filter.a=b.clean", f"touch {marker}")
    (repo / ".git/info/attributes").write_text("* filter=a=b\n")
    with pytest.raises(vcs.GitError, match=r"filter mcode cannot turn off: filter\.a=b\.clean"):
        vcs.status_summary(repo)
    assert not marker.exists()


def test_an_approved_commit_runs_the_repositorys_hooks_but_never_fsmonitor(
    repo: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    plant_git_traps(repo, marker, tmp_path / "elsewhere")
    for key in ("filter.trap.clean", "filter.trap.smudge", "filter.trap.required"):
        git(repo, "config", "--unset", key)
    git(repo, "config", "--unset", "filter.proc.process")
    (repo / "app.py").write_text("print('bye')\n")
    assert vcs.commit(repo, "Say bye", add_all=True).ok
    roles = [line.split()[0] for line in marker.read_text().splitlines()]
    assert [r for r in roles if r != "post-index-change"] == [
        "pre-commit",
        "commit-msg",
        "post-commit",
    ]
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["app.py"]


# Import discipline -----------------------------------------------------------------------------


def test_only_vcs_imports_gitpython() -> None:
    src = Path(__file__).resolve().parents[1] / "src" / "mcode"
    importers = sorted(
        str(path.relative_to(src))
        for path in src.rglob("*.py")
        if any(
            line.strip().startswith(("import git", "from git ", "from git."))
            for line in path.read_text().splitlines()
        )
    )
    assert importers == ["vcs/command.py"]
    vcs_code = "".join(path.read_text() for path in (src / "vcs").glob("*.py"))
    assert "import subprocess" not in vcs_code
