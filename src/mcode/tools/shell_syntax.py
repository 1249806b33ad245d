"""Bash command lines read with bash's own grammar, for the permission rules.

A rule is only as good as its reading of the command: shlex and regexes read `git status#; touch x`
as one command where bash runs two. This module parses a line with the tree-sitter bash grammar into
what the rules need: each simple command's words as bash would pass them, its assignments and
redirections, and flags for everything a rule cannot vouch for. It decides nothing; `shell_rules`
does. Whatever it does not model, or where the grammar and bash might disagree, lands in `unparsed`
so that the caller can refuse to guess.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tree_sitter import Node, Parser
from tree_sitter_language_pack import get_parser


@dataclass(frozen=True, slots=True)
class Word:
    """One word as the command receives it. `text` has quotes and escapes resolved, with any part
    known only when it runs (`$x`, `$(...)`, globs, `~`, braces) kept as written; `head` is the
    part of `text` before the first such part (all of it for a static word)."""

    text: str
    head: str

    @property
    def static(self) -> bool:
        return self.head == self.text


@dataclass(frozen=True, slots=True)
class Redirect:
    """`2>&1` is Redirect(">&", "2", Word("1")); a here-document's target is its body."""

    operator: str
    fd: str | None
    target: Word | None


@dataclass(frozen=True, slots=True)
class SimpleCommand:
    """One command bash runs. `assignments` names what `A=1 cmd` (or a bare `A=1`) sets;
    `redirects` holds its own and those of any `{ }` or `( )` around it."""

    argv: tuple[Word, ...]
    assignments: tuple[str, ...] = ()
    redirects: tuple[Redirect, ...] = ()


@dataclass(frozen=True, slots=True)
class Script:
    """A parsed command line. `commands` include those inside loops, substitutions and the rest
    of a here-document's first line, each substitution before the command using it; `unparsed`
    says, in words for the user, what was not understood or is not modelled (empty when the
    reading is complete)."""

    commands: tuple[SimpleCommand, ...]
    substitution: bool = False  # $(...) or backticks
    backticks: bool = False
    process_substitution: bool = False  # <(...) or >(...)
    heredoc: bool = False
    expansion: bool = False  # some word is only known when it runs
    compound: bool = False  # ( ), { }, if, while, until, !
    unparsed: tuple[str, ...] = ()


# Statements whose simple commands each stand on their own; the first two kinds are plain lists.
_LISTS = frozenset({"program", "list", "pipeline", "do_group", "elif_clause", "else_clause"})
_COMPOUND = frozenset(
    {"subshell", "compound_statement", "negated_command", "if_statement", "while_statement"}
)
# Statements mcode does not model: they assign variables, define commands or evaluate arithmetic,
# which no rule can judge word by word. Their inner commands are still collected for deny rules.
_UNMODELLED = {
    "for_statement": "a for loop",
    "c_style_for_statement": "a for loop",
    "case_statement": "a case statement",
    "function_definition": "a function definition",
    "test_command": "a [ ], [[ ]] or (( )) test",
    "declaration_command": "export, declare, local or readonly",
    "unset_command": "unset",
}
_STATEMENTS = (
    _LISTS
    | _COMPOUND
    | set(_UNMODELLED)
    | {
        "command",
        "redirected_statement",
        "variable_assignment",
        "variable_assignments",
        "comment",
    }
)
_REDIRECTS = frozenset({"file_redirect", "herestring_redirect", "heredoc_redirect"})
# Nodes whose text between children is literal (quoted text, here-document lines).
_LITERAL_CONTAINERS = frozenset({"string", "translated_string", "heredoc_body"})
# What bash skips between tokens and the grammar agrees on; anything else there (`\ `, `\r`) is
# a place where the two could read different words.
_GAP = re.compile(r"(?:[ \t\n]|\\\n)*")
_MAX_DEPTH = 32
_GLOB = frozenset("*?[")
_C_ESCAPE = re.compile(
    r"\\(?:([abeEfnrtv\\'\"?])|([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{1,4})"
    r"|U([0-9A-Fa-f]{1,8})|c(.))",
    re.DOTALL,
)
_C_SIMPLE = dict(zip("abeEfnrtv\\'\"?", "\a\b\x1b\x1b\f\n\r\t\v\\'\"?", strict=True))
_DQ_ESCAPE = re.compile(r"\\([$`\"\\\n])")
_local = threading.local()


