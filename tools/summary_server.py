"""A scripted stand-in for `sleep_model`: an OpenAI-compatible server on 127.0.0.1 (the tests'
`ScriptedLLMServer`) that answers each summary request with a summary made from the request
itself, deterministically, and counts the tokens it was sent and answered.

Its summary is the structural one the prompt carries (first line and symbol lines), followed by
the words the file's identifiers use most: what a model that read the file might add. It is no
model: figures measured with it say that model summaries flow through litellm, the budget, the
store and search as they should, not how good a real model's summaries would be.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.llm_server import Reply, ScriptedLLMServer

MODEL = "openai/scripted-summariser"
TOP_WORDS = 12
_FACTS = re.compile(r"# Facts the index already knows\n(.*?)\n# The file\n", re.DOTALL)
_CODE = re.compile(r"# The file\n+```\n(.*)\n```", re.DOTALL)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_COMMON = frozenset(
    [
        "self",
        "cls",
        "def",
        "return",
        "none",
        "true",
        "false",
        "import",
        "from",
        "class",
        "the",
        "and",
        "for",
        "not",
        "with",
        "len",
        "str",
        "int",
        "if",
        "else",
        "elif",
        "try",
        "except",
        "raise",
        "in",
        "is",
        "or",
        "as",
    ]
)


def tokens(text: str) -> int:
    """The server's count: a token per four characters, as `mcode.context` estimates."""
    return math.ceil(len(text) / 4)


def summary_for(prompt: str) -> str:
    """The reply to one request: the structural facts' first and symbol lines, then the file's
    most used identifier words."""
    facts = _FACTS.search(prompt)
    lines = facts.group(1).strip().splitlines() if facts else []
    kept = lines[:1] + [line for line in lines[1:] if line.startswith("- ")][:10]
    code = _CODE.search(prompt)
    words: Counter[str] = Counter()
    for name in _IDENTIFIER.findall(code.group(1) if code else ""):
        for word in _WORD.findall(name):
            word = word.lower()
            if len(word) > 2 and word not in _COMMON:
                words[word] += 1
    if words:
        kept.append("Key terms: " + ", ".join(w for w, _ in words.most_common(TOP_WORDS)))
    return "\n".join(kept)


class SummaryServer(ScriptedLLMServer):
    """Answers every chat request with `summary_for` its last message; never runs out."""

    model = MODEL

    def __init__(self) -> None:
        super().__init__()
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        messages = body.get("messages") or [{}]
        prompt = "".join(str(m.get("content") or "") for m in messages)
        text = summary_for(str(messages[-1].get("content") or ""))
        usage = (tokens(prompt), tokens(text))
        with self._lock:
            self.requests.append(body)
            self.prompt_tokens += usage[0]
            self.completion_tokens += usage[1]
        return Reply("text", text=text, usage=usage)

    @property
    def calls(self) -> int:
        return len(self.requests)
