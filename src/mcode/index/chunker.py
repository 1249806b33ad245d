"""Split one file's text into searchable chunks: one per symbol where a grammar knows the symbols,
windows of lines everywhere else.

Speed is the constraint that shapes this module: indexing a large repository must cost little more
than parsing it. So the tree is never walked in Python; a depth-limited definitions query picks the
few nodes that matter, and everything else (docstring comments, gaps, splitting) works on the lines
of the text, which are split once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import NamedTuple

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
CONTAINER_KINDS = frozenset({"class", "interface", "struct", "enum", "trait", "impl", "namespace"})
_METHOD_OWNERS = frozenset({"class", "interface", "struct", "enum", "trait", "impl"})

# What a file's references are: the distinct matches of length >= 3 (see _references).
IDENTIFIER_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENTIFIER_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_NON_IDENTIFIER_TO_SPACE = bytes(c if c in _IDENTIFIER_BYTES else 0x20 for c in range(256))
_MD_HEADING = re.compile(r"#{1,6}(?:[ \t]|$)")
_STRING_PREFIX = frozenset(b"rRuUbBfF")
_DOCSTRING_START = _STRING_PREFIX | frozenset(b"\"'")
_PLAIN_KINDS = frozenset({"module", "block", "window"})  # chunks that are not one symbol
_CLOSING_LINES = frozenset({"}", "};", "},", "end", "})", "});", "]", "];"})


class _Pattern(NamedTuple):
    """What one pattern of a definitions query captures, learned from its first match. A pattern
    that captures @scope (kind "") marks a statement to run the query inside, deeper than the first
    run goes."""

    definition: str  # the definition's capture name: "definition.function", or "scope"
    name: str  # the name's capture name
    kind: str
    decorated: bool  # the definition capture is a decorated definition
    receiver: bool  # the pattern captures a receiver (a Go method's type)


@dataclass(slots=True)
class _DefinitionQuery:
    query: Query
    patterns: dict[int, _Pattern] = field(default_factory=dict)  # by pattern index


@cache
def _definition_query(language: str) -> _DefinitionQuery:
    """Compile a language's query once per process; compiling costs far more than running it."""
    source = resources.files("mcode.index").joinpath("queries", f"{language}.scm")
    return _DefinitionQuery(Query(get_language(language), source.read_text(encoding="utf-8")))


class _Match(NamedTuple):
    """One definition the query found. Matches sort into document order, outer before inner,
    as tuples do, without a key function: the node id settles every tie."""

    start_byte: int
    neg_end_byte: int  # the end byte, negated: of two matches starting together, the outer first
    pattern: int
    node_id: int
    outer: Node  # with what belongs to its text (`export`, `template <...>`, decorators)
    node: Node  # the definition itself
    name: Node
    kind: str
    receiver: str


class _Container:
    """A class-like definition whose members are chunks of their own; its chunk is emitted once
    all members are known, with their bodies elided."""

    __slots__ = ("children", "chunk", "last_child_end", "start", "symbol")

    def __init__(self, symbol: str, start: int, chunk: _SymbolChunk) -> None:
        self.symbol = symbol
        self.start = start
        self.chunk = chunk
        self.children: list[_SymbolChunk] = []
        self.last_child_end = -1


class _SymbolChunk(NamedTuple):
    """What a symbol's chunk needs; rows are 0-based."""

    kind: str
    symbol: str
    signature: str
    docstring: str
    ext: int  # the first row, with the comments and attributes right above the definition
    start: int
    end: int
    head_end: int  # the last row of the declaration


@dataclass(slots=True)
class _File:
    """The per-file state every helper needs; built once so helpers take one argument."""

    path: str
    language: str
    lines: list[str]
    data: bytes
    spec: LanguageSpec | None
    python: bool = False
    chunks: list[Chunk] = field(default_factory=list)
    definitions: list[Definition] = field(default_factory=list)
    tops: list[_SymbolChunk] = field(default_factory=list)  # the top-level symbols


