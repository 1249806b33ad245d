"""Summaries written without a model: from a file's docstrings, signatures and imports, and the
module graph. Deterministic (the same file and graph give the same text) and about as fast as
parsing, so a whole repository is covered in the time a lexical index takes.

A summary's first line is `PATH — what it is for`; a directory's lists its files by those lines.
Line numbers are left out on purpose: they change with every edit above them, and the summary
must stay true until what it describes changes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mcode.index.model import ParsedFile
from mcode.store.summaries import SEPARATOR, purpose_line
from mcode.summary.graph import ModuleGraph

PURPOSE_CHARS = 240
SYMBOL_LINES = 14
MEMBER_NAMES = 8
LINKS = 8
IMPORTS = 15
NOTES = 3
DIR_ENTRIES = 40
_IMPORT = re.compile(
    r"""^[ \t]*(?:
        from[ \t]+([\w.]+)[ \t]+import
      | import[ \t][^'"\n;]*?from[ \t]+['"]([^'"]+)['"]
      | import[ \t]+(?:static[ \t]+)?([\w.]+)
      | \#include[ \t]+[<"]([^>"]+)[>"]
      | use[ \t]+([\w:]+)
      | (?:(?:const|let|var)[ \t][^=\n]*=[ \t]*)?require(?:_relative)?[ \t(]+['"]([^'"]+)['"]
    )""",
    re.MULTILINE | re.VERBOSE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`(])")
_NOTE = re.compile(r"\b(?:must|never|always|only|not thread-safe|invariant)\b", re.IGNORECASE)


def first_sentence(text: str, limit: int = PURPOSE_CHARS) -> str:
    """The first sentence of the first paragraph, on one line, at most `limit` characters."""
    paragraph = " ".join(text.strip().split("\n\n", 1)[0].split())
    sentence = _SENTENCE_END.split(paragraph, 1)[0] if paragraph else ""
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def file_summary(parsed: ParsedFile, text: str, graph: ModuleGraph) -> str:
    """The structural summary of one file: purpose, main symbols, imports, links, notes."""
    module_doc = next((c.docstring for c in parsed.chunks if c.kind == "module"), "")
    lines = [f"{parsed.path}{SEPARATOR}{_purpose(parsed, module_doc, text)}"]
    lines += _symbol_lines(parsed)
    imports = [next(g for g in m.groups() if g) for m in _IMPORT.finditer(text)]
    imports = [name for name in dict.fromkeys(imports) if name != "__future__"]
    if imports:
        lines.append("Imports: " + _listed(imports, IMPORTS))
    lines += _links(graph.depends_on(parsed.path), graph.used_by(parsed.path))
    notes = [s for s in _SENTENCE_END.split(" ".join(module_doc.split())) if _NOTE.search(s)]
    if notes:
        lines.append("Notes: " + " ".join(notes[:NOTES]))
    return "\n".join(lines)


def _purpose(parsed: ParsedFile, module_doc: str, text: str) -> str:
    if module_doc:
        return first_sentence(module_doc)
    if parsed.language in ("markdown", "text"):
        head = next((line.strip("# \t") for line in text.splitlines() if line.strip()), "")
        return first_sentence(head) or f"{parsed.language} file"
    tops = [d for d in parsed.definitions if "." not in d.symbol]
    if not tops:
        return f"{parsed.language} file without definitions"
    names = ", ".join(d.name for d in tops[:4])
    return f"{parsed.language} file defining {names}" + (" …" if len(tops) > 4 else "")


def _symbol_lines(parsed: ParsedFile) -> list[str]:
    docs = {c.symbol: c.docstring for c in parsed.chunks if c.symbol}
    members: dict[str, list[str]] = {}
    for d in parsed.definitions:
        owner, dot, _ = d.symbol.rpartition(".")
        if dot:
            members.setdefault(owner, []).append(d.name)
    tops = [d for d in parsed.definitions if "." not in d.symbol]
    tops.sort(key=lambda d: d.name.startswith("_"))  # public first, in file order
    out = []
    for d in tops[:SYMBOL_LINES]:
        about = first_sentence(docs.get(d.symbol, ""), 160)
        line = f"- {d.kind} {d.name}: {about}" if about else f"- {_one_line(d.signature)}"
        names = [n for n in members.get(d.symbol, []) if not n.startswith("_")]
        if names:
            line += " [" + _listed(names, MEMBER_NAMES) + "]"
        out.append(line)
    if len(tops) > SYMBOL_LINES:
        out.append(f"- … and {len(tops) - SYMBOL_LINES} more")
    return (["Defines:", *out]) if out else []


def _one_line(signature: str) -> str:
    text = " ".join(signature.split()).rstrip(":{ ")
    return text if len(text) <= 120 else text[:119] + "…"


def _links(depends: Sequence[str], used_by: Sequence[str]) -> list[str]:
    out = []
    if depends:
        out.append("Depends on: " + _listed(depends, LINKS))
    if used_by:
        out.append("Used by: " + _listed(used_by, LINKS))
    return out


def _listed(items: Sequence[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def dir_summary(
    path: str,
    children: Sequence[tuple[str, str, str]],
    depends: Sequence[str] = (),
    used_by: Sequence[str] = (),
) -> str:
    """A directory's summary from its children's: (name, level, summary text) each, files and
    subdirectories. Its purpose is its package file's or README's, when it has one."""
    by_name = {name: text for name, level, text in children if level == "file"}
    intro = next(
        (
            by_name[n]
            for n in ("__init__.py", "README.md", "mod.rs", "index.ts", "index.js")
            if n in by_name
        ),
        "",
    )
    files = [c for c in children if c[1] == "file"]
    dirs = [c for c in children if c[1] == "dir"]
    purpose = purpose_line(intro) if intro else f"{len(files)} files, {len(dirs)} directories"
    lines = [f"{path}/{SEPARATOR}{purpose}"]
    for title, entries, suffix in (("Files:", files, ""), ("Directories:", dirs, "/")):
        if entries:
            lines.append(title)
            lines += [
                f"- {name}{suffix}: {purpose_line(text)}" for name, _, text in entries[:DIR_ENTRIES]
            ]
            if len(entries) > DIR_ENTRIES:
                lines.append(f"- … and {len(entries) - DIR_ENTRIES} more")
    lines += _links(depends, used_by)
    return "\n".join(lines)
