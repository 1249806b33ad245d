"""Split one file's text into searchable chunks: one per symbol where a grammar knows the symbols,
windows of lines everywhere else.

Speed is the constraint that shapes this module: indexing a large repository must cost little more
than parsing it. So the tree is never walked in Python; a depth-limited definitions query picks the
few nodes that matter, and everything else (docstring comments, gaps, splitting) works on the lines
of the text, which are split once.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from tree_sitter import Node, Query, QueryCursor
from tree_sitter_language_pack import get_language, get_parser

from mcode.index.languages import LANGUAGE_SPECS, REFERENCE_STOPWORDS, LanguageSpec
from mcode.index.model import Chunk, Definition, ParsedFile

MAX_LINES = 150
MAX_CHARS = 8000
WINDOW_LINES = 60
WINDOW_OVERLAP = 10
SIGNATURE_CHARS = 300

# Kinds whose members are chunks of their own (and get qualified names); anything nested in other
# kinds (a function inside a function) is part of that definition's text.
CONTAINER_KINDS = frozenset(
    {"class", "interface", "struct", "enum", "trait", "impl", "module", "namespace"}
)
_METHOD_OWNERS = frozenset({"class", "interface", "struct", "enum", "trait", "impl"})

# `[A-Za-z_][A-Za-z0-9_]*` restricted to matches of length >= 3: the same identifiers, but the
# regex engine drops the short ones before Python has to allocate them.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_MD_HEADING = re.compile(r"#{1,6}(?:[ \t]|$)")
_DOCSTRING_START = frozenset(b"\"'rRuUbBfF")
_CLOSING_LINES = frozenset({"}", "};", "},", "end", "})", "});", "]", "];"})


@dataclass(slots=True)
class _DefinitionQuery:
    query: Query
    # pattern index -> (definition capture, name capture, kind, captures a decorated definition);
    # filled on first use of a pattern
    patterns: dict[int, tuple[str, str, str, bool]] = field(default_factory=dict)


@cache
def _definition_query(language: str) -> _DefinitionQuery:
    """Compile a language's query once per process; compiling costs far more than running it."""
    source = resources.files("mcode.index").joinpath("queries", f"{language}.scm")
    return _DefinitionQuery(Query(get_language(language), source.read_text(encoding="utf-8")))


class _Symbol:
    """One definition on its way to becoming a chunk (a plain slotted class: there are many)."""

    __slots__ = (
        "children",
        "docstring",
        "end",
        "end_byte",
        "ext",
        "head_end",
        "inner",
        "kind",
        "last_child_end",
        "name",
        "name_node",
        "node",
        "outer",
        "parent",
        "pattern",
        "receiver",
        "signature",
        "start",
        "start_byte",
        "symbol",
    )

    def __init__(
        self, node: Node, inner: Node, name_node: Node, kind: str, pattern: int, receiver: str
    ) -> None:
        self.node = node  # the node the query captured (a decorated definition: with decorators)
        self.inner = inner  # the definition itself
        self.name_node = name_node
        self.kind = kind
        self.pattern = pattern
        self.receiver = receiver
        self.outer = node  # plus wrappers (`export`, `template <...>`)
        self.start_byte = self.end_byte = 0
        self.name = self.symbol = self.signature = self.docstring = ""
        self.parent: _Symbol | None = None
        self.children: list[_Symbol] | None = None
        # rows, 0-based: ext includes the comments and attributes right above the definition;
        # head_end is the last row of the declaration before the body.
        self.start = self.end = self.ext = self.head_end = 0
        self.last_child_end = -1


@dataclass(slots=True)
class _File:
    """The per-file state every helper needs; built once so helpers take one argument."""

    path: str
    language: str
    lines: list[str]
    data: bytes
    spec: LanguageSpec | None
    chunks: list[Chunk] = field(default_factory=list)
    top_end: int = -1  # last row of the previous top-level definition