def parse_file(path: str, text: str, language: str | None) -> ParsedFile:
    """Chunk one file; never raises on any text, since one odd file must not stop an index run."""
    newline = text.find("\n")
    if newline > 0 and text[newline - 1] == "\r":  # judged by the first line: scanning costs
        text = text.replace("\r\n", "\n")
    spec = LANGUAGE_SPECS.get(language) if language else None
    parsed = ParsedFile(path=path, language=language or "text")
    if not text or text.isspace():
        return parsed
    lines = text.split("\n")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a lenient decode
        data = text.encode("utf-8", "surrogatepass")
    parsed.references = _references(data, REFERENCE_STOPWORDS[spec.family if spec else "text"])
    if spec is None:
        f = _File(path, parsed.language, lines, b"", None)
        if language == "markdown":
            _markdown_chunks(f)
        else:
            _window_chunks(f, 0, len(lines) - 1, "")
        parsed.chunks = f.chunks
        return parsed
    f = _File(path, spec.name, lines, data, spec, python=spec.family == "python")
    root = get_parser(spec.name).parse(data).root_node
    parsed.syntax_errors = root.has_error
    for container in _symbols(f, _find_definitions(root, spec)):
        _container_chunk(f, container)
    _module_chunks(f, root)
    f.chunks.sort(key=_chunk_order)
    parsed.chunks = f.chunks
    parsed.definitions = f.definitions
    return parsed


def _chunk_order(chunk: Chunk) -> tuple[int, int]:
    return chunk.start_line, -chunk.end_line


def _references(data: bytes, stopwords: frozenset[str]) -> list[str]:
    """The distinct matches of IDENTIFIER_PATTERN of length >= 3, minus the stopwords.

    Found by turning every byte that cannot be in an identifier into a space and splitting: the
    same set the regex finds (once leading digits are dropped) for less work, which matters
    because this runs over every byte of the repository."""
    names: set[str] = set()
    add = names.add
    for token in set(data.translate(_NON_IDENTIFIER_TO_SPACE).split()):
        if len(token) < 3:
            continue
        if token[0] < 0x41:  # starts with a digit: 0x1F holds the identifier x1F
            token = token.lstrip(b"0123456789")
            if len(token) < 3:
                continue
        add(token.decode("ascii"))
    names -= stopwords
    return sorted(names)


# --- finding definitions -------------------------------------------------------------------------


def _find_definitions(root: Node, spec: LanguageSpec) -> list[_Match]:
    """Run the definitions query, only as deep as definitions can be, and deeper only inside the
    few containers (nested classes) whose members lie below that depth."""
    dq = _definition_query(spec.name)
    query, patterns = dq.query, dq.patterns
    found: dict[int, _Match] = {}
    decorated: set[int] = set()  # bare definitions already captured with their decorators
    work = [(root, spec.root_depth)]
    shallow = spec.root_depth - spec.inner_depth
    while work:
        start, depth = work.pop()
        cursor = QueryCursor(query)
        cursor.set_max_start_depth(depth)
        for index, captures in cursor.matches(start):
            info = patterns.get(index)
            if info is None:
                info = _pattern_info(dq, index, captures)
            def_key, name_key, kind, is_decorated, has_receiver = info
            nodes = captures.get(def_key)
            if not kind and nodes:  # a statement that can hold definitions: look inside
                work.append((nodes[0], spec.inner_depth + 1))
                continue
            names = captures.get(name_key)
            if not nodes or not names:
                continue
            node = nodes[0]
            name_node = names[0]
            key = node.id
            previous = found.get(key)
            if (previous is not None and previous.pattern <= index) or key in decorated:
                continue  # the first pattern in the query file wins
            inner = node
            if is_decorated:
                inner = node.child_by_field_name("definition") or node
                decorated.add(inner.id)
            receiver = ""
            if has_receiver:
                receiver = captures["receiver"][0].text.decode("utf-8", "replace")
            found[key] = _Match(
                node.start_byte,
                -node.end_byte,
                index,
                key,
                node,
                inner,
                name_node,
                kind,
                receiver,
            )
            if (
                kind in CONTAINER_KINDS
                and previous is None
                and inner.id != start.id
                and _deeper_than(inner, shallow)
            ):
                work.append((inner, spec.inner_depth))
    matches = list(found.values())
    if spec.wrappers or spec.single_wrappers:
        matches = [_wrapped(m, spec) for m in matches]
    matches.sort()
    return matches


