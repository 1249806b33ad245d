"""What the model sees beside a hunk: the project's memory, and the code the index knows around it.

Memory is the `project` and `lessons` blocks, the same for every file of a run; its hash is the
memory version that results are cached by. Code comes from the index's manifest (no chunk table,
no vectors: it opens in milliseconds): for each hunk, the symbols it changes (the definitions in
its lines, or the one it sits in), the places that use them (tests first, since they say what the
code must keep doing), and the definitions of names the added lines use. Each hunk gets a token
budget; what does not fit is left out, least useful last. A repository nobody indexed is reviewed
from its diff and memory alone.

Files read for callers are the repository's, as they are on disk: secret files are never read, and
secrets in what is shown are redacted.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mcode.config import Settings
from mcode.context import estimate_tokens
from mcode.fsio import inside
from mcode.memory import BlockStore
from mcode.review.diff import FileDiff, Hunk
from mcode.secrets import is_secret_path, redact
from mcode.store import Manifest

REVIEW_BLOCKS = ("project", "lessons")
HUNK_CONTEXT_TOKENS = 1500
MAX_USE_FILES = 6  # per changed symbol
MAX_USE_LINES = 2  # per file that uses it
MAX_DEFINITIONS = 8  # of names the added lines use
MAX_DEFINING_FILES = 3  # a name defined in more places than this says little
MAX_READ_BYTES = 1_000_000
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_TEST_PATH = re.compile(r"(^|/)(tests?|spec|__tests__)/|(^|/)test_[^/]*$|_test\.[a-z]+$|\.spec\.")


@dataclass(frozen=True, slots=True)
class ReviewMemory:
    """The memory blocks as the model reads them, and the version that results are cached by."""

    text: str
    version: str

    @classmethod
    def read(cls, blocks: BlockStore) -> ReviewMemory:
        parts = []
        for label in REVIEW_BLOCKS:
            try:
                block = blocks.find(label)
            except Exception:  # a broken block: reviewed without it, as the agent works without it
                block = None
            if block is not None and block.value.strip():
                parts.append(f"## {label}\n\n{block.value.strip()}")
        text = "\n\n".join(parts) or "(the project's memory is empty)"
        return cls(text, hashlib.sha256(text.encode()).hexdigest())


def is_test_path(path: str) -> bool:
    return bool(_TEST_PATH.search(path))


class CodeFacts:
    """The manifest's definitions and references, read once per review."""

    def __init__(self, repo: Path, manifest: Manifest) -> None:
        self.repo = repo
        self.manifest = manifest
        columns = manifest.symbol_columns()
        self.references = dict(zip(columns.paths, columns.references, strict=True))
        self.definitions: dict[str, list[tuple[int, str]]] = {}
        self.defined_in: dict[str, list[tuple[str, int]]] = {}
        names, lines = iter(columns.names), iter(columns.lines)
        for path, count in zip(columns.defining, columns.counts, strict=True):
            rows = sorted((next(lines), next(names)) for _ in range(count))
            self.definitions[path] = rows
            for line, name in rows:
                self.defined_in.setdefault(name, []).append((path, line))
        self._texts: dict[str, list[str] | None] = {}

    @classmethod
    def open(cls, settings: Settings) -> CodeFacts | None:
        """None when the repository has no usable index."""
        from mcode.retrieval.workspace import open_manifest

        try:
            manifest = open_manifest(settings)
        except Exception:
            return None
        try:
            return cls(settings.paths.repo, manifest)
        except Exception:
            manifest.close()
            return None

    def close(self) -> None:
        self.manifest.close()

    def for_hunk(self, file: FileDiff, hunk: Hunk, budget: int = HUNK_CONTEXT_TOKENS) -> str:
        """The code around `hunk`, within `budget` tokens; "" when the index knows nothing."""
        changed = self._changed(file.name, hunk)
        lines: list[str] = []
        if changed:
            shown = ", ".join(f"{name} (line {line})" for line, name in changed)
            lines.append(f"Symbols this hunk changes in {file.name}: {shown}")
        for _, name in changed:
            uses = self._uses(name, file.name)
            if uses:
                lines.append(f"Where `{name}` is used (tests first):")
                lines += [f"  {use}" for use in uses]
        used = self._definitions_used(file.name, hunk, {name for _, name in changed})
        if used:
            lines.append("Definitions the added lines use:")
            lines += [f"  {row}" for row in used]
        return _within(lines, budget)

    def _changed(self, path: str, hunk: Hunk) -> list[tuple[int, str]]:
        """The definitions the hunk's changed lines sit in or start: the one enclosing its first
        changed line, and those that begin after it, up to its last (not its context lines)."""
        changed = [line.number for line in hunk.lines if line.kind != " "]
        if not changed:
            return []
        first, last = min(changed), max(changed)
        rows = self.definitions.get(path, [])
        start = bisect.bisect_right(rows, (first, "\uffff"))
        enclosing = [rows[start - 1]] if start else []
        return enclosing + [row for row in rows[start:] if row[0] <= last]

    def _uses(self, name: str, own: str) -> list[str]:
        needle = f'"{name}"'
        files = [p for p, refs in self.references.items() if p != own and needle in refs]
        files.sort(key=lambda p: (not is_test_path(p), p))
        word = re.compile(rf"\b{re.escape(name)}\b")
        out = []
        for path in files[:MAX_USE_FILES]:
            text = self._lines(path)
            if text is None:
                continue
            found = [(n, t) for n, t in enumerate(text, 1) if word.search(t)][:MAX_USE_LINES]
            tag = " [test]" if is_test_path(path) else ""
            out += [f"{path}:{n}:{tag} {redact(t.strip())[:200]}" for n, t in found]
        return out

    def _definitions_used(self, path: str, hunk: Hunk, skip: set[str]) -> list[str]:
        names = dict.fromkeys(n for line in hunk.added() for n in _IDENTIFIER.findall(line.text))
        keys = []
        for name in names:
            places = self.defined_in.get(name, [])
            if name in skip or not places or len(places) > MAX_DEFINING_FILES:
                continue
            keys += [(p, name, line) for p, line in places if not (p == path and _near(hunk, line))]
            if len(keys) >= MAX_DEFINITIONS:
                break
        rows = self.manifest.definitions_at(keys[:MAX_DEFINITIONS]) if keys else []
        return [f"{r.path}:{r.line}: {redact(r.signature.strip())[:300]}" for r in rows]

    def _lines(self, path: str) -> list[str] | None:
        if path not in self._texts:
            self._texts[path] = _read_lines(self.repo, path)
        return self._texts[path]


def _near(hunk: Hunk, line: int) -> bool:
    return hunk.new_start <= line <= hunk.new_end


def _read_lines(repo: Path, path: str) -> list[str] | None:
    if is_secret_path(path):
        return None
    try:
        file = inside(repo, repo / path)  # UnsafePathError (an OSError) for a link out
        if file.stat().st_size > MAX_READ_BYTES:
            return None
        return file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None


def _within(lines: Iterable[str], budget: int) -> str:
    kept: list[str] = []
    spent = 0
    for line in lines:
        cost = estimate_tokens(line) + 1
        if spent + cost > budget:
            break
        kept.append(line)
        spent += cost
    return "\n".join(kept)