def parse_file(path: str, text: str, language: str | None) -> ParsedFile:
    """Chunk one file; never raises on any text, since one odd file must not stop an index run."""
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    spec = LANGUAGE_SPECS.get(language) if language else None
    parsed = ParsedFile(path=path, language=language or "text")
    if not text.strip():
        return parsed
    lines = text.split("\n")
    family = spec.family if spec else "text"
    parsed.references = _references(text, REFERENCE_STOPWORDS[family])
    if spec is None:
        f = _File(path, parsed.language, lines, b"", None)
        if language == "markdown":
            _markdown_chunks(f)
        else:
            _window_chunks(f, 0, len(lines) - 1, "")
        parsed.chunks = f.chunks
        return parsed
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a lenient decode
        data = text.encode("utf-8", "surrogatepass")
    f = _File(path, spec.name, lines, data, spec)
    root = get_parser(spec.name).parse(data).root_node
    parsed.syntax_errors = root.has_error
    symbols = _nest(f, _find_symbols(root, spec))
    for sym in symbols:
        _describe(f, sym)
    _module_chunks(f, root, symbols)
    for sym in symbols:
        _symbol_chunks(f, sym)
    f.chunks.sort(key=_chunk_order)
    parsed.chunks = f.chunks
    parsed.definitions = [
        Definition(s.name, s.symbol, s.kind, s.name_node.start_point.row + 1, s.signature)
        for s in symbols
    ]
    for sym in symbols:  # parent <-> children cycles would wait for the cyclic GC to free them
        sym.parent = sym.children = None
    return parsed


def _chunk_order(chunk: Chunk) -> tuple[int, int]:
    return chunk.start_line, -chunk.end_line


def _references(text: str, stopwords: frozenset[str]) -> list[str]:
    names = set(_IDENTIFIER.findall(text))
    names -= stopwords
    return sorted(names)


# --- finding definitions -------------------------------------------------------------------------


def _find_symbols(root: Node, spec: LanguageSpec) -> list[_Symbol]:
    """Run the definitions query, only as deep as definitions can be, and deeper only inside the
    few containers (nested classes) whose members lie below that depth."""
    dq = _definition_query(spec.name)
    query, patterns = dq.query, dq.patterns
    found: dict[int, _Symbol] = {}
    decorated: set[int] = set()  # bare definitions already captured with their decorators
    work = [(root, spec.root_depth)]
    shallow = spec.root_depth - spec.inner_depth
    while work:
        start, depth = work.pop()
        cursor = QueryCursor(query)
        cursor.set_max_start_depth(depth)
        for index, captures in cursor.matches(start):
            info = patterns.get(index) or _pattern_info(dq, index, captures)
            nodes = captures.get(info[0])
            names = captures.get(info[1])
            if not nodes or not names:
                continue
            node = nodes[0]
            key = node.id
            if key in decorated:
                continue
            previous = found.get(key)
            if previous is not None:
                if previous.pattern > index:  # the first pattern in the file wins
                    previous.kind, previous.name_node, previous.pattern = info[2], names[0], index
                continue
            inner = node
            if info[3]:
                inner = node.child_by_field_name("definition") or node
                decorated.add(inner.id)
            receivers = captures.get("receiver")
            receiver = receivers[0].text.decode("utf-8", "replace") if receivers else ""
            found[key] = _Symbol(node, inner, names[0], info[2], index, receiver)
            if info[2] in CONTAINER_KINDS and inner.id != start.id and _deeper_than(inner, shallow):
                work.append((inner, spec.inner_depth))
    symbols = list(found.values())
    wrappers, single = spec.wrappers, spec.single_wrappers
    for sym in symbols:
        outer = sym.node
        if wrappers or single:
            parent = outer.parent
            while parent is not None and (
                parent.type in wrappers or (parent.type in single and parent.named_child_count == 1)
            ):
                outer = parent
                parent = outer.parent
            sym.outer = outer
        sym.start_byte = outer.start_byte
        sym.end_byte = outer.end_byte
    symbols.sort(key=_symbol_order)
    return symbols


def _symbol_order(sym: _Symbol) -> tuple[int, int]:
    return sym.start_byte, -sym.end_byte


def _pattern_info(
    dq: _DefinitionQuery, index: int, captures: dict[str, list[Node]]
) -> tuple[str, str, str, bool]:
    definition = next((k for k in captures if k.startswith("definition.")), "definition.unknown")
    nodes = captures.get(definition)
    is_decorated = bool(nodes) and nodes[0].type == "decorated_definition"
    info = (definition, "name." + definition, definition.removeprefix("definition."), is_decorated)
    dq.patterns[index] = info
    return info


def _deeper_than(node: Node, limit: int) -> bool:
    """Whether the node has more than `limit` ancestors, looking no further up than needed."""
    for _ in range(limit + 1):
        parent = node.parent
        if parent is None:
            return False
        node = parent
    return True


