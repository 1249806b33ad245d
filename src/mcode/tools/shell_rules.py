"""How a `Bash(...)` rule meets a parsed command line, and what no allow rule may cover.

Allow rules are read narrowly: a rule covers a simple command whose first words are the rule's
words exactly as bash passes them, and a line is only allowable when nothing in it escapes such a
word-by-word reading (`blocker`). Deny and ask rules are read broadly, because a miss there is the
costly mistake: they meet a normalised form of every command in the line, behind wrappers and inside
strings a shell may run, and a line that cannot be read is searched as text. The lists below are the
documented data behind both; `shell_syntax` does the reading.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cache

from mcode.tools.shell_syntax import Redirect, Script, SimpleCommand, Word, parse_command

# Commands that run a command given in their arguments. An allow rule never covers them (a rule for
# `xargs` or `timeout` would otherwise run anything after it); deny rules look at what they run.
WRAPPERS = frozenset(
    {
        *("env", "command", "builtin", "exec", "eval", "source", ".", "xargs", "parallel"),
        *("sudo", "doas", "su", "run0", "chroot", "flock", "setsid", "coproc", "script"),
        *("bash", "sh", "zsh", "dash", "ksh", "fish", "busybox"),
        *("timeout", "nice", "ionice", "nohup", "time", "stdbuf", "unbuffer", "watch", "taskset"),
        *("strace", "ltrace"),
    }
)

# Options after which the rest of a command's words are a command it runs.
RUNS_AFTER: dict[str, frozenset[str]] = {
    "find": frozenset({"-exec", "-execdir", "-ok", "-okdir"}),
    "fd": frozenset({"-x", "--exec", "-X", "--exec-batch"}),
}

# Options that make a command run code, write files or read outside the repository: a call using
# one asks whatever the allow rules say, so `Bash(git diff:*)` does not cover `git diff --output=f`.
# Keys are a command, or git and a subcommand ("git" alone applies to every subcommand). `--long`
# options also match as `--long=value` and abbreviated (git and GNU tools accept `--outp`); `-x`
# also inside a bundle such as `-ix`; other spellings (find's `-exec`) only as written. A word
# known only at run time (`$x`, `*`) that could be an option asks too, for these commands only.
# Not covered: scripts that write or run through their own language (sed's `w` and `e`, awk's
# `system`); a rule for such a tool trusts its scripts.
RISKY_OPTIONS: dict[str, tuple[str, ...]] = {
    "git": (
        *("--output", "--exec", "--upload-pack", "--receive-pack", "--ext-diff", "--template"),
        *("--open-files-in-pager", "--contents", "--no-index"),  # the last two read any file
    ),
    "git archive": ("-o",),
    "git format-patch": ("-o",),
    "git rebase": ("-x",),
    "git clone": ("-c", "--config", "-u"),
    "git grep": ("-O",),
    "git difftool": ("-x", "--extcmd"),
    "find": (
        *("-exec", "-execdir", "-ok", "-okdir", "-delete"),
        *("-fprint", "-fprint0", "-fprintf", "-fls"),
    ),
    "fd": ("-x", "--exec", "-X", "--exec-batch"),
    "rg": ("--pre",),
    "sort": ("-o", "--output", "--compress-program"),
    "sed": ("-i", "--in-place"),
}
# Git's options before the subcommand that take the next word as their value.
GIT_GLOBALS_WITH_VALUE = frozenset(
    {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--super-prefix", "--config-env"}
    | {"--shallow-file", "--attr-source"}
)
# Of those and the rest, the ones that change which configuration or repository git uses: `-c` and
# `--config-env` set any config (`core.pager`, `core.fsmonitor` run commands), and a directory in a
# cloned repository can itself be a bare repository whose config runs code.
GIT_RISKY_GLOBALS = ("-c", "--config-env", "--exec-path", "-C", "--git-dir", "--work-tree")

# Spellings that mean the same flag, so that a deny rule written either way meets both:
# `rm --recursive --force` and `rm -R -f` are `rm -rf`. GNU abbreviations (`--rec`) count too.
# Short flags are always split and compared as a set in any position (`rm -r -f` is `rm -fr`).
FLAG_SYNONYMS: dict[str, dict[str, str]] = {
    "rm": {"--recursive": "-r", "-R": "-r", "--force": "-f", "--dir": "-d"},
    "cp": {"--recursive": "-r", "-R": "-r", "--force": "-f"},
    "mv": {"--force": "-f"},
    "chmod": {"--recursive": "-R"},
    "chown": {"--recursive": "-R"},
    "git push": {"--force": "-f", "--delete": "-d"},
    "git clean": {"--force": "-f"},
    "git checkout": {"--force": "-f"},
    "git branch": {"--delete": "-d", "--force": "-f", "-D": "-d -f"},
}

# Redirections that neither write nor read a file: to and from /dev/null, and between descriptors
# (`2>&1`, `>&2`, `2>&-`). Any other redirection asks.
_NULL_OPERATORS = frozenset({">", ">>", "<", "&>", "&>>", ">|", ">&"})
# Tools whose second word picks what they do, so "always" remembers `git log`, not all of git.
_SUBCOMMAND_TOOLS = frozenset(
    {
        *("git", "npm", "npx", "pnpm", "yarn", "bun", "cargo", "go", "docker", "podman"),
        *("kubectl", "pip", "pip3", "uv", "poetry", "make", "just", "dotnet", "mvn", "gradle"),
        *("bundle", "rake", "brew", "apt", "apt-get", "systemctl", "gh", "mcode"),
    }
)
_SHORT_BUNDLE = re.compile(r"-[A-Za-z]{2,}")
_LEADING_LETTERS = re.compile(r"-([A-Za-z]*)")
_SCRIPT_LIKE = frozenset(" \t\n;&|<>()`")
_LOOSE_BREAK = re.compile(r"&&|\|\||\$\(|[;&|()`{}<>\n]")
_QUOTES = re.compile(r"[\"'\\]")
_LOOSE_WORDS = re.compile(r"[\s,]+")  # commas too, for brace expansion: `{rm,-rf,x}`
_MAX_NESTING = 3  # strings within strings a shell may run
_MAX_CANDIDATES = 64  # commands one wrapper line may run before the check gives up and asks


class Match(IntEnum):
    """How far a deny or ask rule meets a command; MAYBE when only run-time words could decide."""

    NO = 0
    MAYBE = 1
    YES = 2


# Allow rules ---------------------------------------------------------------------------------------


def covers(spec: str, command: SimpleCommand) -> bool:
    """Whether an allow rule's specifier covers one simple command, word for word. The line as a
    whole must also pass `blocker`."""
    if spec in ("*", ":*"):
        return True
    prefix = spec.endswith(":*")
    words = _spec_words(spec[:-2] if prefix else spec)
    argv = command.argv
    if not words or len(argv) < len(words) or (not prefix and len(argv) != len(words)):
        return False
    return all(word.static and word.text == want for word, want in zip(argv, words, strict=False))


def blocker(script: Script) -> str | None:
    """Why no allow rule can cover this line (completing "no rule allows it because …"), or None."""
    if script.unparsed:
        return f"mcode cannot analyse {script.unparsed[0]}"
    if script.substitution:
        return "it runs a command substitution ($(...) or backticks)"
    if script.process_substitution:
        return "it runs a process substitution (<(...) or >(...))"
    for command in script.commands:
        reason = _command_blocker(command)
        if reason is not None:
            return reason
    return None


def always_rule(command: SimpleCommand) -> str | None:
    """The rule answering "always" remembers for this command: its first words and `:*`."""
    words: list[str] = []
    for word in command.argv:
        if not word.static:
            break
        words.append(word.text)
    if not words:
        return None
    if len(words) >= 3 and words[0].startswith("python") and words[1] == "-m":
        first = words[:3]
    elif len(words) >= 2 and words[0] in _SUBCOMMAND_TOOLS and not words[1].startswith("-"):
        first = words[:2]
    else:
        first = words[:1]
    return f"Bash({' '.join(map(shlex.quote, first))}:*)"


def _command_blocker(command: SimpleCommand) -> str | None:
    if command.assignments:
        return f"it sets {', '.join(command.assignments)}"
    for redirect in command.redirects:
        if not _harmless(redirect):
            if redirect.operator.startswith("<<"):
                return "it feeds the command a here-document or here-string"
            target = redirect.target.text if redirect.target else redirect.operator
            return f"it redirects to or from {target}"
    if not command.argv:
        return "it only redirects"
    name = _name(command.argv[0])
    if name in WRAPPERS:
        return f"{name} runs another command, which a rule for {name} does not cover"
    return _risky(name, command.argv[1:]) if name else None


def _harmless(redirect: Redirect) -> bool:
    target = redirect.target
    if redirect.operator in (">&-", "<&-"):
        return target is None
    if target is None or not target.static:
        return False
    if redirect.operator in (">&", "<&") and (target.text.isdigit() or target.text == "-"):
        return True
    return redirect.operator in _NULL_OPERATORS and target.text == "/dev/null"


def _risky(name: str, args: Sequence[Word]) -> str | None:
    """The first option in `args` that lets `name` run code or write or read beyond the repo."""
    options = RISKY_OPTIONS.get(name, ())
    if name == "git":
        front, args = _git_split(args)
        for word in front:
            found = _option_in(word.text, GIT_RISKY_GLOBALS)
            if found is not None:
                return f"`git {found}` changes which repository or configuration git uses"
        if args and args[0].static:
            options = (*options, *RISKY_OPTIONS.get(f"git {args[0].text}", ()))
    if not options:
        return None
    for word in args:
        if _could_be_option(word):
            return f"`{word.text}` is only known when it runs and could be an option of {name}"
        found = _option_in(word.text, options)
        if found is not None:
            return f"`{found}` can make {name} run code, write files or read outside the repository"
    return None


def _option_in(text: str, options: Sequence[str]) -> str | None:
    if not text.startswith("-") or text in ("-", "--"):
        return None
    name = text.split("=", 1)[0]
    letters_match = _LEADING_LETTERS.match(text)
    letters = letters_match.group(1) if letters_match and not text.startswith("--") else ""
    for option in options:
        if option.startswith("--"):
            abbreviated = name.startswith("--") and len(name) >= 4 and option.startswith(name)
            if name == option or abbreviated:
                return option
        elif len(option) == 2:
            if option[1] in letters:
                return option
        elif text == option:
            return option
    return None


def _could_be_option(word: Word) -> bool:
    """Whether a word known only at run time might expand to an option (`$x`, `*`, `--$x`)."""
    head = word.head
    return not word.static and (not head or (head.startswith("-") and "=" not in head))


def _git_split(args: Sequence[Word]) -> tuple[Sequence[Word], Sequence[Word]]:
    """Git's global options (with their values), and the subcommand with its arguments."""
    index = 0
    while index < len(args):
        word = args[index]
        if not word.static or not word.text.startswith("-") or word.text == "--":
            break
        index += 2 if word.text in GIT_GLOBALS_WITH_VALUE else 1
    return args[:index], args[index:]


