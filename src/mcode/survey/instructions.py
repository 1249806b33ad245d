"""The instruction files a repository keeps for coding agents: AGENTS.md (Codex), CLAUDE.md (with
its `@imports`), CONVENTIONS.md (Aider), .cursorrules; read inside the repository and held to one
cap, Codex's 32 KiB for AGENTS.md, across all the files one reader takes.

Two readers: the system prompt takes AGENTS.md then CLAUDE.md from the root, redacted, every session
(`read_project_instructions`); `mcode init` collects them all into the project block
(`collect_instructions`). A file that a link leads out of the repository (a CLAUDE.md pointing at
~/.ssh/id_rsa), or into .git or .agentmemory, is never read, and the reader's `on_skip` says why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mcode.fsio import UnsafePathError, inside
from mcode.secrets import is_secret_path, redact

INSTRUCTIONS_CAP = 32 * 1024
PROMPT_FILES = ("AGENTS.md", "CLAUDE.md")

Skip = Callable[[str], None]


def _quietly(reason: str) -> None:
    pass


@dataclass(frozen=True, slots=True)
class InstructionFile:
    """One instruction file, as much of it as fits under the cap."""

    path: str  # repo-relative
    text: str
    omitted_bytes: int = 0  # left out to stay within the cap
    imported_by: str | None = None  # "CLAUDE.md" for a file it pulls in with @path

    @property
    def truncated(self) -> bool:
        return self.omitted_bytes > 0


def repo_file(root: Path, path: Path, on_skip: Skip = _quietly) -> Path | None:
    """Where `path` really is, when that is a file inside the repository; None when it is no file,
    or, after telling `on_skip` why, when a link leads outside or into git's or mcode's own data."""
    try:
        real = inside(root, path)
    except UnsafePathError as exc:
        on_skip(str(exc))
        return None
    return real if real.is_file() else None


# For the system prompt ----------------------------------------------------------------------------


def read_project_instructions(
    repo_root: Path, cap_bytes: int = INSTRUCTIONS_CAP, on_skip: Skip = _quietly
) -> list[InstructionFile]:
    """AGENTS.md, then CLAUDE.md, from the repo root, redacted; `cap_bytes` across both. A
    CLAUDE.md that is the same file or the same text as AGENTS.md (a common symlink) is read once;
    an unreadable file is skipped as if absent."""
    found: list[InstructionFile] = []
    seen: list[tuple[Path, str]] = []
    left = cap_bytes
    for name in PROMPT_FILES:
        real = repo_file(repo_root, repo_root / name, on_skip)
        if real is None:
            continue
        try:
            data = real.read_bytes()
        except OSError:
            continue
        text = data.decode("utf-8", errors="replace").strip()
        if not text or any(real == p or text == t for p, t in seen) or left <= 0:
            continue
        seen.append((real, text))
        omitted = max(len(data) - left, 0)
        if omitted:
            text = data[:left].decode("utf-8", errors="ignore").rstrip()
        left -= len(data)
        found.append(InstructionFile(name, redact(text), omitted))
    return found


# For `mcode init` ---------------------------------------------------------------------------------


def collect_instructions(
    root: Path, files: Iterable[str], cap: int = INSTRUCTIONS_CAP, on_skip: Skip = _quietly
) -> list[InstructionFile]:
    """AGENTS.md files root-down, then CLAUDE.md with its @imports, CONVENTIONS.md, .cursorrules;
    each cut at a line end to keep within `cap` bytes in all, with secret values redacted (the
    memory block they seed goes to the model every session). A file that is not UTF-8 is left
    out."""
    listed = set(files)
    agents = [f for f in listed if f == "AGENTS.md" or f.endswith("/AGENTS.md")]
    if (root / "AGENTS.md").is_file():
        agents.append("AGENTS.md")
    wanted: list[tuple[str, str | None]] = [
        (p, None) for p in sorted(set(agents), key=lambda p: (p.count("/"), p))
    ]
    for name in ("CLAUDE.md", ".claude/CLAUDE.md"):
        if (root / name).is_file():
            wanted.append((name, None))
            taken = {p for p, _ in wanted}
            wanted += [(p, name) for p in claude_imports(root, name, on_skip) if p not in taken]
    wanted += [(n, None) for n in ("CONVENTIONS.md", ".cursorrules") if (root / n).is_file()]

    out: list[InstructionFile] = []
    budget = cap
    seen: set[Path] = set()
    for path, imported_by in wanted:
        # CLAUDE.md is often a symlink to AGENTS.md: import each file once.
        real = repo_file(root, root / path, on_skip)
        if real is None or real in seen:
            continue
        seen.add(real)
        text = _read_text(real)
        if text is None or not text.strip():
            continue
        kept, omitted = _fit(redact(text.strip()), budget)
        budget -= len(kept.encode("utf-8"))
        out.append(InstructionFile(path, kept, omitted, imported_by))
    return out


_CODE = re.compile(r"```.*?```|~~~.*?~~~|`[^`\n]*`", re.S)
_IMPORT = re.compile(r"(?<![\w@/.`])@([^\s`'\"<>()\[\]{},;]+)")


def claude_imports(root: Path, name: str, on_skip: Skip = _quietly) -> list[str]:
    """The repo files CLAUDE.md pulls in with `@path`, one level deep, each once.

    Paths outside the repository (`@~/…`, `@/etc/…`, `@../x`) are not followed: the block is
    shared with the team, and a person's home files are not the team's to read.
    """
    source = repo_file(root, root / name)  # collect_instructions says why when it is skipped
    if source is None:
        return []
    text = _CODE.sub("", _read_text(source) or "")
    top = root.resolve()
    seen = {source}
    found: list[str] = []
    for match in _IMPORT.finditer(text):
        target = match.group(1).rstrip(".:!?")
        if target.startswith(("~", "/")):
            continue
        if is_secret_path(target):  # `@.env`: keys go into no memory block, whoever asks
            on_skip(f"{target}: looks like a secret; not imported")
            continue
        path = repo_file(root, (root / name).parent / target, on_skip)
        if path is None or path in seen:
            continue
        seen.add(path)
        found.append(path.relative_to(top).as_posix())
    return found


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _fit(text: str, budget: int) -> tuple[str, int]:
    """`text` cut at a line end to fit `budget` UTF-8 bytes, and how many bytes were left out."""
    data = text.encode("utf-8")
    if len(data) <= budget:
        return text, 0
    head = data[: max(budget, 0)].decode("utf-8", errors="ignore")
    if "\n" in head:
        head = head[: head.rindex("\n")]
    return head, len(data) - len(head.encode("utf-8"))
