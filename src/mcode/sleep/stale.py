"""Memory lines that name files or symbols the code no longer has.

A convention in the `project` block that names `src/parse.py` or `OldParser` outlives the file or
class it is about; the agent then follows it into code that is gone. Such a line is only flagged
(in `mcode sleep --status`), never edited: a person may have written it, and only they know
whether the fact moved or died. A path counts as present when it is an indexed file or directory
(or a file name some indexed path ends with); a backticked name from code (`snake_case`, `CamelCase`,
`a.b`, `f()`) when indexed files define or use each of its parts, so names from libraries the code
calls (`os.path`) are not flagged while the code calls them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mcode.memory import BlockStore, BlockStoreError
from mcode.store import Manifest

LABELS = ("project", "lessons")
_BACKTICKED = re.compile(r"`([^`\s]+)`")
_PATH = re.compile(
    r"(?<![\w./-])((?:[\w.-]+/)+[\w.-]+|[\w-]+\.(?:py|js|ts|tsx|go|rs|java|rb|c|h|cpp))\b"
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?:\(\))?")
# What reads as a name from code rather than a word: snake_case, CamelCase, dotted or called.
_CODE_NAME = re.compile(r"_|\.|\(\)|[a-z][A-Z]|^[A-Z][a-z0-9]+[A-Z]")


@dataclass(frozen=True, slots=True)
class StaleLine:
    label: str
    line: int  # 1-based, in the block's value
    text: str
    missing: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {"label": self.label, "line": self.line, "text": self.text, "missing": self.missing}


def stale_lines(
    blocks: BlockStore, manifest: Manifest, labels: Sequence[str] = LABELS
) -> list[StaleLine]:
    paths = manifest.paths()
    if not paths:
        return []  # nothing indexed: everything would look gone
    known_paths = set(paths) | {
        p.rsplit("/", i)[0] for p in paths for i in range(1, p.count("/") + 1)
    }
    names = {p.rsplit("/", 1)[-1] for p in paths}
    known_words: set[str] = set()
    for _, defs, refs in manifest.symbols():
        known_words.update(d.name for d in defs)
        known_words.update(refs)
    out = []
    for label in labels:
        try:
            block = blocks.find(label)
        except BlockStoreError:
            continue
        if block is None:
            continue
        for number, text in enumerate(block.value.splitlines(), 1):
            missing = _missing(text, known_paths, names, known_words)
            if missing:
                out.append(StaleLine(label, number, text.strip(), tuple(missing)))
    return out


def _missing(text: str, paths: set[str], names: set[str], words: set[str]) -> list[str]:
    gone = []
    for match in _PATH.finditer(text):
        path = match.group(1).strip("./")
        known = path in paths if "/" in path else path in names
        if not known:
            gone.append(path)
    for match in _BACKTICKED.finditer(text):
        token = match.group(1)
        if not _IDENTIFIER.fullmatch(token) or not _CODE_NAME.search(token):
            continue
        parts = token.removesuffix("()").split(".")
        # The index keeps no names under three characters: those cannot be told gone.
        if not all(part in words or len(part) < 3 for part in parts) and token not in gone:
            gone.append(token)
    return gone
