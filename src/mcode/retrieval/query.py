"""Reading a query the way a developer wrote it: prose, code, a traceback, or all three.

Real bug reports name paths, modules (`pkg.mod.Class`), functions and stack-trace frames. Those are the
strongest evidence of where the code is, so they are pulled out here and weighed by the searcher; the
rest becomes a bounded bag of words for full-text search, so a several-kB report costs no more than a
short question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mcode.index.terms import split_identifier

MAX_TERMS = 48
MAX_VECTOR_CHARS = 800  # ~200 tokens: the summary of a report; longer inputs only cost time

_FRAME_PATTERNS = (
    re.compile(r'File "([^"]+)", line (\d+)'),  # Python
    re.compile(
        r"at (?:[\w.$<>]+ )?\(?((?:[\w.\-]+/)*[\w.\-]+\.\w+):(\d+)(?::\d+)?\)?"
    ),  # JS/Java/Go
    re.compile(r"((?:[\w.\-]+/)+[\w.\-]+\.\w+):(\d+)"),  # path/to/file.rs:12
)
_PATHLIKE = re.compile(
    r"(?:[\w.\-]+/)+[\w.\-]+|[\w\-]+\.(?:py|pyi|js|jsx|ts|tsx|go|rs|java|c|h|cc|cpp|hpp|cs|rb|php|kt|swift|sh|bash|md|toml|yaml|yml|json)\b"
)
_DOTTED = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\b")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CODE_SPAN = re.compile(r"`([^`\n]{1,200})`")

STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers him his how i if in into is it its itself just let me more
    most my no nor not now of off on once only or other our out over own same she should so some
    such than that the their them then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours get
    got use used using like want need make makes made way work works working please thanks hi hello
    issue bug problem error fix happens
    """.split()  # noqa: SIM905 - a word list reads best as words
)


@dataclass(frozen=True, slots=True)
class Frame:
    path: str
    line: int


@dataclass(slots=True)
class QueryAnalysis:
    text: str
    terms: list[str] = field(default_factory=list)  # for full-text search
    identifiers: dict[str, float] = field(default_factory=dict)  # name -> how code-like (0..1]
    paths: list[str] = field(default_factory=list)  # path fragments mentioned
    frames: list[Frame] = field(default_factory=list)
    mentions_tests: bool = False

    @property
    def vector_text(self) -> str:
        return self.text[:MAX_VECTOR_CHARS]


def _codeness(token: str, in_code: bool) -> float:
    """How sure we are that a word names code: snake_case, CamelCase, dotted or quoted are sure."""
    if in_code or "_" in token.strip("_") or re.search(r"[a-z][A-Z]", token):
        return 1.0
    if token[:1].isupper() and any(c.islower() for c in token[1:]):
        return 0.5  # Capitalised: a class name, or the first word of a sentence
    return 0.25


def analyze(text: str) -> QueryAnalysis:
    analysis = QueryAnalysis(text=text)
    for pattern in _FRAME_PATTERNS:
        for match in pattern.finditer(text):
            frame = Frame(match.group(1), int(match.group(2)))
            if frame not in analysis.frames:
                analysis.frames.append(frame)
    code_spans = " ".join(_CODE_SPAN.findall(text))
    for match in _PATHLIKE.finditer(text):
        candidate = match.group(0).strip("./")
        if candidate and candidate not in analysis.paths and not candidate.startswith("http"):
            analysis.paths.append(candidate)
    identifiers: dict[str, float] = {}
    for match in _DOTTED.finditer(text):
        dotted = match.group(0)
        parts = dotted.split(".")
        if len(parts) >= 2 and not all(p.islower() and len(p) < 3 for p in parts):
            module_path = "/".join(parts)
            if module_path not in analysis.paths:
                analysis.paths.append(module_path)
            for part in parts:
                identifiers[part] = max(identifiers.get(part, 0.0), 0.75)
    code_words = set(_WORD.findall(code_spans))
    for word in _WORD.findall(text):
        if len(word) < 3 or word.lower() in STOPWORDS:
            continue
        # followed by "(" → called
        score = _codeness(word, word in code_words)
        identifiers[word] = max(identifiers.get(word, 0.0), score)
    for call in re.finditer(r"\b([A-Za-z_]\w*)\(", text):
        name = call.group(1)
        if len(name) >= 3 and name.lower() not in STOPWORDS:
            identifiers[name] = 1.0
    analysis.identifiers = identifiers
    analysis.terms = _terms(identifiers)
    lowered = text.lower()
    analysis.mentions_tests = bool(
        re.search(r"\b(tests?|pytest|unittest|spec|testing|fixture)\b", lowered)
    )
    return analysis


def _terms(identifiers: dict[str, float]) -> list[str]:
    """Full-text terms: code names first (whole and split), then longer words; bounded."""
    ranked = sorted(identifiers.items(), key=lambda kv: (-kv[1], -len(kv[0])))
    terms: dict[str, None] = {}
    for name, _ in ranked:
        for term in [name.lower(), *split_identifier(name)]:
            if len(term) >= 2 and term not in STOPWORDS:
                terms[term] = None
        if len(terms) >= MAX_TERMS:
            break
    return list(terms)[:MAX_TERMS]
