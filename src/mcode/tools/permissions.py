"""Permission modes and rules: whether a tool call runs, is refused, or waits for the user's yes.

The conventions are the ones users bring from Claude Code. A mode sets the default: "ask" asks
before edits and shell commands, "accept-edits" asks only before shell commands, "auto" asks for
nothing. Rules override the mode, in this order: a `deny` rule refuses, an `ask` rule asks, an
`allow` rule (the user's, or one added by answering "always") permits. Reading a file that holds
secrets asks in every mode unless an allow rule names that file.

A rule is `Tool` or `Tool(specifier)`. `Bash(npm test)` is one exact command, `Bash(git push:*)` any
command starting with those words; `Edit(src/**)`, `Write(*.lock)` and `Read(.env)` take
gitignore-style globs relative to the repository root. `Edit` and `Write` both cover every tool that
changes a file; `Read` covers the tools that read a path; a tool's own name works too.

Commands are matched per simple command: an allow rule must cover every part of `a && b | c`, and a
command with substitutions (`$(...)`, backticks) or several lines is never allowed by a rule. Deny
and ask rules are matched loosely, wherever their words appear as a command in the text, so that
`sudo rm -rf x` or `echo $(rm -rf x)` still meets `Bash(rm -rf:*)`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, cast

from pathspec import GitIgnoreSpec

from mcode.secrets import is_secret_path as is_secret

PermissionMode = Literal["ask", "accept-edits", "auto"]
Behavior = Literal["allow", "deny", "ask"]
MODES: tuple[PermissionMode, ...] = ("ask", "accept-edits", "auto")
_MODE_ALIASES: dict[str, PermissionMode] = {
    "ask": "ask",
    "default": "ask",
    "accept-edits": "accept-edits",
    "accept_edits": "accept-edits",
    "acceptedits": "accept-edits",
    "auto": "auto",
    "full-auto": "auto",
    "bypasspermissions": "auto",
}

READ, EDIT, SHELL = "read", "edit", "shell"
# What each coding tool does, which decides what the mode says about it.
TOOL_KINDS: dict[str, str] = {
    "read_file": READ,
    "list_files": READ,
    "grep": READ,
    "code_search": READ,
    "git_status": READ,
    "git_diff": READ,
    "create_file": EDIT,
    "edit_file": EDIT,
    "multi_edit": EDIT,
    "run_shell": SHELL,
    "git_commit": SHELL,
}
# The rule names users write, and the kind of tool each one addresses.
RULE_KINDS: dict[str, str] = {"bash": SHELL, "edit": EDIT, "write": EDIT, "read": READ}

_RULE = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)
_SEPARATORS = frozenset({"&&", "||", ";", ";;", ";&", "|", "|&", "&", "(", ")"})
_UNANALYSABLE = re.compile(r"\$\(|`|<\(|>\(|\n")
_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
# Tools whose second word picks what they do, so "always" remembers `git log`, not all of git.
_SUBCOMMAND_TOOLS = frozenset(
    [
        "git",
        "npm",
        "npx",
        "pnpm",
        "yarn",
        "bun",
        "cargo",
        "go",
        "docker",
        "podman",
        "kubectl",
        "pip",
        "pip3",
        "uv",
        "poetry",
        "make",
        "just",
        "dotnet",
        "mvn",
        "gradle",
        "bundle",
        "rake",
        "brew",
        "apt",
        "apt-get",
        "systemctl",
        "gh",
        "mcode",
    ]
)


def parse_mode(text: str) -> PermissionMode:
    """The mode a user named, accepting Claude Code's spellings (`default`, `acceptEdits`, …)."""
    mode = _MODE_ALIASES.get(text.strip().lower())
    if mode is None:
        raise ValueError(f"unknown permission mode {text!r}; use one of {', '.join(MODES)}")
    return mode