def _parser() -> Parser:
    """One parser per thread: a parser is not safe to share, and making one costs milliseconds."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = get_parser("bash")
    return parser


@lru_cache(maxsize=512)
def parse_command(command: str) -> Script:
    """Read a command line as `bash -c` would; cached, since every rule asks about the same line."""
    try:
        source = command.encode("utf-8")
    except UnicodeEncodeError:
        return Script((), unparsed=("text that is not valid UTF-8",))
    root = _parser().parse(source).root_node
    reader = _Reader(source)
    reader.statement(root, ())
    flags = reader.flags
    return Script(
        tuple(reader.commands),
        substitution="substitution" in flags,
        backticks="backticks" in flags,
        process_substitution="process_substitution" in flags,
        heredoc="heredoc" in flags,
        expansion="expansion" in flags,
        compound="compound" in flags,
        unparsed=tuple(dict.fromkeys([*_coverage_problems(root, source), *reader.unparsed])),
    )


def _coverage_problems(root: Node, source: bytes) -> list[str]:
    """Syntax errors, and text between tokens that bash might read differently from the grammar
    (`a\\ b`, a line continuation inside a word)."""
    problems: list[str] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            where = _snippet(source[node.start_byte : node.end_byte]) or "the end"
            problems.append(f"a syntax error near {where}")
            continue
        children = node.children
        if children and node.type not in _LITERAL_CONTAINERS:
            edges = [node.start_byte]
            for child in children:
                edges += [child.start_byte, child.end_byte]
            edges.append(node.end_byte)
            for start, end in zip(edges[::2], edges[1::2], strict=True):
                gap = source[start:end].decode("utf-8", "replace")
                joins = gap and not gap.replace("\\\n", "") and start > 0 and end < len(source)
                if not _GAP.fullmatch(gap) or joins:
                    near = _snippet(source[max(0, start - 12) : end + 12])
                    problems.append(f"an escape mcode cannot follow near {near}")
        stack.extend(reversed(children))
    return problems


def _snippet(data: bytes) -> str:
    text = " ".join(data.decode("utf-8", "replace").split())
    return f"`{text[:40]}`" if text else ""


class _Reader:
    """Walks the tree once, collecting simple commands and flags."""

    def __init__(self, source: bytes) -> None:
        self.source = source
        self.commands: list[SimpleCommand] = []
        self.flags: set[str] = set()
        self.unparsed: list[str] = []
        self.depth = 0

    def text(self, node: Node, start: int | None = None, end: int | None = None) -> str:
        begin = node.start_byte if start is None else start
        return self.source[begin : node.end_byte if end is None else end].decode("utf-8", "replace")

    def not_modelled(self, node: Node, what: str | None = None) -> None:
        if not node.is_error:  # syntax errors are reported with the coverage check
            self.unparsed.append(what or f"`{' '.join(self.text(node).split())[:40]}`")
        self.descend(node)

    # statements

    def nested(self, step: Callable[..., None], *args: Any) -> None:
        """Take one step deeper into the tree, unless the line nests too deep to follow."""
        if self.depth >= _MAX_DEPTH:
            self.unparsed.append("nesting too deep to follow")
            return
        self.depth += 1
        try:
            step(*args)
        finally:
            self.depth -= 1

    def statement(self, node: Node, redirects: tuple[Redirect, ...]) -> None:
        self.nested(self._statement, node, redirects)

    def _statement(self, node: Node, redirects: tuple[Redirect, ...]) -> None:
        kind = node.type
        if kind == "command":
            self.simple(node, redirects, [])
        elif kind == "redirected_statement":
            self.redirected(node, redirects)
        elif kind in ("variable_assignment", "variable_assignments"):
            pairs = [node] if kind == "variable_assignment" else node.named_children
            names = tuple(self.assignment(pair) for pair in pairs)
            self.commands.append(SimpleCommand((), names, redirects))
        elif kind in _LISTS or kind in _COMPOUND:
            if kind in _COMPOUND:
                self.flags.add("compound")
            for child in node.named_children:
                self.statement(child, redirects)
        elif kind in _UNMODELLED:
            self.not_modelled(node, _UNMODELLED[kind])
        elif kind != "comment":
            self.not_modelled(node)

    def redirected(self, node: Node, inherited: tuple[Redirect, ...]) -> None:
        body = node.child_by_field_name("body")
        redirects: list[Redirect] = []
        extra: list[Word] = []  # `echo > f x`: the grammar files `x` under the redirection
        for child in node.named_children:
            if child.type in _REDIRECTS:
                redirects.append(self.redirect(child, extra))
            elif body is None or child.id != body.id:
                self.not_modelled(child)
        outer = (*inherited, *redirects)
        if body is None:
            self.commands.append(SimpleCommand(tuple(extra), (), outer))
        elif body.type == "command":
            self.simple(body, outer, extra)
        else:
            if extra:
                self.unparsed.append(f"words after a redirection: {extra[0].text}")
            self.statement(body, outer)

    def simple(self, node: Node, inherited: tuple[Redirect, ...], extra: list[Word]) -> None:
        argv: list[Word] = []
        names: list[str] = []
        redirects = list(inherited)
        for child in node.children:
            kind = child.type
            if not child.is_named:
                self.unparsed.append(f"`{self.text(child)}` in a command")
            elif kind == "variable_assignment":
                names.append(self.assignment(child))
            elif kind in _REDIRECTS:
                redirects.append(self.redirect(child, argv))
            else:
                argv.append(self.word(child))
        self.commands.append(SimpleCommand((*argv, *extra), tuple(names), tuple(redirects)))

    def assignment(self, node: Node) -> str:
        name = node.child_by_field_name("name")
        value = node.child_by_field_name("value")
        if value is not None:
            if value.type == "array":
                for item in value.named_children:
                    self.word(item)
            else:
                self.word(value)
        if name is None or name.type != "variable_name":
            self.not_modelled(node)
            return self.text(node)
        return self.text(name)

    def redirect(self, node: Node, extra: list[Word]) -> Redirect:
        if node.type == "heredoc_redirect":
            return self.heredoc(node)
        fd = None
        operator = ""
        targets: list[Word] = []
        for child in node.children:
            if not child.is_named:
                operator += self.text(child)
            elif child.type == "file_descriptor":
                fd = self.text(child)
            else:
                targets.append(self.word(child))
        extra.extend(targets[1:])
        return Redirect(operator, fd, targets[0] if targets else None)

    def heredoc(self, node: Node) -> Redirect:
        self.flags.add("heredoc")
        operator, quoted, body = "<<", False, None
        for child in node.children:
            kind = child.type
            if not child.is_named:
                if kind in ("<<", "<<-"):
                    operator = kind
            elif kind == "heredoc_start":
                quoted = any(mark in self.text(child) for mark in "'\"\\")
            elif kind == "heredoc_body":
                body = child
            elif kind in _STATEMENTS:  # the rest of the `<<EOF` line: `cat <<EOF | sh`
                self.statement(child, ())
            elif kind != "heredoc_end":
                self.not_modelled(child)
        if body is None:
            return Redirect(operator, None, Word("", ""))
        if quoted:
            text = self.text(body)
            return Redirect(operator, None, Word(text, text))
        parts = _Parts()
        self.quoted_text(body, body.start_byte, body.end_byte, parts)
        word = parts.word()
        if "`" in word.text:  # bash runs backticks in a here-document; the grammar misses them
            self.unparsed.append("backticks in a here-document")
            word = Word(word.text, word.head.partition("`")[0])
        return Redirect(operator, None, word)

    # words

    def word(self, node: Node) -> Word:
        parts = _Parts()
        self.word_parts(node, parts)
        word = parts.word()
        if not word.static:
            self.flags.add("expansion")
        return word

    def word_parts(self, node: Node, parts: _Parts) -> None:
        kind = node.type
        text = self.text(node)
        if kind in ("word", "number"):
            parts.unquoted(text)
        elif kind == "raw_string":
            parts.quoted(text[1:-1])
        elif kind == "ansi_c_string":
            parts.quoted(_ansi_c(text[2:-1]))
        elif kind in ("string", "translated_string"):
            start = node.start_byte + (2 if kind == "translated_string" else 1)
            self.quoted_text(node, start, node.end_byte - 1, parts)
        elif kind in ("concatenation", "command_name"):
            for child in node.children:
                if child.is_named:
                    self.word_parts(child, parts)
                else:
                    self.unparsed.append(f"`{self.text(child)}` in a word")
                    parts.dynamic(self.text(child))
        else:
            self.dynamic_part(node, parts)

    def dynamic_part(self, node: Node, parts: _Parts) -> None:
        """An expansion or substitution: known only when the command runs."""
        kind = node.type
        parts.dynamic(self.text(node))
        if kind in ("command_substitution", "process_substitution"):
            self.substitution(node)
        elif kind == "expansion":
            inner = [c.type for c in node.children]
            plain = inner in (["${", "variable_name", "}"], ["${", "special_variable_name", "}"])
            if not plain:  # ${x:-$(cmd)}, ${!x}, ${a[i]}: operators and indirection run code
                self.not_modelled(node, f"the expansion `{self.text(node)[:40]}`")
        elif kind == "arithmetic_expansion":
            self.not_modelled(node, "arithmetic `$((...))`")
        elif kind not in ("simple_expansion", "brace_expression"):
            self.not_modelled(node)

    def quoted_text(self, node: Node, start: int, end: int, parts: _Parts) -> None:
        """Double-quoted text or here-document lines: literal but for expansions."""
        position = start
        for child in node.named_children:
            if child.type in ("string_content", "heredoc_content") or child.start_byte < start:
                continue
            parts.quoted(_unescape_double_quoted(self.text(node, position, child.start_byte)))
            self.dynamic_part(child, parts)
            position = child.end_byte
        parts.quoted(_unescape_double_quoted(self.text(node, position, end)))

    def substitution(self, node: Node) -> None:
        if node.type == "process_substitution":
            self.flags.add("process_substitution")
        else:
            self.flags.add("substitution")
            if node.children and node.children[0].type == "`":
                self.flags.add("backticks")
        for child in node.named_children:
            self.statement(child, ())  # a new process: outer redirections do not apply

    def descend(self, node: Node) -> None:
        """Collect commands below a construct that is not modelled, for deny rules."""
        self.nested(self._descend, node)

    def _descend(self, node: Node) -> None:
        for child in node.named_children:
            if child.type in _STATEMENTS:
                self.statement(child, ())
            elif child.type in ("command_substitution", "process_substitution"):
                self.substitution(child)
            elif child.type in _REDIRECTS:
                self.redirect(child, [])
            else:
                self.descend(child)


class _Parts:
    """A word assembled part by part, remembering where the first run-time part starts and which
    characters bash would treat as glob or brace syntax."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.length = 0
        self.dynamic_at: int | None = None
        self.specials: list[tuple[int, str]] = []  # unquoted `{`, `,`, `.`, `}` by position

    def _add(self, text: str) -> None:
        self.text.append(text)
        self.length += len(text)

    def _mark(self, at: int) -> None:
        if self.dynamic_at is None or at < self.dynamic_at:
            self.dynamic_at = at

    def quoted(self, text: str) -> None:
        self._add(text)

    def dynamic(self, text: str) -> None:
        self._mark(self.length)
        self._add(text)

    def unquoted(self, raw: str) -> None:
        index = 0
        while index < len(raw):
            char = raw[index]
            if char == "\\" and index + 1 < len(raw):
                self._add(raw[index + 1])
                index += 2
                continue
            if char in _GLOB or (char == "~" and self.length == 0):
                self._mark(self.length)
            elif char in "{,.}":
                self.specials.append((self.length, char))
            self._add(char)
            index += 1

    def word(self) -> Word:
        text = "".join(self.text)
        brace = _brace_start(self.specials)
        if brace is not None:
            self._mark(brace)
        head = text if self.dynamic_at is None else text[: self.dynamic_at]
        return Word(text, head)