@cache
def _spec_words(body: str) -> tuple[str, ...]:
    """A rule's words, read like a command (so `Bash('my tool':*)` works); plain words otherwise."""
    script = parse_command(body)
    if len(script.commands) == 1 and not script.unparsed:
        command = script.commands[0]
        if not (command.assignments or command.redirects or script.substitution) and all(
            word.static for word in command.argv
        ):
            return tuple(word.text for word in command.argv)
    return tuple(body.split())


def _name(word: Word) -> str | None:
    return word.text.rsplit("/", 1)[-1] if word.static else None


# Deny and ask rules --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Shape:
    """A command normalised for deny rules: basename, flags as a set, operands in order. None
    stands for a word known only at run time; `open` says such a word could be any flag."""

    name: str | None
    flags: frozenset[str]
    operands: tuple[str | None, ...]
    open: bool


def meets(spec: str, command: str) -> Match:
    """How far a deny or ask rule's specifier meets a command line, anywhere in it."""
    if spec in ("*", ":*"):
        return Match.YES
    prefix = spec.endswith(":*")
    rule = _rule_shape(spec[:-2] if prefix else spec)
    return _meets_text(rule, prefix, command, 0)


@cache
def _rule_shape(body: str) -> _Shape:
    return _shape([Word(word, word) for word in _spec_words(body)])