def _nest(f: _File, symbols: list[_Symbol]) -> list[_Symbol]:
    """Keep the definitions that are chunks (not those inside function bodies), qualify their
    names from the containers around them, and make functions in classes methods."""
    stack: list[_Symbol] = []
    kept: list[_Symbol] = []
    spec = f.spec
    assert spec is not None
    separator = spec.scope_separator
    data = f.data
    for sym in symbols:
        while stack and stack[-1].end_byte < sym.end_byte:
            stack.pop()
        parent = stack[-1] if stack else None
        if parent is not None and (
            parent.kind not in CONTAINER_KINDS
            or (parent.start_byte == sym.start_byte and parent.end_byte == sym.end_byte)
        ):
            continue
        name_node = sym.name_node
        name = data[name_node.start_byte : name_node.end_byte].decode("utf-8", "replace")
        qualifier = sym.receiver
        if separator and separator in name:
            parts = [p.split("<", 1)[0].strip() for p in name.split(separator)]
            name = parts[-1]
            qualifier = ".".join(p for p in (qualifier, *parts[:-1]) if p)
        sym.name = name
        if qualifier:
            name = qualifier + "." + name
        sym.symbol = parent.symbol + "." + name if parent is not None else name
        if sym.kind == "function" or sym.kind == "method":
            owned = qualifier or (parent is not None and parent.kind in _METHOD_OWNERS)
            sym.kind = "method" if owned else "function"
        if parent is not None:
            sym.parent = parent
            if parent.children is None:
                parent.children = [sym]
            else:
                parent.children.append(sym)
        stack.append(sym)
        kept.append(sym)
    return kept


# --- describing one definition -------------------------------------------------------------------


def _describe(f: _File, sym: _Symbol) -> None:
    """Rows, signature and docstring of a definition, from a handful of nodes and the lines."""
    spec = f.spec
    assert spec is not None
    node, outer, lines, data = sym.inner, sym.outer, f.lines, f.data
    start = sym.start = outer.start_point.row
    end_row, end_col = outer.end_point
    sym.end = end_row - 1 if end_col == 0 and end_row > start else end_row
    # The signature starts at `export`/`template`, but after Python's decorators.
    sig_node = node if node is not sym.node else outer
    sig_start = sig_node.start_byte
    body = node.child_by_field_name("body")
    if body is None and spec.body_types:
        body = next((c for c in node.children if c.type in spec.body_types), None)
    if body is None and node.type == "variable_declarator":  # const f = (x) => ...
        value = node.child_by_field_name("value")
        body = value.child_by_field_name("body") if value is not None else None
    closed = body is None or body.start_byte <= sig_start
    if not closed:
        assert body is not None
        sig_end = body.start_byte
        body_row, body_col = body.start_point
        opens_line = body_row > start and not lines[body_row][:body_col].strip()
        sym.head_end = body_row - 1 if opens_line else body_row
    else:
        newline = data.find(b"\n", sig_start, sym.end_byte)
        sig_end = sym.end_byte if newline < 0 else newline
        sym.head_end = sig_node.start_point.row
    signature = data[sig_start : min(sig_end, sig_start + 4 * SIGNATURE_CHARS)].decode(
        "utf-8", "replace"
    )
    if "\n" in signature:  # a comment between the declaration and its body is not part of it
        comments = spec.comment_prefixes
        signature = " ".join(
            line for line in signature.split("\n") if not line.lstrip().startswith(comments)
        )
    signature = " ".join(signature.split())[:SIGNATURE_CHARS]
    sym.signature = signature.rstrip(" {") if closed else signature
    # Comments and attributes right above belong to the definition, up to the previous sibling.
    parent = sym.parent
    if parent is not None:
        floor = parent.last_child_end + 1 if parent.last_child_end >= 0 else parent.start + 1
        parent.last_child_end = sym.end
    else:
        floor = f.top_end + 1
        f.top_end = sym.end
    sym.ext = _comment_start(lines, start, floor, spec) if start > floor else start
    if spec.family == "python" and not closed and data[sig_end] in _DOCSTRING_START:
        assert body is not None
        sym.docstring = _python_docstring(body)
    if not sym.docstring and sym.ext < start:
        sym.docstring = _comment_text(lines[sym.ext : start], spec.attribute_prefixes)


def _comment_start(lines: list[str], start: int, floor: int, spec: LanguageSpec) -> int:
    row = start - 1
    comments, attributes = spec.comment_prefixes, spec.attribute_prefixes
    while row >= floor:
        stripped = lines[row].lstrip()
        if not stripped or (row == 0 and stripped.startswith("#!")):
            break
        if not stripped.startswith(comments) and not (
            attributes and stripped.startswith(attributes)
        ):
            break
        row -= 1
    return row + 1