def _brace_start(specials: list[tuple[int, str]]) -> int | None:
    """Where brace expansion (`a{b,c}`, `{1..3}`) begins, if the unquoted braces make one."""
    for i, (at, char) in enumerate(specials):
        if char != "{":
            continue
        separated, previous = False, (-1, "")
        for later_at, later in specials[i + 1 :]:
            if later == "}":
                if separated:
                    return at
                break
            separated |= later == "," or (later == "." and previous == (later_at - 1, "."))
            previous = (later_at, later)
    return None


def _unescape_double_quoted(text: str) -> str:
    return _DQ_ESCAPE.sub(lambda m: "" if m.group(1) == "\n" else m.group(1), text)


def _ansi_c(body: str) -> str:
    """The value of `$'...'`: C escapes resolved, as bash does (`$'\\x72m'` is `rm`)."""

    def one(found: re.Match[str]) -> str:
        simple, octal, byte, short, long, control = found.groups()
        if simple:
            return _C_SIMPLE[simple]
        if octal:
            return chr(int(octal, 8) & 0xFF)
        if control:
            return chr(ord(control) & 0x1F)
        code = int(byte or short or long, 16)
        return chr(code) if code <= 0x10FFFF else "\ufffd"

    return _C_ESCAPE.sub(one, body)