def _pattern_info(dq: _DefinitionQuery, index: int, captures: dict[str, list[Node]]) -> _Pattern:
    definition = next((k for k in captures if k.startswith("definition.")), "scope")
    nodes = captures.get(definition)
    is_decorated = bool(nodes) and nodes[0].type == "decorated_definition"
    kind = definition.removeprefix("definition.") if definition != "scope" else ""
    info = _Pattern(definition, "name." + definition, kind, is_decorated, "receiver" in captures)
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


def _wrapped(match: _Match, spec: LanguageSpec) -> _Match:
    """Widen a match to the parents that belong to its text (`export`, `template <...>`)."""
    outer = match.outer
    parent = outer.parent
    wrappers, single = spec.wrappers, spec.single_wrappers
    while parent is not None and (
        parent.type in wrappers or (parent.type in single and parent.named_child_count == 1)
    ):
        outer = parent
        parent = outer.parent
    if outer is match.outer:
        return match
    return match._replace(start_byte=outer.start_byte, neg_end_byte=-outer.end_byte, outer=outer)


# --- from definitions to symbols -----------------------------------------------------------------


def _symbols(f: _File, matches: list[_Match]) -> list[_Container]:
    """Keep the definitions that are chunks (not those inside function bodies), qualify their
    names from the containers around them, make functions in classes methods; record each one's
    Definition and emit its chunk, except for containers, which are returned to be emitted once
    their members are known."""
    spec = f.spec
    assert spec is not None
    separator = spec.scope_separator
    data, definitions, lines, chunks = f.data, f.definitions, f.lines, f.chunks
    path, language = f.path, f.language
    stack: list[tuple[int, int, _Container | None]] = []  # None: a function's body
    containers: list[_Container] = []
    for start_byte, neg_end, _, _, outer, node, name_node, kind, receiver in matches:
        end_byte = -neg_end
        while stack and stack[-1][1] < end_byte:
            stack.pop()
        parent = None
        if stack:
            top_start, top_end, parent = stack[-1]
            if parent is None or (top_start == start_byte and top_end == end_byte):
                continue  # inside a function body, or a duplicate of its container
        name = data[name_node.start_byte : name_node.end_byte].decode("utf-8", "replace")
        qualifier = receiver
        if separator and separator in name:
            parts = [p.split("<", 1)[0].strip() for p in name.split(separator)]
            name = parts[-1]
            qualifier = ".".join(p for p in (qualifier, *parts[:-1]) if p)
        symbol = qualifier + "." + name if qualifier else name
        if parent is not None:
            symbol = parent.symbol + "." + symbol
        if kind == "function" or kind == "method":
            owned = qualifier or (parent is not None and parent.chunk.kind in _METHOD_OWNERS)
            kind = "method" if owned else "function"
        chunk = _describe(f, kind, symbol, parent, outer, node, end_byte)
        definitions.append(
            Definition(name, symbol, kind, name_node.start_point[0] + 1, chunk.signature)
        )
        ext, start, end = chunk.ext, chunk.start, chunk.end
        if parent is None:
            f.tops.append(chunk)
        else:
            parent.children.append(chunk)
        if kind in CONTAINER_KINDS:
            container = _Container(symbol, start, chunk)
            containers.append(container)
            stack.append((start_byte, end_byte, container))
        else:
            stack.append((start_byte, end_byte, None))
            text = "\n".join(lines[ext : end + 1])
            if len(text) <= MAX_CHARS and end - ext < MAX_LINES:  # the common case, inline
                signature, docstring = chunk.signature, chunk.docstring
                chunks.append(
                    Chunk(
                        path, language, kind, symbol, signature, docstring, ext + 1, end + 1, text
                    )
                )
            else:
                _emit(f, chunk, ext, end, text, None)
    return containers