def _comment_text(raw_lines: list[str], attributes: tuple[str, ...]) -> str:
    out = []
    for line in raw_lines:
        text = line.strip()
        if attributes and text.startswith(attributes):
            continue
        if text.endswith("*/"):
            text = text[:-2]
        if "<summary>" in text or "</summary>" in text:  # C# XML doc comments
            text = text.replace("<summary>", "").replace("</summary>", "")
        for marker in ("///", "//!", "//", "/**", "/*", "#", "*"):
            if text.startswith(marker):
                text = text[len(marker) :]
                break
        text = text.strip()
        if text:
            out.append(text)
    return "\n".join(out)


def _python_docstring(body: Node) -> str:
    """The string that is the first statement of a body (module, class or function)."""
    count = body.named_child_count
    index = 0
    while index < count:
        first = body.named_child(index)
        if first is None or first.type != "comment":
            break
        index += 1
    else:
        return ""
    if first is not None and first.type == "expression_statement" and first.named_child_count:
        first = first.named_child(0)
    if first is None or first.type != "string":
        return ""
    return _python_string(first.text.decode("utf-8", "replace") if first.text else "")


def _python_string(raw: str) -> str:
    start = 0
    while start < len(raw) and raw[start] in "rRbBuUfF":
        start += 1
    body = raw[start:]
    for quote in ('"""', "'''", '"', "'"):
        if body.startswith(quote) and body.endswith(quote) and len(body) >= 2 * len(quote):
            body = body[len(quote) : -len(quote)]
            break
    return inspect.cleandoc(body) if "\n" in body else body.strip()


# --- turning definitions into chunks -------------------------------------------------------------


def _symbol_chunks(f: _File, sym: _Symbol) -> None:
    lines = f.lines
    if not sym.children:
        text = "\n".join(lines[sym.ext : sym.end + 1])
        _emit(f, sym, sym.ext, sym.end, text, None)
        return
    # Members are chunks of their own: keep their declaration lines, elide their bodies.
    texts: list[str] = []
    rows: list[int] = []
    row = sym.ext
    for child in sym.children:
        if child.start < row:  # shares a line with the previous member
            row = max(row, child.end + 1)
            continue
        texts += lines[row : child.ext]
        rows += range(row, child.ext)
        _add_elided(lines, child, texts, rows)
        row = child.end + 1
    texts += lines[row : sym.end + 1]
    rows += range(row, sym.end + 1)
    _emit(f, sym, sym.ext, sym.end, "\n".join(texts), (rows, texts))


def _add_elided(lines: list[str], sym: _Symbol, texts: list[str], rows: list[int]) -> None:
    start, end = sym.start, sym.end
    head_end = min(max(sym.head_end, start), end)
    if end <= head_end + 1:  # nothing to gain
        texts += lines[start : end + 1]
        rows += range(start, end + 1)
        return
    texts += lines[start : head_end + 1]
    rows += range(start, head_end + 1)
    first = lines[start]
    ellipsis = first[: len(first) - len(first.lstrip())] + "    ..."
    if lines[end].strip() in _CLOSING_LINES:
        texts += (ellipsis, lines[end])
        rows += (end - 1, end)
    else:
        texts.append(ellipsis)
        rows.append(end)


def _module_chunks(f: _File, root: Node, symbols: list[_Symbol]) -> None:
    """The header before the first definition, then every top-level stretch between and after
    definitions, so that no line of the file is unsearchable."""
    tops = [s for s in symbols if s.parent is None]
    last = len(f.lines) - 1
    header_end = tops[0].ext - 1 if tops else last
    docstring = _module_docstring(f, root)
    _add_region(f, "module", 0, header_end, docstring)
    for i, top in enumerate(tops):
        gap_end = tops[i + 1].ext - 1 if i + 1 < len(tops) else last
        _add_region(f, "block", top.end + 1, gap_end, "")


def _module_docstring(f: _File, root: Node) -> str:
    spec = f.spec
    assert spec is not None
    if spec.name == "python":
        return _python_docstring(root)
    lines = f.lines
    row = 0
    while row < len(lines) and (lines[row].startswith(("#!", "<?php")) or not lines[row].strip()):
        row += 1
    end = row
    while end < len(lines) and lines[end].lstrip().startswith(spec.comment_prefixes):
        end += 1
    return _comment_text(lines[row:end], spec.attribute_prefixes)


def _add_region(f: _File, kind: str, first: int, last: int, docstring: str) -> None:
    lines = f.lines
    while first <= last and not lines[first].strip():
        first += 1
    while last >= first and not lines[last].strip():
        last -= 1
    if first <= last:
        text = "\n".join(lines[first : last + 1])
        _emit(f, None, first, last, text, None, kind, docstring=docstring)


