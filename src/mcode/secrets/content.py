"""Finding secrets in text by their content, and redacting them so that nothing else changes.

Three kinds of evidence:
- a value whose shape names its issuer: AWS access key ids, GitHub, GitLab, Slack, Stripe, OpenAI,
  Anthropic and Google keys and tokens, JWTs, PEM private key blocks, the password of a URL's
  `user:password@`, a Slack webhook's path;
- a literal assigned to a secret's name (see `names`): `password = "…"`, `"apiKey": "…"`,
  `export TOKEN=…`, `aws_secret_access_key = …`, `Authorization: Bearer …`, in code, JSON, YAML,
  TOML, INI, .env or shell syntax. An unquoted value counts only when it ends its line, as values
  do in configuration files. A password may be any word; a key, token or secret must look
  generated (letters and digits, no commas, not a few characters repeated);
- a generated-looking literal of 16 characters or more assigned to any name with a secret's word
  in it (`SECRET_ACCESS_KEY_ID`, `signing_key_v2`), unless it is a hex digest or a UUID.

What is not a secret: an expression (`password = getpass()`, `token = tokens[0]`,
`key = self.key`), a placeholder (`${TOKEN}`, `<password>`, `changeme`, `xxxx`), a path, a URL, the
name of an environment variable, prose (a value with spaces), and a bare `key` (`key = "name"`).

This runs over every file the index reads, so it is built for speed: each regex starts with a
literal, which `re` skips ahead to fast (an alternation of literals or a case-insensitive pattern
is several times slower); names are looked for in a lower-cased copy, and parsed only where a
secret's word meets an assignment operator. On the standard library (37 MB, ~0.3 s) it finds 15
values, all passwords: of test fixtures, and one in a docstring's example. Text comes from strangers'
repositories, so every repetition is bounded or possessive: a file built to make the patterns
backtrack costs well under a second per megabyte.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from dataclasses import dataclass

from mcode.secrets.names import is_secret_name, mentions_secret, snake_name

REDACTED = "[REDACTED"  # every marker starts so: `[REDACTED:aws-secret]`


@dataclass(frozen=True, slots=True)
class Secret:
    """One secret value in a text: `text[start:end]`, of a kind such as "aws-access-key"."""

    kind: str
    start: int
    end: int


def marker(kind: str) -> str:
    return f"{REDACTED}:{kind}]"


# Values by their shape ----------------------------------------------------------------------------

# Each pattern starts with a literal, so that `re` skips ahead to it fast. The named group that
# matched gives the kind; the secret is the whole match (which must not continue a word on its
# left: checked in code, since a look-behind at the start would make `re` stop everywhere), or for
# _PART_KINDS only the group.
_SHAPES: tuple[re.Pattern[str], ...] = (
    re.compile(
        r"A(?:(?P<aws_access_key>[KS]IA[0-9A-Z]{16})(?![0-9A-Za-z])"
        r"|(?P<google_key>Iza[0-9A-Za-z_-]{35}))"
    ),
    re.compile(
        r"g(?:(?P<github_token>h[pousr]_[A-Za-z0-9]{20,255}+|ithub_pat_[A-Za-z0-9_]{22,255}+)"
        r"|(?P<gitlab_token>l(?:pat|dt|rt|ptt|cbt|oas)-[A-Za-z0-9_-]{20,255}+))"
    ),
    re.compile(r"(?P<slack_token>xox[abposre]-[A-Za-z0-9-]{10,255}+)"),
    # OpenAI's keys are sk- and 48 letters or digits, or sk-proj-…; both hold capitals or digits,
    # which words joined by hyphens (`sk-learn-…`) do not.
    re.compile(
        r"sk(?:(?P<anthropic_key>-ant-[A-Za-z0-9_-]{20,255}+)"
        r"|(?P<stripe_key>_(?:live|test)_[A-Za-z0-9]{16,255}+)"
        r"|(?P<openai_key>-(?=[a-z_-]{0,40}+[A-Z0-9])[A-Za-z0-9_-]{20,255}+))"
    ),
    re.compile(
        r"(?P<jwt>eyJ[A-Za-z0-9_-]{8,512}+\.eyJ[A-Za-z0-9_-]{8,8192}+\.[A-Za-z0-9_-]{0,1024}+)"
    ),
    re.compile(
        r"://(?:[^\s/:@\"'<>]{1,256}+:(?P<url_password>[^\s/@\"'<>]{1,256}+)@(?=[\w\[])"
        r"|hooks\.slack\.com/(?P<slack_webhook>services/[^\s\"'<>]{1,256}+))"
    ),
)

_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]{1,12} ){0,4}PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]{1,12} ){0,4}PRIVATE KEY(?: BLOCK)?-----")
_PEM_MAX = 20_000  # an RSA-8192 key is ~6.5 KB; further than this, the END is another key's
# Without an END line (a page cut short): the base64 lines that follow, quoted or escaped.
_PEM_LINES = re.compile(r"(?:(?:[\s\"',+]|\\[nr])*+[A-Za-z0-9+/=]{16,}+)+")
_PEM_EDGE = re.compile(r"(?:[\s\"',+()]|\\[nr])*+")
_PEM_EDGE_CHARS = " \t\r\n\"',+()"


def _private_keys(text: str) -> list[Secret]:
    """PEM private key blocks: the lines between BEGIN and END (the markers stay, so that a
    reader still sees what was there)."""
    found: list[Secret] = []
    ends = [m.start() for m in _PEM_END.finditer(text)]
    for begin in _PEM_BEGIN.finditer(text):
        start = begin.end()
        if found and start < found[-1].end:
            continue  # a BEGIN inside the block before
        following = bisect.bisect_left(ends, start)
        if following < len(ends) and ends[following] - start <= _PEM_MAX:
            stop = ends[following]
        else:
            lines = _PEM_LINES.match(text, start)
            stop = lines.end() if lines else start
        lead = _PEM_EDGE.match(text, start, stop)
        start = lead.end() if lead else start
        stop = _trimmed_end(text, start, stop)
        if stop > start:
            found.append(Secret("private-key", start, stop))
    return found


def _trimmed_end(text: str, start: int, stop: int) -> int:
    """`stop` moved back over quotes, commas, whitespace and `\\n` escapes."""
    while stop > start:
        if text[stop - 1] in _PEM_EDGE_CHARS:
            stop -= 1
        elif stop - start >= 2 and text[stop - 2] == "\\" and text[stop - 1] in "nr":
            stop -= 2
        else:
            break
    return stop


# Kinds whose group is a part of the match (the rest of the match is what shows it is one).
_PART_KINDS = frozenset({"url_password", "slack_webhook"})


def _shapes(text: str) -> list[Secret]:
    found = []
    for pattern in _SHAPES:
        for match in pattern.finditer(text):
            kind = match.lastgroup or ""
            if kind in _PART_KINDS:
                start, end = match.span(kind)
                if match[kind].lower() in _PLACEHOLDERS:
                    continue  # `https://user:password@example.com`
            else:
                start, end = match.span()
                if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
                    continue  # the middle of a longer word
            found.append(Secret(kind.replace("_", "-"), start, end))
    return found


# Values by their name ---------------------------------------------------------------------------

# In the lower-cased text: a name containing one of these words, then an assignment operator.
_NAME_HITS = tuple(
    re.compile(word + r"[\w.-]{0,64}+[\"'`]?\]?[ \t]{0,16}+(?:=>|:=|=|:)")
    for word in ("p(?:ass|wd)", "secret", "token", "key", "auth")
)
_NAME_REACH = 128  # how far left of a hit a name may start
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_NAME = r"(?P<name>[A-Za-z_][\w.-]*+)[\"'`]?\]?"
_OP = r"[ \t]*+(?:=>|:=|=(?!=)|:(?!:))[ \t]*+"
_SCHEME = r"(?:(?i:bearer|basic|token|digest)[ \t]+)?"
# `password = "…"`, `"apiKey": '…'`, `password: str = "…"`, `f(password="…")`, `$a['pass'] => '…'`
_QUOTED = re.compile(
    _NAME
    + r"(?:[ \t]*:[ \t]*[A-Za-z_][\w.\[\], |]{0,80}?)?"
    + _OP
    + r"[rRbBuU]{0,2}(?P<q>[\"'`])"
    + _SCHEME
    + r"(?P<v>[^\"'`\n]*+)(?P=q)"
)
# `PASSWORD=hunter2`, `password: hunter2`, `aws_secret_access_key = …`, `Authorization: Basic …`:
# an unquoted value that ends its line (a trailing comment or separator aside).
_UNQUOTED = re.compile(
    _NAME + _OP + _SCHEME + r"(?P<v>[^\s\"'`,;]{1,256}+)[,;]?(?:[ \t]+(?:#|//)[^\n]*)?[ \t]*$"
)
# `-H "Authorization: Bearer …"`: a header's value, wherever it stands.
_HEADER = re.compile(
    r"(?P<name>(?:proxy-)?authorization)[\"']?[ \t]*[:=][ \t]*[\"']?(?:bearer|basic|token|digest)"
    r"[ \t]+(?P<v>[A-Za-z0-9._~+/-]{8,512}+=*+)",
    re.IGNORECASE,
)
# Code, templates and placeholders: `getpass()`, `${TOKEN}`, `$TOKEN`, `%(password)s`, `<token>`,
# `{{ secret }}`, `***`, paths and URLs.
_NOT_A_LITERAL = re.compile(
    r"[()\[\]{}<>\\]|^[@&*!$%]|\$[{(]|%[sd(]|^\.{0,2}/|^~/|://|\*\*\*|^" + re.escape(REDACTED)
)
_IDENTIFIER = re.compile(r"[A-Za-z_][\w.]*")
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_HEX = re.compile(r"[0-9a-fA-F-]+")
_PLACEHOLDERS_TEXT = """
    none null nil true false yes no on off undefined required optional password passwd pass secret
    token changeme change_me example dummy test testing placeholder redacted hidden your_password
    your-password yourpassword mypassword your_token your-token your_api_key