def _meets_text(rule: _Shape, prefix: bool, text: str, depth: int) -> Match:
    script = parse_command(text)
    if script.unparsed and _loose_meets(rule, text):
        return Match.YES
    best = Match.NO
    for command in script.commands:
        if command.argv:
            best = max(best, _meets_argv(rule, prefix, command.argv))
        if best is Match.YES:
            return best
    for inner in _embedded(script):
        if depth >= _MAX_NESTING:
            found = Match.YES if _loose_meets(rule, inner) else Match.NO
        else:
            found = _meets_text(rule, prefix, inner, depth + 1)
        best = max(best, found)
        if best is Match.YES:
            break
    return best


def _embedded(script: Script) -> Iterator[str]:
    """Text a command may hand to a shell: `bash -c '…'`, `ssh host '…'`, `--exec='…'`, a
    here-document. Deny rules read every such string as a command line, over-matching on purpose."""
    for command in script.commands:
        for word in command.argv[1:]:
            text = word.text
            for candidate in (text, text.partition("=")[2] if text.startswith("-") else ""):
                if _SCRIPT_LIKE.intersection(candidate):
                    yield candidate
        for redirect in command.redirects:
            if redirect.operator.startswith("<<") and redirect.target is not None:
                yield redirect.target.text


def _loose_meets(rule: _Shape, text: str) -> bool:
    """For a line that does not parse: the rule's words anywhere as a command, quotes ignored."""
    for piece in _LOOSE_BREAK.split(text.replace("\\\n", "")):
        words = [Word(word, word) for word in _LOOSE_WORDS.split(_QUOTES.sub("", piece)) if word]
        starts = [i for i, word in enumerate(words) if _name(word) == rule.name]
        if any(_meets_argv(rule, True, words[i:]) is Match.YES for i in starts[:_MAX_CANDIDATES]):
            return True
    return False