def _window_chunks(f: _File, first: int, last: int, symbol: str) -> None:
    """Overlapping windows for text without symbols; overlap keeps a passage that straddles a
    boundary findable in one piece."""
    lines = f.lines
    start = first
    while start <= last:
        end = min(start + WINDOW_LINES - 1, last)
        lo, hi = start, end
        while lo <= hi and not lines[lo].strip():
            lo += 1
        while hi >= lo and not lines[hi].strip():
            hi -= 1
        if lo <= hi:
            text = "\n".join(lines[lo : hi + 1])
            _emit(f, None, lo, hi, text, None, "window", symbol)
        if end >= last:
            break
        start = end + 1 - WINDOW_OVERLAP


def _markdown_chunks(f: _File) -> None:
    """Sections at headings first (outside code fences), then windows within each section."""
    lines = f.lines
    starts: list[tuple[int, str]] = [(0, "")]
    fence = ""
    for row, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            marker = stripped[:3]
            fence = "" if fence == marker else (fence or marker)
        elif not fence and line.startswith("#") and _MD_HEADING.match(line):
            title = line.strip().strip("#").strip()
            starts.append((row, title))
    for i, (row, title) in enumerate(starts):
        end = starts[i + 1][0] - 1 if i + 1 < len(starts) else len(lines) - 1
        _window_chunks(f, row, end, title)


# --- size limits ---------------------------------------------------------------------------------


def _emit(
    f: _File,
    sym: _Symbol | None,
    start: int,
    end: int,
    text: str,
    content: tuple[Sequence[int], list[str]] | None,
    kind: str = "",
    symbol: str = "",
    docstring: str = "",
) -> None:
    """Add a chunk for rows start..end, or its parts when it is too big; parts after the first
    repeat the symbol's declaration so that each part still says what it belongs to.

    `content` is (row of each line, lines) when `text` is not simply lines[start..end]."""
    signature = ""
    if sym is not None:
        kind, symbol, signature, docstring = sym.kind, sym.symbol, sym.signature, sym.docstring
    line_count = end - start + 1 if content is None else len(content[0])
    if len(text) <= MAX_CHARS and line_count <= MAX_LINES:
        f.chunks.append(
            Chunk(f.path, f.language, kind, symbol, signature, docstring, start + 1, end + 1, text)
        )
        return
    rows, texts = content or (range(start, end + 1), f.lines[start : end + 1])
    header = _split_header(f.lines, sym) if sym is not None else []
    for first, last, part in _split(rows, texts, header):
        f.chunks.append(
            Chunk(f.path, f.language, kind, symbol, signature, docstring, first + 1, last + 1, part)
        )


def _split_header(lines: list[str], sym: _Symbol) -> list[str]:
    head_end = min(max(sym.head_end, sym.start), sym.end)
    head = lines[sym.start : head_end + 1]
    first = head[0]
    indent = first[: len(first) - len(first.lstrip())]
    if len(head) > 6 or sum(map(len, head)) > 600:
        head = [indent + sym.signature]
    return [*head, indent + "    ..."]


def _split(rows: Sequence[int], texts: list[str], header: list[str]) -> list[tuple[int, int, str]]:
    """Greedy parts of at most MAX_LINES lines and MAX_CHARS characters, header included."""
    header_chars = sum(len(h) + 1 for h in header)
    piece = MAX_CHARS - header_chars - 1
    if max(map(len, texts)) > piece:
        rows, texts = _cut_long_lines(rows, texts, piece)
    parts: list[tuple[int, int, str]] = []
    prefix: list[str] = []  # the first part starts with the declaration itself
    begin = chars = 0
    limit = MAX_LINES
    for i, text in enumerate(texts):
        size = len(text) + 1
        if i > begin and (i - begin >= limit or chars + size > MAX_CHARS + 1):
            parts.append((rows[begin], rows[i - 1], "\n".join(prefix + texts[begin:i])))
            prefix, begin, chars, limit = header, i, header_chars, MAX_LINES - len(header)
        chars += size
    parts.append((rows[begin], rows[-1], "\n".join(prefix + texts[begin:])))
    return parts


def _cut_long_lines(
    rows: Sequence[int], texts: list[str], size: int
) -> tuple[list[int], list[str]]:
    """A line longer than a whole part (minified code, data) becomes several, on the same row."""
    out_rows: list[int] = []
    out_texts: list[str] = []
    for row, text in zip(rows, texts, strict=True):
        for i in range(0, max(len(text), 1), size):
            out_rows.append(row)
            out_texts.append(text[i : i + size])
    return out_rows, out_texts