"""
_PLACEHOLDERS = frozenset(_PLACEHOLDERS_TEXT.split())
_PASSWORD_WORDS = frozenset({"pass", "passwd", "password", "passphrase", "pwd"})
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _lowered(text: str) -> str:
    """A lower-cased copy whose offsets are the text's (`İ`.lower() is two characters)."""
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else text.translate(_ASCII_LOWER)


def _assignments(text: str) -> list[Secret]:
    """Values assigned to names that a secret's word is part of, parsed where the word is."""
    lowered = _lowered(text)
    found = []
    seen: set[int] = set()
    for pattern in _NAME_HITS:
        end = -1
        for hit in pattern.finditer(lowered):
            start = hit.start()
            reach = max(0, start - _NAME_REACH)
            while start > reach and text[start - 1] in _NAME_CHARS:
                start -= 1
            while start < hit.start() and not (text[start].isalpha() or text[start] == "_"):
                start += 1  # `--password=…`, `.token = …`
            if start in seen:
                continue
            seen.add(start)
            if end < hit.end():  # the end of the hit's line, found once per line
                end = text.find("\n", hit.end())
                end = len(text) if end == -1 else end
            for parser in (_QUOTED, _UNQUOTED, _HEADER):
                match = parser.match(text, start, end)
                if match is None:
                    continue
                kind = _judge(match["name"], match["v"], quoted=parser is not _UNQUOTED)
                if kind is not None:
                    found.append(Secret(kind, match.start("v"), match.end("v")))
                break
    return found