def _meets_argv(rule: _Shape, prefix: bool, argv: Sequence[Word]) -> Match:
    best = Match.NO
    for count, candidate in enumerate(_candidates(argv, rule.name, 0)):
        if count >= _MAX_CANDIDATES:
            return max(best, Match.MAYBE)
        best = max(best, _meet(rule, prefix, _shape(candidate)))
        if best is Match.YES:
            break
    return best


def _candidates(argv: Sequence[Word], name: str | None, depth: int) -> Iterator[Sequence[Word]]:
    """The command itself and, behind wrappers and `find -exec`, each command it may run."""
    yield argv
    outer = _name(argv[0])
    if outer in WRAPPERS:
        starts: Sequence[int] = range(1, len(argv))
    elif outer in RUNS_AFTER:
        starts = [i + 1 for i, word in enumerate(argv) if word.text in RUNS_AFTER[outer]]
    else:
        return
    for start in starts:
        if start >= len(argv) or depth >= _MAX_NESTING:
            continue
        word = argv[start]
        inner = _name(word)
        if inner is None and ("=" in word.head or word.head.startswith("-")):
            continue  # `env A=$x …`, `sudo -u "$u" …`: an assignment or option, not a command
        if inner in (None, name) or inner in WRAPPERS or inner in RUNS_AFTER:
            yield from _candidates(argv[start:], name, depth + 1)


def _shape(argv: Sequence[Word]) -> _Shape:
    name = _name(argv[0])
    args, aliased = argv[1:], False
    if name == "git":
        front, args = _git_split(args)
        # `git -c alias.x=push x`: the subcommand could then be anything
        aliased = any("alias." in word.text.lower() for word in front)
    sub = args[0].text if args and args[0].static else ""
    synonyms = {**FLAG_SYNONYMS.get(name or "", {}), **FLAG_SYNONYMS.get(f"{name} {sub}", {})}
    flags: set[str] = set()
    operands: list[str | None] = []
    is_open = ended = False
    for word in args:
        text = word.text
        if not word.static:
            is_open = is_open or (not ended and _could_be_option(word))
            operands.append(None)
        elif ended or not text.startswith("-") or text == "-":
            operands.append(text)
        elif text == "--":
            ended = True
        else:
            flags.update(_flags(text, synonyms))
    if aliased and operands:
        operands[0] = None
    return _Shape(name, frozenset(flags), tuple(operands), is_open)


def _flags(text: str, synonyms: dict[str, str]) -> set[str]:
    """`-rf` → {-r, -f}; `--recursive` → {-r} for rm; `--mode=x` → {--mode=x, --mode}."""
    if text.startswith("--"):
        name = text.split("=", 1)[0]
        full = next((s for s in synonyms if len(name) >= 4 and s.startswith(name)), None)
        return set(synonyms[full].split()) if full else {text, name}
    letters = [f"-{c}" for c in text[1:]] if _SHORT_BUNDLE.fullmatch(text) else [text]
    return {flag for letter in letters for flag in synonyms.get(letter, letter).split()}


def _meet(rule: _Shape, prefix: bool, command: _Shape) -> Match:
    result = Match.YES
    if command.name is None:
        result = Match.MAYBE
    elif command.name != rule.name:
        return Match.NO
    if not rule.flags <= command.flags:
        if not command.open:
            return Match.NO
        result = Match.MAYBE
    if not prefix and not command.flags <= rule.flags:
        return Match.NO
    operands = command.operands
    for index, want in enumerate(rule.operands):
        if index >= len(operands):
            return Match.NO
        if operands[index] is None:
            return min(result, Match.MAYBE)
        if operands[index] != want:
            return Match.NO
    extra = operands[len(rule.operands) :]
    if not prefix and extra:
        return min(result, Match.MAYBE) if None in extra else Match.NO
    return result
