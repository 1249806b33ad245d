"""`mcode review` on real repositories, the model behind litellm's HTTP path (the scripted server):
what it reports in each format, its exit codes, and how it behaves when the model is missing,
rate-limited or answers nonsense. The command runs in-process (litellm is imported once)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.cli import run_in_process
from support.llm_server import ScriptedLLMServer
from support.repos import (
    GIT_ENV,
    git,
    make_repo,
    mcode_env,
    spawn_mcode,
    terminal_env,
    use_git_identity,
    write_files,
)
from support.review import CONVENTION, PROJECT, lessons, report

from mcode.config import Paths, load_settings
from mcode.review.commit_check import commit_check
from mcode.tools import Permissions, RepoAccess, ToolError, builtin_tools

BROKEN = "def add(a, b):\n    print(a, b)\n    return a + b\n"


@dataclass
class World:
    repo: Path
    env: dict[str, str]
    server: ScriptedLLMServer

    def review(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return run_in_process(["review", *args], env or self.env, cwd=self.repo)

    def stage(self, files: dict[str, str]) -> None:
        write_files(self.repo, files)
        git(self.repo, "add", "--", *files)

    def answer(self, *findings: dict[str, Any]) -> None:
        self.server.reply_tool_calls(report(*findings))

    def without_model(self) -> dict[str, str]:
        return {k: v for k, v in self.env.items() if k not in ("MCODE_MODEL", "OPENAI_API_KEY")}


@pytest.fixture
def world(tmp_path: Path, llm_server: ScriptedLLMServer) -> World:
    repo = make_repo(
        tmp_path / "project",
        {
            ".agentmemory/blocks/project.md": PROJECT,
            ".agentmemory/blocks/lessons.md": lessons("warning"),
            "lib/calc.py": "def add(a, b):\n    return a + b\n",
        },
    )
    env = mcode_env(
        tmp_path / "home",
        MCODE_MODEL="openai/mock-model",
        MCODE_API_BASE=llm_server.url,
        MCODE_OLLAMA_URL="http://127.0.0.1:9",  # nothing to fall back on when no model is set
        OPENAI_API_KEY="sk-test",
    )
    return World(repo, env, llm_server)


def error_on_line_2(message: str = "print() in library code") -> dict[str, Any]:
    return {"line": 2, "severity": "error", "quote": CONVENTION, "message": message}


def test_text_groups_findings_by_file_with_line_memory_snippet_and_cost(world: World) -> None:
    world.stage({"lib/calc.py": BROKEN, "lib/notes.py": "x = 1  # TODO: remove\n"})
    for _ in range(2):  # files go in parallel: lib/notes.py has no line 2, so it gets nothing
        world.answer({**error_on_line_2(), "suggestion": "    log.debug('%s %s', a, b)"})
    result = world.review()
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    calc = lines.index("lib/calc.py")
    number, severity, message = lines[calc + 1].split(None, 2)
    assert (number, severity) == ("2", "error")
    assert message.startswith("print() in library code  [") and message.endswith("]")
    assert lines[calc + 2].strip() == "| print(a, b)"
    assert lines[calc + 3].strip() == f"memory: {CONVENTION}"
    assert lines[calc + 4].strip() == "suggestion: log.debug('%s %s', a, b)"
    notes = lines.index("lib/notes.py")
    assert "warning Open an issue instead of leaving a TODO." in lines[notes + 1]
    assert lines[-1].startswith("2 findings (1 error, 1 warning) · 36 tokens · ")
    assert lines[-1].endswith(" s · openai/mock-model")
    assert result.stderr == ""
    assert len(world.server.requests) == 2


def test_json_reports_the_outcome_findings_and_what_the_run_cost(world: World) -> None:
    world.stage({"lib/calc.py": BROKEN})
    world.answer(error_on_line_2())
    report = json.loads(world.review("--json").stdout)
    assert report["outcome"] == "findings"
    assert report["model"] == {"name": "openai/mock-model", "status": "reviewed"}
    (finding,) = report["findings"]
    assert {k: finding[k] for k in ("path", "line", "severity", "source", "basis", "snippet")} == {
        "path": "lib/calc.py",
        "line": 2,
        "severity": "error",
        "source": "model",
        "basis": CONVENTION,
        "snippet": "print(a, b)",
    }
    assert len(finding["id"]) == 10
    assert (report["calls"], report["tokens"], report["cached"]) == (1, 18, 0)


def test_sarif_has_every_field_the_2_1_0_schema_requires(world: World) -> None:
    world.stage({"lib/calc.py": BROKEN + "# TODO: tidy\n"})
    world.answer(error_on_line_2())
    result = world.review("--format", "sarif")
    assert result.returncode == 1
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0" and "sarif-2.1.0" in sarif["$schema"]
    (run,) = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "mcode-review"
    rule_ids = {rule["id"] for rule in driver["rules"]}
    assert rule_ids == {"memory", "lessons/no-todo"}
    assert len(run["results"]) == 2
    for result_ in run["results"]:
        assert result_["message"]["text"]
        assert result_["level"] in ("error", "warning", "note", "none")
        assert result_["ruleId"] in rule_ids
        (location,) = result_["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "lib/calc.py"
        assert physical["region"]["startLine"] >= 1
    levels = sorted(
        (r["level"], r["locations"][0]["physicalLocation"]["region"]["startLine"])
        for r in run["results"]
    )
    assert levels == [("error", 2), ("warning", 4)]


def test_github_format_is_one_workflow_command_per_finding(world: World) -> None:
    world.stage({"lib/calc.py": BROKEN})
    world.answer(error_on_line_2("100% print, see: logging"))
    result = world.review("--format", "github")
    first = result.stdout.splitlines()[0]
    assert first.startswith("::error file=lib/calc.py,line=2,title=mcode review%3A memory::")
    assert "100%25 print, see: logging" in first
    assert result.returncode == 1


def test_exit_codes_follow_fail_on_and_bad_usage_is_2(world: World, tmp_path: Path) -> None:
    world.stage({"lib/calc.py": "def add(a, b):\n    return a + b  # TODO\n"})
    world.answer()
    warned = world.review()
    assert warned.returncode == 0, warned.stderr  # a warning does not fail by default
    assert "1 finding (1 warning)" in warned.stdout
    assert world.review("--fail-on", "warning").returncode == 1
    assert world.review("--fail-on", "note").returncode == 1
    assert len(world.server.requests) == 1  # the same change: answered from the cache
    for args, words in [
        (["--format", "xml"], "unknown --format 'xml'"),
        (["--fail-on", "fatal"], "unknown --fail-on 'fatal'"),
        (["--base", "main", "--range", "a..b"], "give --base or --range, not both"),
        (["--range", "main"], "--range 'main' must be A..B"),
        (["--base", "no-such-branch"], "no-such-branch"),
        (["--rules-only", "--require-model"], "--rules-only runs no model"),
        (["--repo", str(tmp_path)], "is not a git repository"),
    ]:
        bad = world.review(*args)
        assert bad.returncode == 2, (args, bad.stderr)
        assert len(bad.stderr.splitlines()) == 1 and words in bad.stderr
        assert "Traceback" not in bad.stderr


def test_an_empty_change_is_skipped_in_one_line(world: World) -> None:
    result = world.review("--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["outcome"] == "skipped"
    assert result.stderr == "mcode review: nothing to review: the staged changes add no lines\n"
    assert world.server.requests == []


def test_without_a_model_the_rules_decide_unless_the_model_is_required(world: World) -> None:
    world.stage({"lib/calc.py": BROKEN})
    plain = world.review(env=world.without_model())
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[-1].startswith("no findings (model review skipped)")
    assert plain.stderr.startswith("mcode review: model review skipped: no model configured")
    assert len(plain.stderr.splitlines()) == 1
    assert world.review("--require-model", env=world.without_model()).returncode == 1
    keyless = {**world.env, "OPENAI_API_KEY": ""}
    no_key = world.review("--require-model", env=keyless)
    assert no_key.returncode == 1
    assert "no key for openai/mock-model: set OPENAI_API_KEY" in no_key.stderr
    assert world.server.requests == []
    world.stage({"lib/calc.py": BROKEN + "# TODO\n"})
    ruled = world.review("--fail-on", "warning", env=world.without_model())
    assert ruled.returncode == 1 and "Open an issue" in ruled.stdout


def test_a_malformed_answer_is_asked_again_once(world: World) -> None:
    world.stage({"lib/calc.py": BROKEN})
    world.server.reply_text("Looks fine to me!")
    world.answer(error_on_line_2())
    result = world.review()
    assert result.returncode == 1 and "print() in library code" in result.stdout
    retry = world.server.requests[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "Looks fine to me!"}
    assert "could not be used: no report_findings call and no JSON object" in retry[-1]["content"]


def test_twice_malformed_is_one_line_never_a_clean_result(world: World) -> None:
    world.stage({"lib/calc.py": BROKEN})
    world.server.reply_tool_calls([("report_findings", {"findings": [{"line": 2}]})])
    world.server.reply_tool_calls([("report_findings", {"issues": []})])
    result = world.review("--json")
    assert result.returncode == 0  # advisory: the team is not blocked by the model's mistakes
    assert json.loads(result.stdout)["outcome"] == "error"
    assert result.stderr.splitlines() == [
        "mcode review: model review failed for lib/calc.py: the answer was malformed twice "
        '(the answer must be an object {"findings": [...]})'
    ]
    assert world.server.requests[1]["messages"][-2]["role"] == "tool"  # the bad call answered
    world.server.reply_text("{}")
    world.server.reply_text("[]")
    assert world.review("--require-model").returncode == 1  # nothing was cached


def test_a_rate_limit_is_waited_out_and_never_reads_as_clean(world: World) -> None:
    world.stage({"lib/calc.py": BROKEN})
    world.server.reply_error(429, "slow down", headers={"Retry-After": "0"})
    world.answer(error_on_line_2())
    result = world.review()
    assert result.returncode == 1 and "print() in library code" in result.stdout
    assert len(world.server.requests) == 2

    world.stage({"lib/calc.py": BROKEN + "x = 1\n"})
    for _ in range(3):  # the first try and both retries
        world.server.reply_error(429, "slow down", headers={"Retry-After": "0"})
    limited = world.review("--json")
    assert limited.returncode == 0
    assert json.loads(limited.stdout)["outcome"] == "skipped"
    assert "model review skipped: rate limited by openai/mock-model" in limited.stderr
    assert len(limited.stderr.splitlines()) == 1


def test_the_cache_is_keyed_by_change_memory_and_model(world: World) -> None:
    world.stage({"lib/calc.py": BROKEN})
    world.answer(error_on_line_2())
    assert world.review().returncode == 1
    cached = json.loads(world.review("--json").stdout)
    assert (cached["model"]["status"], cached["calls"], len(cached["findings"])) == (
        "cached",
        0,
        1,
    )
    block = world.repo / ".agentmemory/blocks/lessons.md"
    block.write_text(block.read_text() + "- Never log secrets.\n")
    world.answer()
    assert world.review().returncode == 0  # the lessons changed: reviewed afresh
    assert len(world.server.requests) == 2
    world.answer()
    other = {**world.env, "MCODE_REVIEW_MODEL": "openai/other-model"}
    assert world.review(env=other).returncode == 0
    assert world.server.requests[-1]["model"] == "other-model"


def test_findings_must_point_at_added_lines_and_only_memory_can_block(world: World) -> None:
    world.stage({"lib/calc.py": BROKEN})
    world.answer(
        {"line": 1, "severity": "error", "quote": CONVENTION, "message": "not changed here"},
        {"line": 2, "severity": "error", "quote": "Always write Rust.", "message": "made up"},
        {"line": 2, "severity": "error", "quote": "print", "message": "one word proves nothing"},
    )
    result = world.review("--json")
    report = json.loads(result.stdout)
    assert [(f["line"], f["severity"]) for f in report["findings"]] == [(2, "warning")] * 2
    assert report["outside_the_change"] == 1
    assert result.returncode == 0


def test_max_tokens_leaves_files_out_and_says_so(world: World) -> None:
    world.stage({"lib/calc.py": BROKEN})
    result = world.review("--max-tokens", "50")
    assert result.returncode == 0
    assert "1 files left out of the model review: --max-tokens 50 reached" in result.stderr
    assert world.server.requests == []


def test_base_range_and_a_pre_push_range_review_commits(world: World) -> None:
    repo = world.repo
    git(repo, "checkout", "-q", "-b", "feature")
    world.stage({"lib/todo.py": "# TODO one\n"})
    git(repo, "commit", "-q", "-m", "one")
    world.stage({"lib/more.py": "# TODO two\n"})
    git(repo, "commit", "-q", "-m", "two")
    paths = lambda result: [f["path"] for f in json.loads(result.stdout)["findings"]]  # noqa: E731
    assert paths(world.review("--rules-only", "--json", "--base", "main")) == [
        "lib/more.py",
        "lib/todo.py",
    ]
    assert paths(world.review("--rules-only", "--json", "--range", "HEAD~1..HEAD")) == [
        "lib/more.py"
    ]
    pushed = {**world.env, "PRE_COMMIT_FROM_REF": "HEAD~2", "PRE_COMMIT_TO_REF": "HEAD~1"}
    assert paths(world.review("--rules-only", "--json", env=pushed)) == ["lib/todo.py"]
    assert world.server.requests == []


def test_dismissed_findings_stay_dismissed_and_repeated_ones_become_a_lesson(
    world: World,
) -> None:
    world.stage({f"lib/m{i}.py": f"x = {i}  # TODO\n" for i in range(3)})
    first = json.loads(world.review("--rules-only", "--json").stdout)
    ids = [f["id"] for f in first["findings"]]
    assert len(set(ids)) == 3

    done = world.review("--dismiss", ids[0][:6], "--reason", "tracked in the issue tracker")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"dismissed {ids[0]} (lib/m0.py:1)")
    again = json.loads(world.review("--rules-only", "--json").stdout)
    assert [f["id"] for f in again["findings"]] == ids[1:] and again["dismissed"] == 1
    record = (world.repo / ".agentmemory/review/dismissed.jsonl").read_text().splitlines()[0]
    assert json.loads(record)["reason"] == "tracked in the issue tracker"

    world.review("--dismiss", ids[1])
    third = world.review("--dismiss", ids[2], "--reason", "generated code")
    assert "added a line to the lessons block (undo: mcode memory revert lessons" in third.stdout
    block = (world.repo / ".agentmemory/blocks/lessons.md").read_text()
    assert "Review rule lessons/no-todo was dismissed 3 times as a false positive" in block
    assert "tracked in the issue tracker; generated code" in block
    assert "id: no-todo" in block  # the rules kept in the front matter
    entry = third.stdout.rsplit(" ", 1)[1].rstrip(")\n")
    log = run_in_process(["memory", "log", "lessons", "--json"], world.env, cwd=world.repo)
    assert json.loads(log.stdout)["entries"][-1]["actor"] == "review"
    revert = run_in_process(["memory", "revert", "lessons", entry], world.env, cwd=world.repo)
    assert revert.returncode == 0, revert.stderr
    assert "dismissed 3 times" not in (world.repo / ".agentmemory/blocks/lessons.md").read_text()
    unknown = world.review("--dismiss", "ffffffffff")
    assert (
        unknown.returncode == 2 and "no finding 'ffffffffff' in the last review" in unknown.stderr
    )


def test_hook_install_keeps_an_existing_hook_running_first(world: World, tmp_path: Path) -> None:
    repo = world.repo
    hooks = repo / ".git" / "hooks"
    marker = tmp_path / "earlier-hook-ran"
    earlier = f'#!/bin/sh\necho ran >> "{marker}"\nexit "${{EARLIER_EXIT:-0}}"\n'
    (hooks / "pre-commit").write_text(earlier)
    (hooks / "pre-commit").chmod(0o755)
    installed = run_in_process(["hook", "install"], world.env, cwd=repo)
    assert installed.returncode == 0, installed.stderr
    assert "now as pre-commit.before-mcode" in installed.stdout
    assert (hooks / "pre-commit.before-mcode").read_text() == earlier

    env = {**world.without_model(), **GIT_ENV}

    def commit() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "commit", "-qm", "x"],
            cwd=repo,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=300,
        )

    world.stage({"lib/calc.py": "def add(a, b):\n    return a + b  # TODO\n"})
    block = repo / ".agentmemory/blocks/lessons.md"
    block.write_text(lessons("error"))
    git(repo, "add", "--", str(block))
    blocked = commit()
    assert blocked.returncode == 1, blocked.stdout
    assert "Open an issue instead of leaving a TODO." in blocked.stdout
    assert marker.read_text() == "ran\n"
    assert git(repo, "log", "--format=%s") == "initial\n"

    env["EARLIER_EXIT"] = "3"
    env["SKIP"] = "mcode-review"
    stopped = commit()  # the earlier hook still stops a commit, SKIP or not
    assert stopped.returncode != 0 and "skipped (SKIP)" not in stopped.stdout
    env["EARLIER_EXIT"] = "0"
    skipped = commit()
    assert skipped.returncode == 0 and "mcode-review: skipped (SKIP)" in skipped.stdout
    assert git(repo, "log", "--format=%s") == "x\ninitial\n"
    assert marker.read_text() == "ran\n" * 3

    assert run_in_process(["hook", "install"], world.env, cwd=repo).returncode == 0
    assert (hooks / "pre-commit.before-mcode").read_text() == earlier  # not moved twice
    removed = run_in_process(["hook", "uninstall"], world.env, cwd=repo)
    assert removed.returncode == 0, removed.stderr
    assert (hooks / "pre-commit").read_text() == earlier
    assert not (hooks / "pre-commit.before-mcode").exists()
    again = run_in_process(["hook", "uninstall"], world.env, cwd=repo)
    assert again.returncode == 1 and "is not mcode's hook; left as it is" in again.stderr


def test_the_agents_commit_is_reviewed_first_and_the_findings_go_back_to_it(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_git_identity(monkeypatch, tmp_path)
    settings = load_settings(Paths.for_repo(world.repo, world.env), env=world.env)
    access = RepoAccess(
        world.repo, Permissions.from_settings("auto"), commit_check=commit_check(settings)
    )
    write_files(world.repo, {"lib/calc.py": BROKEN, "lib/new.py": "y = 2  # TODO\n"})
    for _ in range(2):  # both files go to the model; lib/new.py has no line 2
        world.answer(error_on_line_2())
    with pytest.raises(ToolError) as refused:
        builtin_tools().run("git_commit", access, {"message": "Add prints", "all": True})
    text = str(refused.value)
    assert "the review of this commit found problems; nothing was committed" in text
    assert "print() in library code" in text and "Open an issue instead" in text
    assert "mcode review --dismiss ID" in text
    assert git(world.repo, "log", "--format=%s") == "initial\n"

    write_files(world.repo, {"lib/calc.py": "def add(a, b):\n    return a + b  # sum\n"})
    world.answer()  # lib/calc.py changed; lib/new.py comes from the cache
    done = builtin_tools().run("git_commit", access, {"message": "Add new", "all": True})
    assert "The review's findings (none blocks a commit)" in done
    assert "Open an issue instead of leaving a TODO." in done
    assert git(world.repo, "log", "--format=%s") == "Add new\ninitial\n"
    assert len(world.server.requests) == 3


def test_the_model_sees_the_changed_symbols_uses_tests_and_definitions(world: World) -> None:
    write_files(
        world.repo,
        {
            "lib/calc.py": "def add(a, b):\n    return a + b\n\n\ndef double(x):\n    return x * 2\n",
            "lib/util.py": "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n",
            "tests/test_calc.py": "from lib.calc import add\n\n\ndef test_add():\n"
            "    assert add(1, 2) == 3\n",
            "app.py": "from lib.calc import add\nlogin(password='correct-horse-battery', n=add(2, 3))\n",
        },
    )
    git(world.repo, "add", "lib", "tests", "app.py")
    git(world.repo, "commit", "-qm", "more")
    indexed = run_in_process(["index"], {**world.env, "MCODE_EMBEDDING_MODEL": "none"}, world.repo)
    assert indexed.returncode == 0, indexed.stderr
    world.stage(
        {
            "lib/calc.py": "def add(a, b):\n    return clamp(a + b, 0, 100)\n\n\n"
            "def double(x):\n    return x * 2\n"
        }
    )
    world.answer()
    assert world.review().returncode == 0
    prompt = world.server.requests[0]["messages"][1]["content"]
    context = prompt.split("# Code around the change", 1)[1]
    assert "Symbols this hunk changes in lib/calc.py: add (line 1)\n" in context  # not double
    uses = context.split("Where `add` is used (tests first):\n", 1)[1].splitlines()
    assert uses[:3] == [
        "  tests/test_calc.py:1: [test] from lib.calc import add",
        "  tests/test_calc.py:5: [test] assert add(1, 2) == 3",
        "  app.py:1: from lib.calc import add",
    ]
    assert uses[3].startswith("  app.py:2: login(password='[REDACTED")
    assert "Definitions the added lines use:\n  lib/util.py:1: def clamp(x, lo, hi):" in context
    assert "correct-horse-battery" not in prompt


def test_a_file_too_long_for_one_request_goes_in_parts_each_cached(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mcode.review.run.MAX_REQUEST_CHARS", 200)
    body = "".join(f"x{i} = {i}\n" for i in range(40))
    write_files(world.repo, {"lib/big.py": body})
    git(world.repo, "add", "lib/big.py")
    git(world.repo, "commit", "-qm", "big")
    world.stage({"lib/big.py": body.replace("x1 = 1\n", "x1 = 'one'\n").replace("x38 = 38", "y")})
    for _ in range(2):
        world.answer()
    assert world.review().returncode == 0
    hunks = [r["messages"][1]["content"].count("@@ lines") for r in world.server.requests]
    assert hunks == [1, 1]
    again = json.loads(world.review("--json").stdout)
    assert (again["model"]["status"], again["cached"]) == ("cached", 2)


def test_severities_are_coloured_on_a_terminal_and_plain_in_a_pipe(
    world: World, tmp_path: Path
) -> None:
    pexpect = pytest.importorskip("pexpect")
    world.stage({"lib/calc.py": "def add(a, b):\n    return a + b  # TODO\n"})
    env = terminal_env(tmp_path / "tty-home")
    child = spawn_mcode(["review", "--rules-only"], world.repo, env, timeout=120)
    child.expect(pexpect.EOF)
    child.close()
    assert "\x1b[33m\x1b[1mwarning" in child.before  # yellow, bold
    assert "1 finding (1 warning)" in child.before
    piped = world.review("--rules-only")
    assert "warning Open an issue" in piped.stdout and "\x1b[" not in piped.stdout