def _judge(name: str, value: str, *, quoted: bool) -> str | None:
    """The kind of secret `name = value` assigns, or None when the value cannot be one."""
    if not _literal(value, quoted):
        return None
    snake = snake_name(name.rsplit(".", 1)[-1])
    if is_secret_name(snake):
        if snake.rsplit("_", 1)[-1] in _PASSWORD_WORDS:
            return "password"
        if _random(value):
            return "aws-secret" if "aws" in snake else "secret"
        return None
    # Any other name with a secret's word in it: only a value that cannot be a word or a digest.
    if "_" in snake and mentions_secret(snake) and len(value) >= 16 and _random(value):
        return None if _HEX.fullmatch(value) else "secret"
    return None


def _literal(value: str, quoted: bool) -> bool:
    """Whether a value can be a real secret: a literal, not a placeholder, a path, a URL or an
    expression."""
    if len(value) < 4 or any(c.isspace() for c in value):
        return False
    if _NOT_A_LITERAL.search(value) or value.lower() in _PLACEHOLDERS:
        return False
    if len(set(value)) < 3 or _ENV_NAME.fullmatch(value):  # `xxxx`, `****`; `OPENAI_API_KEY`
        return False
    if quoted or not _IDENTIFIER.fullmatch(value):
        return True
    # Unquoted, a name is a variable (`token = tok`, `key = self.key`, `RC2_KEY = rc2_key_st`);
    # one word with a digit in it is a value (`PASSWORD=hunter2`).
    return "." not in value and "_" not in value and any(c.isdigit() for c in value)


def _random(value: str) -> bool:
    """Whether a value looks generated rather than written: eight characters or more, letters and
    digits, no commas (a list), and not a few characters repeated."""
    if len(value) < 8 or "," in value:
        return False
    if not any(c.isdigit() for c in value) or not any(c.isalpha() for c in value):
        return False
    return _entropy(value) >= 3.0


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in Counter(value).values())


# The public face ----------------------------------------------------------------------------------


def find_secrets(text: str) -> list[Secret]:
    """The secrets in `text`, in order, none overlapping another."""
    if not text:
        return []
    found = _shapes(text) + _assignments(text)
    if "-----BEGIN" in text:
        found += _private_keys(text)
    found.sort(key=lambda s: (s.start, -s.end))
    merged: list[Secret] = []
    for secret in found:
        if merged and secret.start < merged[-1].end:
            last = merged[-1]
            if secret.end > last.end:
                merged[-1] = Secret(last.kind, last.start, secret.end)
            continue
        merged.append(secret)
    return merged


def redact(text: str) -> str:
    """`text` with every secret replaced by a marker naming its kind (`[REDACTED:aws-secret]`).
    The rest of each line stays, and so does every line: a private key's lines become empty."""
    secrets = find_secrets(text)
    if not secrets:
        return text
    parts = []
    at = 0
    for secret in secrets:
        parts.append(text[at : secret.start])
        parts.append(marker(secret.kind) + "\n" * text.count("\n", secret.start, secret.end))
        at = secret.end
    parts.append(text[at:])
    return "".join(parts)
