"""Review rules: lessons a memory block turns into checks that hold on every later commit.

A block carries them in its front matter, beside its metadata, as a list under `rules`:

```
---
description: Mistakes made in this repository and how to avoid them …
limit: 4000
rules:
- id: no-print
  pattern: '^\\s*print\\('
  paths: ['src/**/*.py']
  message: Library code logs through `logging`; print() is for the command line.
  severity: error
---
```

- `id`: unique within the block, a-z, 0-9, `_`, `-` (it names the rule in findings and dismissals);
- `pattern`: a Python regular expression searched in each line the change adds;
- `paths`: optional gitignore-style globs (`*.py` anywhere, `src/**/*.py` from the root); none: every
  file;
- `message`: what is wrong and what to do instead;
- `severity`: `error` (the default: a rule exists because it matters), `warning` or `note`.

`mcode review` applies them to a diff without a model (`mcode.review.rules`). They are front matter,
so they round-trip like any other key mcode does not read itself, count against no block limit, and
every change to them is in the block's history.

A block is committed by whoever wrote the repository, so a rule is untrusted input: its pattern could
be built to backtrack for minutes on a crafted line (`(a+)+$`, or `\\s*\\s*\\s*x`, which is
polynomial and needs no nesting). Two guards: `check_pattern` refuses what Python's `re` is known to
blow up on (backreferences, a repetition of something that itself repeats or alternates) and
overlong patterns, with a message saying what to write instead; and the review runs the patterns in
a child process with a time limit per rule, so that what the screen cannot see costs seconds, not a
hung commit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RULES_KEY = "rules"
SEVERITIES = ("error", "warning", "note")  # most severe first
DEFAULT_SEVERITY = "error"
RULE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_PATTERN_CHARS = 300
MAX_GLOBS = 20
MAX_GLOB_CHARS = 200
MAX_MESSAGE_CHARS = 500
_FIELDS = ("id", "pattern", "paths", "message", "severity")
_NESTED = (
    ", which can take exponential time; write it without nesting, or make the inner "
    "repetition possessive (`a++`)"
)


class RuleError(ValueError):
    """A rule cannot be used; the message says which and why, fit for a user or a model."""


@dataclass(frozen=True, slots=True)
class ReviewRule:
    """One checked rule. `block` is the label of the block that carries it."""

    id: str
    pattern: str
    message: str
    severity: str = DEFAULT_SEVERITY
    paths: tuple[str, ...] = ()
    block: str = ""

    def to_front_matter(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "pattern": self.pattern}
        if self.paths:
            data["paths"] = list(self.paths)
        data["message"] = self.message
        data["severity"] = self.severity
        return data


def check_pattern(pattern: str) -> None:
    """RuleError when `pattern` is not a regular expression mcode will run on a diff."""
    if not pattern:
        raise RuleError("pattern must not be empty")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise RuleError(f"pattern is {len(pattern)} characters; at most {MAX_PATTERN_CHARS}")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise RuleError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
    problem = _backtracking_problem(pattern)
    if problem:
        raise RuleError(f"pattern {pattern!r} {problem}")


def _backtracking_problem(pattern: str) -> str | None:
    """The shape in `pattern` known to backtrack catastrophically, or None. Reads `re`'s own parse
    (a private module, stable across 3.11-3.13); should it ever be missing, the child process's
    time limit still bounds the cost."""
    try:
        from re import _constants as c
        from re import _parser
    except ImportError:
        return None
    repeats = {c.MAX_REPEAT, c.MIN_REPEAT}

    def walk(items: Any, inside_repeat: bool) -> str | None:
        for op, av in items:
            if op in (c.GROUPREF, c.GROUPREF_EXISTS):
                return (
                    "uses a backreference, which can take exponential time; match the text itself"
                )
            if op in repeats:
                _, high, body = av
                varies = high > 1
                if inside_repeat and varies:
                    return f"repeats something that itself repeats{_NESTED}"
                found = walk(body, inside_repeat or varies)
            elif op == c.POSSESSIVE_REPEAT:
                found = walk(av[2], inside_repeat)
            elif op == c.BRANCH:
                if inside_repeat:
                    return f"repeats an alternation{_NESTED}"
                found = next((p for b in av[1] if (p := walk(b, False))), None)
            elif op == c.SUBPATTERN:
                found = walk(av[3], inside_repeat)
            elif op in (c.ASSERT, c.ASSERT_NOT):
                found = walk(av[1], inside_repeat)
            elif op == c.ATOMIC_GROUP:
                found = walk(av, inside_repeat)
            else:
                found = None
            if found:
                return found
        return None

    return walk(_parser.parse(pattern), False)


def make_rule(data: Mapping[str, Any], block: str = "") -> ReviewRule:
    """A rule from its front matter form; RuleError saying what is wrong."""
    if not isinstance(data, Mapping):
        raise RuleError("each rule must be a table of id, pattern, paths, message, severity")
    rule_id = data.get("id")
    if not isinstance(rule_id, str) or not RULE_ID.fullmatch(rule_id):
        raise RuleError(f"rule id {rule_id!r} must be 1 to 64 characters of a-z, 0-9, '_' and '-'")
    unknown = sorted(str(k) for k in data if k not in _FIELDS)
    if unknown:
        raise RuleError(f"rule {rule_id!r} has unknown keys: {', '.join(unknown)}")
    pattern = data.get("pattern")
    if not isinstance(pattern, str):
        raise RuleError(f"rule {rule_id!r}: pattern must be text")
    try:
        check_pattern(pattern)
    except RuleError as exc:
        raise RuleError(f"rule {rule_id!r}: {exc}") from None
    message = data.get("message")
    if not isinstance(message, str) or not message.strip():
        raise RuleError(f"rule {rule_id!r}: message must be non-empty text")
    if len(message) > MAX_MESSAGE_CHARS:
        raise RuleError(f"rule {rule_id!r}: message is longer than {MAX_MESSAGE_CHARS} characters")
    severity = data.get("severity", DEFAULT_SEVERITY)
    if severity not in SEVERITIES:
        raise RuleError(f"rule {rule_id!r}: severity must be one of {', '.join(SEVERITIES)}")
    return ReviewRule(
        rule_id, pattern, " ".join(message.split()), severity, _globs(rule_id, data), block
    )


def _globs(rule_id: str, data: Mapping[str, Any]) -> tuple[str, ...]:
    paths = data.get("paths") or []
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not all(isinstance(p, str) and p.strip() for p in paths):
        raise RuleError(f"rule {rule_id!r}: paths must be a list of globs")
    if len(paths) > MAX_GLOBS or any(len(p) > MAX_GLOB_CHARS for p in paths):
        raise RuleError(
            f"rule {rule_id!r}: at most {MAX_GLOBS} globs of {MAX_GLOB_CHARS} characters each"
        )
    return tuple(p.strip() for p in paths)


def block_rules(label: str, extra: Mapping[str, Any]) -> tuple[list[ReviewRule], list[str]]:
    """The usable rules of a block's front matter, and one line per rule that is not (a broken
    rule is skipped, never the review: a team's commits must not stop on one bad line)."""
    raw = extra.get(RULES_KEY)
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        return [], [f"memory block {label!r}: `{RULES_KEY}` must be a list of rules; ignored"]
    rules: list[ReviewRule] = []
    problems: list[str] = []
    seen: set[str] = set()
    for data in raw:
        try:
            rule = make_rule(data, label)
        except RuleError as exc:
            problems.append(f"memory block {label!r}: {exc}; rule ignored")
            continue
        if rule.id in seen:
            problems.append(f"memory block {label!r}: rule id {rule.id!r} repeats; ignored")
            continue
        seen.add(rule.id)
        rules.append(rule)
    return rules, problems


def with_rule(extra: Mapping[str, Any], rule: ReviewRule) -> dict[str, Any]:
    """Front matter extras with `rule` added, or replacing the rule of the same id; every other
    key, and every other rule as written, kept."""
    current = extra.get(RULES_KEY) or []
    if not isinstance(current, list):
        raise RuleError(f"`{RULES_KEY}` in this block is not a list; fix it by hand first")
    kept = [r for r in current if not (isinstance(r, Mapping) and r.get("id") == rule.id)]
    return {**extra, RULES_KEY: [*kept, rule.to_front_matter()]}