def _describe(
    f: _File,
    kind: str,
    symbol: str,
    parent: _Container | None,
    outer: Node,
    node: Node,
    end_byte: int,
) -> _SymbolChunk:
    """Rows, signature and docstring of a definition, from a handful of nodes and the lines."""
    spec = f.spec
    assert spec is not None
    lines, data, python = f.lines, f.data, f.python
    start = outer.start_point[0]
    end_row, end_col = outer.end_point
    end = end_row - 1 if end_col == 0 and end_row > start else end_row
    # The signature starts at `export`/`template`, but after Python's decorators.
    sig_start = node.start_byte if python else outer.start_byte
    docstring = ""
    body = node.child_by_field_name("body")
    if body is None:
        body = _body_without_field(node, spec)
    if body is not None and body.start_byte > sig_start:
        sig_end = body.start_byte
        head_end, body_col = body.start_point
        indent = lines[head_end][:body_col]
        if head_end > start and not indent.strip():
            head_end -= 1  # the body opens its own line (Python blocks, Allman braces)
        else:
            indent = ""
        # A header at the very end of the file (`def f():`, mid-edit) has an empty body there.
        if python and sig_end < len(data) and data[sig_end] in _DOCSTRING_START:
            docstring = _python_docstring(data, sig_end, indent)
        closed = False
    else:
        newline = data.find(b"\n", sig_start, end_byte)
        sig_end = end_byte if newline < 0 else newline
        head_end = node.start_point[0] if python else start
        closed = True
    if sig_end - sig_start > 1200:
        sig_end = sig_start + 1200
    signature = data[sig_start:sig_end].decode("utf-8", "replace").rstrip()
    if "\n" in signature:  # drop comments between the lines of a long declaration
        comments = spec.comment_prefixes
        signature = " ".join(
            line for line in signature.split("\n") if not line.lstrip().startswith(comments)
        )
    signature = " ".join(signature.split())[:SIGNATURE_CHARS]
    if closed:
        signature = signature.rstrip(" {")
    # Comments and attributes right above belong to the definition, up to the previous sibling.
    if parent is not None:
        floor = parent.last_child_end + 1 if parent.last_child_end >= 0 else parent.start + 1
        parent.last_child_end = end
    else:
        floor = f.tops[-1].end + 1 if f.tops else 0
    ext = start
    if start > floor and lines[start - 1].lstrip().startswith(spec.above_prefixes):
        ext = _comment_start(lines, start, floor, spec)
        if ext < start and not docstring:
            docstring = _comment_text(lines[ext:start], spec.attribute_prefixes)
    return _SymbolChunk(kind, symbol, signature, docstring, ext, start, end, head_end)


def _body_without_field(node: Node, spec: LanguageSpec) -> Node | None:
    if spec.body_types:
        for child in node.children:
            if child.type in spec.body_types:
                return child
    if node.type == "variable_declarator":  # const f = (x) => ...
        value = node.child_by_field_name("value")
        return value.child_by_field_name("body") if value is not None else None
    return None


def _comment_start(lines: list[str], start: int, floor: int, spec: LanguageSpec) -> int:
    row = start - 1
    prefixes = spec.above_prefixes
    while row >= floor:
        stripped = lines[row].lstrip()
        if not stripped.startswith(prefixes) or (row == 0 and stripped.startswith("#!")):
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


def _python_docstring(data: bytes, pos: int, indent: str) -> str:
    """The string literal that starts at `pos` (a body's first statement, indented by `indent`),
    read off the bytes; its lines lose that indentation, as with inspect.cleandoc."""
    size = len(data)
    while pos < size and data[pos] in _STRING_PREFIX:
        pos += 1
    quote = data[pos : pos + 3]
    if quote != b'"""' and quote != b"'''":
        quote = data[pos : pos + 1]
        if quote != b'"' and quote != b"'":
            return ""
    begin = pos + len(quote)
    end = data.find(quote, begin)
    while end > 0 and data[end - 1] == 0x5C:  # an escaped quote
        end = data.find(quote, end + 1)
    if end < 0:
        return ""
    text = data[begin:end].decode("utf-8", "replace")
    if "\n" not in text:
        return text.strip()
    if indent:
        text = text.replace("\n" + indent, "\n")
    return text.strip()


# --- turning symbols into chunks -----------------------------------------------------------------


