"""run_shell and the git tools on real processes and real repositories: streaming, timeouts that
stop the whole process group, capped output, permission prompts, and status/diff/commit."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from support.repos import git, make_repo, use_git_identity

from mcode.tools import Permissions, RepoAccess, Request, ToolError, builtin_tools
from mcode.tools.shell import HEAD_LINES, TAIL_LINES

TOOLS = builtin_tools()


class Asker:
    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Any:
        self.requests.append(request)
        return self.answers.pop(0)


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The tools run git with the inherited environment: give it an identity and no user config."""
    use_git_identity(monkeypatch, tmp_path)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"app.py": "print('hi')\n", "README.md": "# Demo\n"})


def context(repo: Path, mode: str = "auto", ask: Asker | None = None, **kw: Any) -> RepoAccess:
    return RepoAccess(repo, Permissions.from_settings(mode), ask=ask, **kw)


def run(ctx: RepoAccess, tool: str, **args: Any) -> str:
    return TOOLS.run(tool, ctx, args)


def gone(pid: int) -> bool:
    """Dead or a zombie waiting for a reaper that may not exist in a container."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


# run_shell --------------------------------------------------------------------------------------------


def test_shell_streams_lines_in_order_as_they_arrive(repo: Path) -> None:
    seen: list[tuple[float, str]] = []
    ctx = context(repo, on_output=lambda line: seen.append((time.monotonic(), line)))
    started = time.monotonic()
    out = run(ctx, "run_shell", command="echo one; echo two >&2; sleep 0.6; echo three")
    finished = time.monotonic()
    assert [line for _, line in seen] == ["one", "two", "three"]
    assert seen[0][0] - started < finished - started - 0.4  # shown before the command ended
    assert out == "one\ntwo\nthree\nExit code: 0"


def test_shell_runs_in_the_repo_root_and_reports_the_exit_code(repo: Path) -> None:
    out = run(context(repo), "run_shell", command="ls; exit 3")
    assert "app.py" in out and out.endswith("Exit code: 3")


def test_shell_has_no_stdin(repo: Path) -> None:
    started = time.monotonic()
    out = run(context(repo), "run_shell", command="cat; read x; echo done", timeout=20)
    assert time.monotonic() - started < 10
    assert out.endswith("done\nExit code: 0")


def test_shell_timeout_stops_the_whole_process_group(repo: Path) -> None:
    lines: list[str] = []
    ctx = context(repo, on_output=lines.append)
    started = time.monotonic()
    out = run(ctx, "run_shell", command="sleep 100 & echo $!; wait", timeout=1)
    assert time.monotonic() - started < 5
    assert "Timed out after 1 s" in out
    assert "Exit code" not in out
    sleeper = int(lines[0])
    deadline = time.monotonic() + 5
    while not gone(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(sleeper)


def test_an_interrupted_command_is_stopped(repo: Path) -> None:
    pids: list[int] = []

    def interrupt(line: str) -> None:
        pids.append(int(line))
        raise KeyboardInterrupt

    ctx = context(repo, on_output=interrupt)
    with pytest.raises(KeyboardInterrupt):
        run(ctx, "run_shell", command="sleep 100 & echo $!; wait")
    deadline = time.monotonic() + 5
    while not gone(pids[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(pids[0])


def test_shell_does_not_wait_for_background_processes_holding_the_output(repo: Path) -> None:
    started = time.monotonic()
    out = run(context(repo), "run_shell", command="sleep 60 & echo started", timeout=30)
    assert time.monotonic() - started < 8
    assert out.startswith("started\nExit code: 0")
    assert "Background processes" in out


def test_shell_output_is_capped_for_the_model_but_streamed_whole(repo: Path) -> None:
    lines: list[str] = []
    out = run(context(repo, on_output=lines.append), "run_shell", command="seq 1 5000")
    assert len(lines) == 5000
    shown = out.splitlines()
    assert shown[0] == "1" and shown[HEAD_LINES - 1] == str(HEAD_LINES)
    assert shown[-2] == "5000" and shown[-1] == "Exit code: 0"
    assert f"[… {5000 - HEAD_LINES - TAIL_LINES} lines" in out
    assert len(out) < 32_000


def test_shell_caps_output_by_size_too(repo: Path) -> None:
    out = run(
        context(repo), "run_shell", command="for i in $(seq 300); do printf '%0500d\\n' $i; done"
    )
    assert len(out) < 32_000
    assert "omitted" in out and out.splitlines()[-2].endswith("300")


def test_shell_asks_in_ask_and_accept_edits_modes(repo: Path) -> None:
    (repo / "build").mkdir()
    for mode in ("ask", "accept-edits"):
        asker = Asker("no")
        with pytest.raises(ToolError, match=r"the user denied running `rm -rf build`"):
            run(context(repo, mode, asker), "run_shell", command="rm -rf build")
        assert asker.requests[0].kind == "shell"
        assert asker.requests[0].detail == "rm -rf build"
        assert asker.requests[0].always == ("Bash(rm:*)",)
    assert (repo / "build").is_dir()


def test_shell_always_remembers_the_command_prefix(repo: Path) -> None:
    asker = Asker("always")
    ctx = context(repo, "ask", asker)
    run(ctx, "run_shell", command="echo first")
    run(ctx, "run_shell", command="echo second")
    assert len(asker.requests) == 1


def test_an_ask_rule_asks_every_time_and_offers_no_always(repo: Path) -> None:
    asker = Asker("always", "yes")
    perms = Permissions.from_settings("auto", ask=["Bash(echo:*)"])
    ctx = RepoAccess(repo, perms, ask=asker)
    run(ctx, "run_shell", command="echo one")
    run(ctx, "run_shell", command="echo two")
    assert len(asker.requests) == 2
    assert asker.requests[0].always == ()


def test_a_deny_rule_stops_a_command_even_in_auto_mode(repo: Path) -> None:
    (repo / "build").mkdir()
    asker = Asker()
    perms = Permissions.from_settings("auto", deny=["Bash(rm -rf:*)"])
    ctx = RepoAccess(repo, perms, ask=asker)
    with pytest.raises(ToolError, match=r"denied by the permission rule Bash\(rm -rf:\*\)"):
        run(ctx, "run_shell", command="cd . && rm -rf build")
    assert (repo / "build").is_dir() and not asker.requests
    assert "Exit code: 0" in run(ctx, "run_shell", command="rm -r build")


# git --------------------------------------------------------------------------------------------------


def test_git_status_shows_branch_and_changes(repo: Path) -> None:
    ctx = context(repo)
    assert run(ctx, "git_status") == "Working tree clean on main."
    (repo / "app.py").write_text("print('bye')\n")
    (repo / "new.py").write_text("x = 1\n")
    out = run(ctx, "git_status")
    assert out.splitlines() == ["## main", " M app.py", "?? new.py"]


def test_git_diff_unstaged_staged_and_against_a_ref(repo: Path) -> None:
    ctx = context(repo)
    (repo / "app.py").write_text("print('bye')\n")
    out = run(ctx, "git_diff")
    assert "-print('hi')\n+print('bye')" in out
    assert run(ctx, "git_diff", staged=True).startswith("No staged changes")
    git(repo, "add", "app.py")
    assert "+print('bye')" in run(ctx, "git_diff", staged=True)
    assert run(ctx, "git_diff").startswith("No differences")
    assert "+print('bye')" in run(ctx, "git_diff", ref="HEAD", path="app.py")
    with pytest.raises(ToolError, match=r"looks like an option"):
        run(ctx, "git_diff", ref="--output=/tmp/x")


def test_git_diff_leaves_out_secret_files_unless_named(repo: Path) -> None:
    (repo / ".env").write_text("TOKEN=old\n")
    git(repo, "add", ".env")
    git(repo, "commit", "-q", "-m", "env")
    (repo / ".env").write_text("TOKEN=new-secret\n")
    (repo / "app.py").write_text("print('bye')\n")
    asker = Asker("yes")
    ctx = context(repo, "auto", asker)
    out = run(ctx, "git_diff")
    assert "new-secret" not in out and "+print('bye')" in out
    assert "Left out secret files: .env" in out
    assert "new-secret" in run(ctx, "git_diff", path=".env")
    assert asker.requests[0].kind == "secret"


def test_git_commit_paths_commits_only_those(repo: Path) -> None:
    (repo / "app.py").write_text("print('bye')\n")
    (repo / "README.md").write_text("# Changed\n")
    (repo / "new.py").write_text("x = 1\n")
    out = run(context(repo), "git_commit", message="Say bye", paths=["app.py", "new.py"])
    assert "Say bye" in out and "2 files changed" in out
    assert git(repo, "log", "-1", "--format=%s").strip() == "Say bye"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["app.py", "new.py"]
    assert git(repo, "status", "--short").strip() == "M README.md"


def test_git_commit_all_and_staged(repo: Path) -> None:
    ctx = context(repo)
    with pytest.raises(ToolError, match=r"nothing to commit.*nothing is staged"):
        run(ctx, "git_commit", message="empty")
    (repo / "README.md").write_text("# Staged\n")
    git(repo, "add", "README.md")
    (repo / "app.py").write_text("print('unstaged')\n")
    run(ctx, "git_commit", message="Staged only")
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["README.md"]
    run(ctx, "git_commit", message="Everything", all=True)
    assert git(repo, "status", "--short") == ""


def test_git_commit_asks_with_message_and_files_and_no_means_no(repo: Path) -> None:
    (repo / "app.py").write_text("print('bye')\n")
    asker = Asker("no")
    with pytest.raises(ToolError, match=r"the user denied the commit 'Say bye'"):
        run(context(repo, "accept-edits", asker), "git_commit", message="Say bye", all=True)
    request = asker.requests[0]
    assert request.summary == "Commit 1 file: 'Say bye'?"
    assert "Say bye" in request.detail and "M app.py" in request.detail
    assert git(repo, "log", "--format=%s").split("\n")[0] == "initial"
    assert git(repo, "diff", "--cached") == ""  # nothing was staged either


def test_git_commit_of_a_secret_file_asks_even_in_auto_mode(repo: Path) -> None:
    (repo / ".env").write_text("TOKEN=x\n")
    asker = Asker("no")
    with pytest.raises(ToolError, match=r"denied"):
        run(context(repo, "auto", asker), "git_commit", message="oops", all=True)
    assert "WARNING: includes secret files: .env" in asker.requests[0].detail


def test_a_rejecting_hook_is_reported(repo: Path) -> None:
    hook = repo / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\necho 'lint failed: app.py:1'\nexit 1\n")
    hook.chmod(0o755)
    (repo / "app.py").write_text("print('bye')\n")
    with pytest.raises(ToolError, match=r"(?s)nothing was committed.*lint failed: app\.py:1"):
        run(context(repo), "git_commit", message="x", all=True)


def test_git_tools_outside_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ToolError, match=r"not a git repository"):
        run(context(plain), "git_status")
    assert os.listdir(plain) == []