@dataclass(frozen=True, slots=True)
class Decision:
    behavior: Behavior
    reason: str
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One parsed rule; `specifier` is None for a rule that covers every call of its tool."""

    tool: str
    specifier: str | None = None

    def __str__(self) -> str:
        return self.tool if self.specifier is None else f"{self.tool}({self.specifier})"

    @property
    def kind(self) -> str | None:
        return RULE_KINDS.get(self.tool.lower())

    def addresses(self, tool: str) -> bool:
        kind = self.kind
        return self.tool == tool if kind is None else TOOL_KINDS.get(tool) == kind


def parse_rule(text: str | Rule) -> Rule:
    """`Bash(rm -rf:*)` → Rule("Bash", "rm -rf:*"); a malformed rule is a ValueError."""
    if isinstance(text, Rule):
        return text
    found = _RULE.match(text)
    if found is None:
        raise ValueError(f"invalid permission rule {text!r}: write Tool or Tool(specifier)")
    tool, specifier = found.group(1), found.group(2)
    if specifier is not None:
        specifier = specifier.strip()
        if not specifier:
            raise ValueError(f"invalid permission rule {text!r}: empty parentheses")
    return Rule(tool, specifier)


# Shell commands ------------------------------------------------------------------------------------


def command_segments(command: str) -> list[str] | None:
    """The simple commands of a command line, whitespace-normalised, with leading `VAR=value`
    assignments dropped; None when it cannot be analysed safely (substitutions, several lines,
    unbalanced quotes)."""
    if _UNANALYSABLE.search(command):
        return None
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        return None
    segments: list[str] = []
    current: list[str] = []
    for token in [*tokens, ";"]:
        if token not in _SEPARATORS:
            if current or not _ASSIGNMENT.match(token):
                current.append(token)
            continue
        if current:
            segments.append(" ".join(current))
        current = []
    return segments


def _loose_segments(command: str) -> list[str]:
    """Every plausible simple command, for deny and ask rules: better to over-match there."""
    pieces = re.split(r"&&|\|\||[;&|()`\n]|\$\(", command)
    found = [" ".join(p.split()) for p in pieces]
    found += command_segments(command.replace("\n", ";")) or []
    return [s for s in found if s]


def _command_rule_matches(spec: str, segment: str) -> bool:
    if spec in ("*", ":*"):
        return True
    if spec.endswith(":*"):
        prefix = " ".join(spec[:-2].split())
        return segment == prefix or segment.startswith(prefix + " ")
    return segment == " ".join(spec.split())


def _command_rule_occurs(spec: str, command: str) -> bool:
    """Whether a prefix rule's words appear as a command anywhere in the text."""
    if not spec.endswith(":*") or spec in ("*", ":*"):
        return False
    words = spec[:-2].split()
    pattern = r"(?:^|[\s;&|(`$\"'])" + r"\s+".join(map(re.escape, words)) + r"(?=$|[\s;&|)`\"'])"
    return re.search(pattern, command) is not None


def _shell_subject(tool: str, args: Mapping[str, Any]) -> str | None:
    if tool == "git_commit":
        return "git commit"
    command = args.get("command")
    return command if isinstance(command, str) else None


def _first_words(segment: str) -> str:
    words = segment.split()
    if len(words) >= 3 and words[0].startswith("python") and words[1] == "-m":
        return " ".join(words[:3])
    if len(words) >= 2 and words[0] in _SUBCOMMAND_TOOLS and not words[1].startswith("-"):
        return " ".join(words[:2])
    return words[0]


# Paths ----------------------------------------------------------------------------------------------


@cache
def _glob(pattern: str) -> GitIgnoreSpec:
    return GitIgnoreSpec.from_lines([pattern])


def _path_subjects(args: Mapping[str, Any]) -> list[str]:
    """The repo-relative paths a call touches: as named, and where a symlink really leads."""
    found = []
    for key in ("path", "real_path"):
        value = args.get(key)
        if isinstance(value, str) and value:
            path = value[2:] if value.startswith("./") else value
            if path not in found:
                found.append(path)
    return found


def _path_rule_matches(spec: str, path: str) -> bool:
    return bool(_glob(spec).match_file(path))


