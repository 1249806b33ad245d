"""What a review reports: findings, their severities and ids, and the model's answer checked.

A finding's id names the same problem on the same code across runs, whatever line it moved to: a
hash of what it relies on (the rule, or the memory line the model quoted), the file and the flagged
line's text. Dismissals are recorded by it (`dismissals`).

The model answers through the `report_findings` tool (`REPORT_TOOL`), or with the same JSON as
text. `read_answer` checks it against the change: a malformed answer is a `MalformedAnswer` naming
what is wrong (the caller asks once more, then gives up); a finding on a line the change does not
add is dropped, since the review reports only what the change introduces; a finding whose quote is
not in the memory it was given (a few words of it, at least) cannot block a commit: it becomes a
warning at most.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from mcode.memory.rules import SEVERITIES
from mcode.review.diff import FileDiff

ID_CHARS = 10
MAX_MESSAGE_CHARS = 1000
MAX_SNIPPET_CHARS = 200
MIN_QUOTE_CHARS = 12  # a few words: "the" is in every memory, and proves nothing
REPORT_TOOL_NAME = "report_findings"
REPORT_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": REPORT_TOOL_NAME,
        "description": "Report the review's findings for this file; an empty list when none.",
        "parameters": {
            "type": "object",
            "properties": {
                "findings": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "line": {"type": "integer", "description": "An added line's number."},
                            "severity": {"type": "string", "enum": list(SEVERITIES)},
                            "quote": {
                                "type": "string",
                                "description": "The memory line the finding relies on, verbatim.",
                            },
                            "message": {"type": "string"},
                            "suggestion": {
                                "type": "string",
                                "description": "Optional replacement for the line.",
                            },
                        },
                        "required": ["line", "severity", "quote", "message"],
                    },
                },
            },
            "required": ["findings"],
        },
    },
}


class MalformedAnswer(ValueError):
    """The model's answer is not the findings asked for; the message says what is wrong."""


def rank(severity: str) -> int:
    """0 for the most severe."""
    return SEVERITIES.index(severity)


def at_least(severity: str, threshold: str) -> bool:
    return rank(severity) <= rank(threshold)


@dataclass(frozen=True, slots=True)
class Finding:
    path: str
    line: int
    severity: str
    message: str
    basis: str  # the memory line or the rule relied on, quoted
    rule: str = ""  # "block/id" of an offline rule; "" for the model's findings
    snippet: str = ""  # the flagged line
    suggestion: str = ""
    id: str = ""

    @property
    def source(self) -> str:
        return "rule" if self.rule else "model"

    @property
    def kind(self) -> str:
        """What the finding relies on: dismissals of one kind add up to a lesson."""
        return f"rule:{self.rule}" if self.rule else f"memory:{_normal(self.basis)}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "source": self.source}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """A finding as `to_dict` wrote it; ValueError for anything else (a damaged cache)."""
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "id"}
        text = all(isinstance(v, str) for k, v in fields.items() if k != "line")
        line = fields.get("line")
        if not text or not isinstance(line, int) or fields.get("severity") not in SEVERITIES:
            raise ValueError("not a finding")
        return finding(**fields)


def finding(**fields: Any) -> Finding:
    """A Finding with its id."""
    made = Finding(**{**fields, "id": ""})
    key = f"{made.kind}\0{made.path}\0{_normal(made.snippet)}"
    return replace(made, id=hashlib.sha256(key.encode()).hexdigest()[:ID_CHARS])


def _normal(text: str) -> str:
    return " ".join(text.split()).lower()


def snippet(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_SNIPPET_CHARS else text[: MAX_SNIPPET_CHARS - 1] + "…"


def decode_answer(arguments: str | None, content: str) -> Any:
    """The JSON the model sent: its tool call's arguments, else the first object in its text."""
    if arguments is not None:
        source = arguments
    else:
        start, end = content.find("{"), content.rfind("}")
        if start < 0 or end < start:
            raise MalformedAnswer(f"no {REPORT_TOOL_NAME} call and no JSON object in the answer")
        source = content[start : end + 1]
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        raise MalformedAnswer(f"the findings are not valid JSON ({exc})") from None


def read_answer(data: Any, file: FileDiff, memory: str) -> tuple[list[Finding], int]:
    """The findings in the model's decoded answer about `file`, and how many were dropped because
    they point at no line the change adds. `memory` is the text the model was shown."""
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        raise MalformedAnswer('the answer must be an object {"findings": [...]}')
    added = file.added_numbers()
    memory_text = _normal(memory)
    found: list[Finding] = []
    dropped = 0
    for position, item in enumerate(data["findings"], 1):
        where = f"finding {position}"
        if not isinstance(item, dict):
            raise MalformedAnswer(f"{where} is not an object")
        line = _line(item.get("line"), where)
        severity = item.get("severity")
        if severity not in SEVERITIES:
            raise MalformedAnswer(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
        message = item.get("message")
        if not isinstance(message, str) or not message.strip():
            raise MalformedAnswer(f"{where}: message must be non-empty text")
        quote = item.get("quote", "")
        suggestion = item.get("suggestion") or ""
        if not isinstance(quote, str) or not isinstance(suggestion, str):
            raise MalformedAnswer(f"{where}: quote and suggestion must be text")
        if line not in added:
            dropped += 1
            continue
        quoted = len(_normal(quote)) >= MIN_QUOTE_CHARS and _normal(quote) in memory_text
        if severity == "error" and not quoted:
            severity = "warning"  # only memory it was given can block a commit
        found.append(
            finding(
                path=file.name,
                line=line,
                severity=severity,
                message=" ".join(message.split())[:MAX_MESSAGE_CHARS],
                basis=quote.strip(),
                snippet=snippet(file.line_text(line) or ""),
                suggestion=suggestion.rstrip("\n"),
            )
        )
    return found, dropped


def _line(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise MalformedAnswer(f"{where}: line must be a line number")
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        return int(value)
    if not isinstance(value, int):
        raise MalformedAnswer(f"{where}: line must be a line number")
    return value