def _container_chunk(f: _File, container: _Container) -> None:
    """Members are chunks of their own: keep their declaration lines, elide their bodies."""
    lines = f.lines
    ext, end = container.chunk.ext, container.chunk.end
    texts: list[str] = []
    rows: list[int] = []
    row = ext
    for child in container.children:
        child_ext, start, child_end, head_end = child.ext, child.start, child.end, child.head_end
        if start < row:  # shares a line with the previous member
            row = max(row, child_end + 1)
            continue
        texts += lines[row:child_ext]
        rows += range(row, child_ext)
        head_end = min(max(head_end, start), child_end)
        if child_end <= head_end + 1:  # nothing to gain
            texts += lines[start : child_end + 1]
            rows += range(start, child_end + 1)
        else:
            texts += lines[start : head_end + 1]
            rows += range(start, head_end + 1)
            first = lines[start]
            ellipsis = first[: len(first) - len(first.lstrip())] + "    ..."
            if lines[child_end].strip() in _CLOSING_LINES:
                texts += (ellipsis, lines[child_end])
                rows += (child_end - 1, child_end)
            else:
                texts.append(ellipsis)
                rows.append(child_end)
        row = child_end + 1
    texts += lines[row : end + 1]
    rows += range(row, end + 1)
    _emit(f, container.chunk, ext, end, "\n".join(texts), (rows, texts))


def _module_chunks(f: _File, root: Node) -> None:
    """The header before the first definition, then every top-level stretch between and after
    definitions, so that no line of the file is unsearchable."""
    tops = f.tops
    last = len(f.lines) - 1
    header_end = tops[0].ext - 1 if tops else last
    _add_region(f, "module", 0, header_end, _module_docstring(f, root))
    for i, top in enumerate(tops):
        gap_end = tops[i + 1].ext - 1 if i + 1 < len(tops) else last
        _add_region(f, "block", top.end + 1, gap_end, "")


def _module_docstring(f: _File, root: Node) -> str:
    spec = f.spec
    assert spec is not None
    if spec.family == "python":
        first = root.named_child(0) if root.named_child_count else None
        if first is None or first.type not in ("expression_statement", "string"):
            return ""
        return _python_docstring(f.data, first.start_byte, "")
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
        chunk = _SymbolChunk(kind, "", "", docstring, first, first, last, first)
        _emit(f, chunk, first, last, text, None)


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
            _emit(f, _SymbolChunk("window", symbol, "", "", lo, lo, hi, lo), lo, hi, text, None)
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
            starts.append((row, line.strip().strip("#").strip()))
    for i, (row, title) in enumerate(starts):
        end = starts[i + 1][0] - 1 if i + 1 < len(starts) else len(lines) - 1
        _window_chunks(f, row, end, title)


# --- size limits ---------------------------------------------------------------------------------


def _emit(
    f: _File,
    chunk: _SymbolChunk,
    start: int,
    end: int,
    text: str,
    content: tuple[Sequence[int], list[str]] | None,
) -> None:
    """Add a chunk for rows start..end, or its parts when it is too big; parts after the first
    repeat the symbol's declaration so that each part still says what it belongs to.

    `content` is (row of each line, lines) when `text` is not simply lines[start..end]."""
    kind, symbol, signature, docstring = chunk.kind, chunk.symbol, chunk.signature, chunk.docstring
    line_count = end - start + 1 if content is None else len(content[0])
    if len(text) <= MAX_CHARS and line_count <= MAX_LINES:
        f.chunks.append(
            Chunk(f.path, f.language, kind, symbol, signature, docstring, start + 1, end + 1, text)
        )
        return
    rows, texts = content or (range(start, end + 1), f.lines[start : end + 1])
    header = [] if kind in _PLAIN_KINDS else _split_header(f.lines, chunk)
    for first, last, part in _split(rows, texts, header):
        f.chunks.append(
            Chunk(f.path, f.language, kind, symbol, signature, docstring, first + 1, last + 1, part)
        )


def _split_header(lines: list[str], chunk: _SymbolChunk) -> list[str]:
    signature, start, end, head_end = chunk.signature, chunk.start, chunk.end, chunk.head_end
    head = lines[start : min(max(head_end, start), end) + 1]
    first = head[0]
    indent = first[: len(first) - len(first.lstrip())]
    if len(head) > 6 or sum(map(len, head)) > 600:
        head = [indent + signature]
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