# The rules ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Permissions:
    """The session's mode and rules; answering "always" adds rules to it for the session."""

    mode: PermissionMode = "ask"
    allow: list[Rule] = field(default_factory=list)
    deny: list[Rule] = field(default_factory=list)
    ask: list[Rule] = field(default_factory=list)
    session_allow: list[Rule] = field(default_factory=list)

    @classmethod
    def from_settings(
        cls,
        mode: str = "ask",
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        ask: Iterable[str] = (),
    ) -> Permissions:
        """Build from configuration strings; a bad mode or rule is a ValueError naming it."""
        return cls(
            parse_mode(mode),
            [parse_rule(r) for r in allow],
            [parse_rule(r) for r in deny],
            [parse_rule(r) for r in ask],
        )

    def set_mode(self, mode: str) -> None:
        self.mode = parse_mode(mode)

    def remember(self, rules: Iterable[str | Rule]) -> None:
        """Allow these for the rest of the session (the user answered "always")."""
        for rule in map(parse_rule, rules):
            if rule not in self.session_allow:
                self.session_allow.append(rule)

    def check(self, tool: str, args: Mapping[str, Any]) -> Decision:
        """Decide a call. `args` carry the subject: `command` for shell tools; `path` (and
        `real_path` when a symlink leads elsewhere) for file tools; `files` for git_commit."""
        for rule in self.deny:
            if self._matches(rule, tool, args, strict=False):
                return Decision("deny", f"denied by the rule {rule}", str(rule))
        for rule in self.ask:
            if self._matches(rule, tool, args, strict=False):
                return Decision("ask", f"the rule {rule} asks first", str(rule))
        secret = _secret_subject(tool, args)
        allowing = [
            rule
            for rule in [*self.allow, *self.session_allow]
            # only a rule naming the file unlocks a secret
            if secret is None or (rule.kind == READ and rule.specifier)
        ]
        allowed_by = self._allowed_by(allowing, tool, args)
        if allowed_by is not None:
            return Decision("allow", f"allowed by the rule {allowed_by}", allowed_by)
        if secret is not None:
            return Decision("ask", f"{secret} may hold secrets; it is shared only when you agree")
        return self._by_mode(tool)

    def denies_read(self, path: str) -> bool:
        """Whether a deny rule keeps `path` out of reads (grep skips such files)."""
        return self.check("read_file", {"path": path}).behavior == "deny"

    def always_rules(self, tool: str, args: Mapping[str, Any]) -> list[str]:
        """The rules that answering "always" to this call would add (none when no rule could
        allow it, e.g. a command with `$(...)`)."""
        kind = TOOL_KINDS.get(tool)
        if tool == "git_commit":
            return ["Bash(git commit:*)"]
        if kind == SHELL:
            command = _shell_subject(tool, args) or ""
            segments = command_segments(command) or []  # no rule ever allows an unanalysable one
            return list(dict.fromkeys(f"Bash({_first_words(s)}:*)" for s in segments))
        if kind == EDIT:
            return ["Edit"]
        if kind == READ and _secret_subject(tool, args) is not None:
            return [f"Read(/{path})" for path in _path_subjects(args)]
        return [tool]

    def _allowed_by(self, rules: list[Rule], tool: str, args: Mapping[str, Any]) -> str | None:
        """The allow rule (or rules, joined by " + ") covering the whole call, if any."""
        for rule in rules:
            if self._matches(rule, tool, args, strict=True):
                return str(rule)
        kind = TOOL_KINDS.get(tool)
        if kind == SHELL:
            command = _shell_subject(tool, args)
            parts = command_segments(command) if command else None
            covers = _command_rule_matches
        else:  # each path (a symlink and its target) may be allowed by a different rule
            parts = _path_subjects(args)
            covers = _path_rule_matches
        if not parts:
            return None
        specific = [r for r in rules if r.addresses(tool) and r.specifier is not None]
        covering = []
        for part in parts:
            rule = next((r for r in specific if covers(r.specifier or "", part)), None)
            if rule is None:
                return None
            covering.append(str(rule))
        return " + ".join(dict.fromkeys(covering))

    def _by_mode(self, tool: str) -> Decision:
        kind = TOOL_KINDS.get(tool)
        if kind == READ:
            return Decision("allow", "reading is always allowed")
        if kind == EDIT and self.mode != "ask":
            return Decision("allow", f"edits are allowed in {self.mode} mode")
        if self.mode == "auto":
            return Decision("allow", "everything is allowed in auto mode")
        what = "edits" if kind == EDIT else "commands"
        return Decision("ask", f"{what} need approval in {self.mode} mode")

    @staticmethod
    def _matches(rule: Rule, tool: str, args: Mapping[str, Any], *, strict: bool) -> bool:
        if not rule.addresses(tool):
            return False
        spec = rule.specifier
        if spec is None:
            return True
        kind = TOOL_KINDS.get(tool) if rule.kind is None else rule.kind
        if kind == SHELL:
            command = _shell_subject(tool, args)
            if command is None:
                return False
            if strict:
                segments = command_segments(command)
                return bool(segments) and all(_command_rule_matches(spec, s) for s in segments)
            flat = " ".join(command.split())
            return _command_rule_occurs(spec, flat) or any(
                _command_rule_matches(spec, s) for s in _loose_segments(command)
            )
        paths = _path_subjects(args)
        if not paths:
            return False
        hits = [_path_rule_matches(spec, p) for p in paths]
        return all(hits) if strict else any(hits)


def _secret_subject(tool: str, args: Mapping[str, Any]) -> str | None:
    """The first secret file this call would expose, if any."""
    if tool == "git_commit":
        files = cast(list[str], args.get("files") or [])
        return next((f for f in files if is_secret(f)), None)
    if TOOL_KINDS.get(tool) != READ:
        return None
    return next((p for p in _path_subjects(args) if is_secret(p)), None)
