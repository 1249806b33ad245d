"""Permission modes and rules: whether a tool call runs, is refused, or waits for the user's yes.

The conventions are the ones users bring from Claude Code. A mode sets the default: "ask" asks
before edits and shell commands, "accept-edits" asks only before shell commands, "auto" asks for
nothing. Rules override the mode, in this order: a `deny` rule refuses, an `ask` rule asks, an
`allow` rule (the user's, or one added by answering "always") permits. Reading a file that holds
secrets asks in every mode unless an allow rule names that file.

A rule is `Tool` or `Tool(specifier)`. `Bash(npm test)` is one exact command, `Bash(git push:*)` any
command starting with those words; `Edit(src/**)`, `Write(*.lock)` and `Read(.env)` take
gitignore-style globs relative to the repository root. `Edit` and `Write` both cover every tool that
changes a file; `Read` covers the tools that read a path; a tool's own name works too. Each tool
declares its own kind (`@tool(kind)` in `mcode.tools.base`).

Commands are read with bash's grammar, so a rule's words are the words bash passes: `'git' status`
is `git status`, `git status # note` is too, but `git status#` is not. An allow rule covers a line
only if it covers every simple command in it (across newlines, `;`, `&&`, `||`, `|`, `&`, `( )`,
`{ }`, `if` and `while`) and the line holds nothing a rule cannot vouch for: no redirection other
than to /dev/null or between descriptors (`2>&1`), no `$(...)`, backticks or `<(...)`, no
here-document, no `VAR=value`, no `for`, `case`, function or `[[ ]]`, nothing that fails to
parse. A command that runs another (`sudo`, `env`, `xargs`, `bash -c`, `timeout`, …) is never
covered, nor one using an option that runs code, writes files or reads outside the repository
(`git -c`, `git -C`, `git diff --output`, `--no-index`, `find -exec`, …); such a call asks. `Bash`
and `Bash(*)` allow every command. The lists live in `shell_rules`.

Deny and ask rules meet a normalised command wherever it could run: `/bin/rm -r -f x`, `rm -fr x`
and `rm --recursive --force x` all meet `Bash(rm -rf:*)` (flags count as a set, in any position,
with long synonyms for common tools), `git -C dir push` meets `Bash(git push:*)`, and so do
commands inside `$(...)`, behind `sudo`, `env`, `xargs` or `find -exec`, and in any quoted string a
shell might run (`bash -c '…'`, `ssh host '…'`), which over-matches on purpose (`echo 'rm -rf x'`
is denied too). When only a word known at run time could complete the rule (`rm $flags x`), the
call asks; a line mcode cannot fully read (a syntax error, a `for` loop) is also searched as text,
and the rule's words found there deny it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, cast

from pathspec import GitIgnoreSpec

from mcode.secrets import is_secret_path as is_secret
from mcode.tools.catalog import kind_of
from mcode.tools.shell_rules import Match, always_rule, blocker, covers, meets
from mcode.tools.shell_syntax import parse_command

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
# The rule names users write, and the kind of tool each one addresses.
RULE_KINDS: dict[str, str] = {"bash": SHELL, "edit": EDIT, "write": EDIT, "read": READ}

_RULE = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)


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
        return self.tool == tool if kind is None else kind_of(tool) == kind


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


def _shell_subject(tool: str, args: Mapping[str, Any]) -> str | None:
    if tool == "git_commit":
        return "git commit"
    command = args.get("command")
    return command if isinstance(command, str) else None


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
        maybe_denied: Rule | None = None
        for rule in self.deny:
            match = self._meets(rule, tool, args)
            if match is Match.YES:
                return Decision("deny", f"denied by the rule {rule}", str(rule))
            if match is Match.MAYBE and maybe_denied is None:
                maybe_denied = rule
        for rule in self.ask:
            if self._meets(rule, tool, args) is not Match.NO:
                return Decision("ask", f"the rule {rule} asks first", str(rule))
        if maybe_denied is not None:
            unknown = "part of the command is known only when it runs"
            return Decision(
                "ask", f"the rule {maybe_denied} may deny it: {unknown}", str(maybe_denied)
            )
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
        decision = self._by_mode(tool)
        unallowable = _shell_blocker(tool, args)
        if decision.behavior == "ask" and unallowable is not None:
            return Decision("ask", f"{decision.reason}; no rule can allow it: {unallowable}")
        return decision

    def denies_read(self, path: str) -> bool:
        """Whether a deny rule keeps `path` out of reads (grep skips such files)."""
        return self.check("read_file", {"path": path}).behavior == "deny"

    def always_rules(self, tool: str, args: Mapping[str, Any]) -> list[str]:
        """The rules that answering "always" to this call would add (none when no rule could
        allow it, e.g. a command with `$(...)` or a redirection)."""
        kind = kind_of(tool)
        if tool == "git_commit":
            return ["Bash(git commit:*)"]
        if kind == SHELL:
            script = parse_command(_shell_subject(tool, args) or "")
            rules = [always_rule(c) for c in script.commands] if blocker(script) is None else []
            return [] if None in rules else list(dict.fromkeys(r for r in rules if r))
        if kind == EDIT:
            return ["Edit"]
        if kind == READ and _secret_subject(tool, args) is not None:
            return [f"Read(/{path})" for path in _path_subjects(args)]
        return [tool]

    def _allowed_by(self, rules: list[Rule], tool: str, args: Mapping[str, Any]) -> str | None:
        """The allow rule (or rules, joined by " + ") covering the whole call, if any."""
        addressed = [rule for rule in rules if rule.addresses(tool)]
        shell = kind_of(tool) == SHELL
        for rule in addressed:
            if rule.specifier is None or (shell and rule.specifier in ("*", ":*")):
                return str(rule)
        parts: list[Any]
        if shell:
            command = _shell_subject(tool, args)
            script = parse_command(command) if command is not None else None
            if script is None or blocker(script) is not None:
                return None
            parts, fits = list(script.commands), covers
        else:  # each path (a symlink and its target) may be allowed by a different rule
            parts, fits = _path_subjects(args), _path_rule_matches
        if not parts:
            return None
        covering = []
        for part in parts:
            rule = next((r for r in addressed if r.specifier and fits(r.specifier, part)), None)
            if rule is None:
                return None
            covering.append(str(rule))
        return " + ".join(dict.fromkeys(covering))

    def _by_mode(self, tool: str) -> Decision:
        kind = kind_of(tool)
        if kind == READ:
            return Decision("allow", "reading is always allowed")
        if kind == EDIT and self.mode != "ask":
            return Decision("allow", f"edits are allowed in {self.mode} mode")
        if self.mode == "auto":
            return Decision("allow", "everything is allowed in auto mode")
        what = "edits" if kind == EDIT else "commands"
        return Decision("ask", f"{what} need approval in {self.mode} mode")

    @staticmethod
    def _meets(rule: Rule, tool: str, args: Mapping[str, Any]) -> Match:
        """How far a deny or ask rule meets a call: anywhere its command could run, any path."""
        if not rule.addresses(tool):
            return Match.NO
        spec = rule.specifier
        if spec is None:
            return Match.YES
        kind = kind_of(tool) if rule.kind is None else rule.kind
        if kind == SHELL:
            command = _shell_subject(tool, args)
            return Match.NO if command is None else meets(spec, command)
        hits = any(_path_rule_matches(spec, path) for path in _path_subjects(args))
        return Match.YES if hits else Match.NO


def _shell_blocker(tool: str, args: Mapping[str, Any]) -> str | None:
    """Why no rule could allow this shell call, for the reason a prompt shows; None otherwise."""
    command = _shell_subject(tool, args) if kind_of(tool) == SHELL else None
    return None if command is None else blocker(parse_command(command))


def _secret_subject(tool: str, args: Mapping[str, Any]) -> str | None:
    """The first secret file this call would expose, if any."""
    if tool == "git_commit":
        files = cast(list[str], args.get("files") or [])
        return next((f for f in files if is_secret(f)), None)
    if kind_of(tool) != READ:
        return None
    return next((p for p in _path_subjects(args) if is_secret(p)), None)
