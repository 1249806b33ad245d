"""The symbol-level chunker: what a search over a chunked file can find, and how it is labelled."""

from __future__ import annotations

import random
from itertools import pairwise
from pathlib import Path

import pytest

from mcode.index.chunker import IDENTIFIER_PATTERN, MAX_CHARS, MAX_LINES, parse_file
from mcode.index.languages import SYMBOL_LANGUAGES, language_for_path
from mcode.index.model import Chunk, ParsedFile

FIXTURES = Path(__file__).parent / "fixtures" / "languages"

# file -> (language, {qualified symbol: kind}) that the chunker must produce
EXPECTED: dict[str, tuple[str, dict[str, str]]] = {
    "sample.py": (
        "python",
        {
            "Greeter": "class",
            "Greeter.__init__": "method",
            "Greeter.loud": "method",
            "Greeter.greet": "method",
            "Greeter.Config": "class",
            "Greeter.Config.load": "method",
            "fetch": "function",
            "main": "function",
        },
    ),
    "sample.js": (
        "javascript",
        {
            "Greeter": "class",
            "Greeter.constructor": "method",
            "Greeter.greet": "method",
            "Greeter.create": "method",
            "main": "function",
            "shout": "function",
            "helper": "function",
            "Farewell": "class",
            "Farewell.bye": "method",
        },
    ),
    "sample.ts": (
        "typescript",
        {
            "Named": "interface",
            "Named.describe": "method",
            "Punctuation": "type",
            "Mood": "enum",
            "Greeter": "class",
            "Greeter.greet": "method",
            "Base": "class",
            "Base.run": "method",
            "Util": "namespace",
            "Util.clamp": "function",
            "main": "function",
            "shout": "function",
        },
    ),
    "sample.tsx": (
        "tsx",
        {
            "Props": "interface",
            "Greeting": "function",
            "Farewell": "function",
            "Counter": "class",
            "Counter.render": "method",
        },
    ),
    "sample.go": (
        "go",
        {
            "Greeter": "struct",
            "Speaker": "interface",
            "Speaker.Speak": "method",
            "Names": "type",
            "Greeter.Greet": "method",
            "Greeter.Speak": "method",
            "NewGreeter": "function",
        },
    ),
    "sample.rs": (
        "rust",
        {
            "DEFAULT_NAME": "constant",
            "Volume": "enum",
            "Speak": "trait",
            "Speak.speak": "method",
            "Speak.twice": "method",
            "Greeter.new": "method",
            "Greeter.greet": "method",
            "Greeter.fmt": "method",
            "util": "namespace",
            "util.clamp": "function",
            "Names": "type",
            "hello": "macro",
            "main": "function",
        },
    ),
    "Sample.java": (
        "java",
        {
            "Greeter": "class",
            "Greeter.Greeter": "method",
            "Greeter.greet": "method",
            "Greeter.Config": "class",
            "Greeter.Config.load": "method",
            "Greeter.main": "method",
            "Speaker": "interface",
            "Speaker.speak": "method",
            "Mood": "enum",
            "Mood.good": "method",
            "Point": "class",
        },
    ),
    "sample.c": (
        "c",
        {
            "person": "struct",
            "person_t": "type",
            "mood": "enum",
            "greet": "function",
            "make_counter": "function",
            "main": "function",
        },
    ),
    "sample.cpp": (
        "cpp",
        {
            "greet": "namespace",
            "greet.Greeter": "class",
            "greet.Greeter.Greeter": "method",
            "greet.Greeter.greet": "method",
            "greet.Greeter.Config": "struct",
            "greet.twice": "function",
            "greet.Mood": "enum",
            "greet.shout": "method",
            "main": "function",
        },
    ),
    "sample.cs": (
        "csharp",
        {
            "Example.Greet": "namespace",
            "Example.Greet.Greeter": "class",
            "Example.Greet.Greeter.Greeter": "method",
            "Example.Greet.Greeter.Greet": "method",
            "Example.Greet.Greeter.Config": "class",
            "Example.Greet.Greeter.Config.Load": "method",
            "Example.Greet.ISpeaker": "interface",
            "Example.Greet.ISpeaker.Speak": "method",
            "Example.Greet.Point": "struct",
            "Example.Greet.Mood": "enum",
            "Example.Greet.Program.Main": "method",
        },
    ),
    "sample.rb": (
        "ruby",
        {
            "Greetings": "namespace",
            "Greetings.Greeter": "class",
            "Greetings.Greeter.initialize": "method",
            "Greetings.Greeter.greet": "method",
            "Greetings.Greeter.create": "method",
            "main": "function",
        },
    ),
    "sample.php": (
        "php",
        {
            "Speaker": "interface",
            "Speaker.speak": "method",
            "Loud": "trait",
            "Loud.shout": "method",
            "Greeter": "class",
            "Greeter.__construct": "method",
            "Greeter.greet": "method",
            "Mood": "enum",
            "main": "function",
        },
    ),
    "sample.kt": (
        "kotlin",
        {
            "Greeter": "class",
            "Greeter.greet": "method",
            "Greeter.Config": "class",
            "Greeter.Config.load": "method",
            "Greeter.create": "method",
            "Speaker": "interface",
            "Registry": "class",
            "Registry.register": "method",
            "Mood": "enum",
            "Point": "class",
            "main": "function",
        },
    ),
    "sample.swift": (
        "swift",
        {
            "Greeter": "class",
            "Greeter.init": "method",
            "Greeter.greet": "method",
            "Greeter.Config": "struct",
            "Speaker": "interface",
            "Speaker.speak": "method",
            "Point": "struct",
            "Point.length": "method",
            "Mood": "enum",
            "Greeter.speak": "method",
            "main": "function",
        },
    ),
    "sample.sh": ("bash", {"greet": "function", "main": "function"}),
}


def _parse_fixture(name: str) -> ParsedFile:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    language = language_for_path(name, text.split("\n", 1)[0])
    return parse_file(name, text, language)


def _chunk(parsed: ParsedFile, symbol: str, kind: str | None = None) -> Chunk:
    found = [c for c in parsed.chunks if c.symbol == symbol and kind in (None, c.kind)]
    assert found, f"no chunk for {symbol!r}: {[(c.kind, c.symbol) for c in parsed.chunks]}"
    return found[0]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_yields_the_expected_qualified_symbols(name: str) -> None:
    language, expected = EXPECTED[name]
    parsed = _parse_fixture(name)
    assert parsed.language == language
    assert not parsed.syntax_errors
    kinds = {(c.symbol, c.kind) for c in parsed.chunks}
    missing = {(symbol, kind) for symbol, kind in expected.items() if (symbol, kind) not in kinds}
    assert not missing, f"missing {missing}; got {sorted(kinds)}"
    assert all(c.language == language and c.path == name for c in parsed.chunks)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_non_blank_line_is_in_some_chunk(name: str) -> None:
    parsed = _parse_fixture(name)
    lines = (FIXTURES / name).read_text(encoding="utf-8").split("\n")
    covered = {n for c in parsed.chunks for n in range(c.start_line, c.end_line + 1)}
    missing = [n for n, line in enumerate(lines, 1) if line.strip() and n not in covered]
    assert not missing


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_one_definition_per_symbol_chunk(name: str) -> None:
    parsed = _parse_fixture(name)
    chunk_symbols = [
        (c.symbol, c.kind) for c in parsed.chunks if c.kind not in ("module", "block", "window")
    ]
    assert sorted((d.symbol, d.kind) for d in parsed.definitions) == sorted(chunk_symbols)
    for definition in parsed.definitions:
        assert definition.symbol.endswith(definition.name)
        assert definition.line >= 1 and definition.signature


def test_chunk_lines_are_the_source_lines() -> None:
    parsed = _parse_fixture("sample.go")
    lines = (FIXTURES / "sample.go").read_text(encoding="utf-8").split("\n")
    chunk = _chunk(parsed, "NewGreeter")
    assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
    assert chunk.text.startswith("// NewGreeter makes a Greeter.\nfunc NewGreeter(")
    assert chunk.signature == "func NewGreeter(name string) *Greeter"


def test_python_docstrings_signatures_and_nesting() -> None:
    parsed = _parse_fixture("sample.py")
    greeter = _chunk(parsed, "Greeter", "class")
    assert greeter.docstring == "Say hello to people."
    assert greeter.signature == "class Greeter:"
    greet = _chunk(parsed, "Greeter.greet")
    assert greet.docstring == "Return the greeting for this person."
    assert greet.signature == 'def greet(self, punctuation: str = "!") -> str:'
    # a function nested in a method is part of the method, not a chunk of its own
    assert "def decorate(text: str)" in greet.text
    assert not any(c.symbol.endswith("decorate") for c in parsed.chunks)
    loud = _chunk(parsed, "Greeter.loud")
    assert loud.text.lstrip().startswith("@property")  # decorators belong to the definition
    assert loud.signature == "def loud(self) -> bool:"
    assert _chunk(parsed, "main").docstring == "Entry point: greet the first argument."
    assert _chunk(parsed, "fetch").signature == "async def fetch(url: str) -> bytes:"


def test_multiline_docstrings_lose_their_indentation() -> None:
    text = (
        "class A:\n"
        "    def f(self):\n"
        '        r"""First line.\n\n        More text\n          indented.\n        """\n'
        "        return 1\n"
    )
    parsed = parse_file("a.py", text, "python")
    assert _chunk(parsed, "A.f").docstring == "First line.\n\nMore text\n  indented."
    assert _chunk(parsed, "A", "class").docstring == ""


def test_class_chunk_keeps_member_signatures_but_not_their_bodies() -> None:
    parsed = _parse_fixture("sample.py")
    greeter = _chunk(parsed, "Greeter", "class")
    assert 'greeting = "Hello"' in greeter.text  # class-level statements stay
    assert "def greet(self, punctuation" in greeter.text
    assert "return decorate(" not in greeter.text
    assert "    class Config:" in greeter.text
    assert (greeter.start_line, greeter.end_line) == (9, 34)

    rust_impl = _chunk(_parse_fixture("sample.rs"), "Greeter", "impl")
    assert "pub fn greet(&self, punctuation: &str) -> String {" in rust_impl.text
    assert "format!" not in rust_impl.text


def test_comment_docstrings_in_other_languages() -> None:
    assert _chunk(_parse_fixture("sample.go"), "Greeter").docstring == (
        "Greeter says hello to people."
    )
    rust = _parse_fixture("sample.rs")
    assert _chunk(rust, "Greeter", "struct").docstring == "Says hello to people."
    assert _chunk(rust, "Greeter", "struct").text.startswith("/// Says hello")  # with #[derive]
    assert _chunk(rust, "Greeter.new").docstring == "Makes a greeter."
    assert _chunk(_parse_fixture("sample.js"), "Greeter").docstring == "Say hello to people."
    assert _chunk(_parse_fixture("Sample.java"), "Greeter.greet").docstring == (
        "Return the greeting for this person."
    )
    assert _chunk(_parse_fixture("sample.rb"), "Greetings.Greeter").docstring == (
        "Says hello to people."
    )
    assert _chunk(_parse_fixture("sample.cs"), "Example.Greet.Greeter").docstring == (
        "Says hello to people."
    )
    assert _chunk(_parse_fixture("sample.sh"), "greet").docstring == (
        "Print the greeting for a person."
    )


def test_module_header_and_gap_blocks() -> None:
    parsed = _parse_fixture("sample.py")
    module = _chunk(parsed, "", "module")
    assert (module.start_line, module.end_line) == (1, 6)
    assert "import os" in module.text and 'DEFAULT_NAME = "world"' in module.text
    assert module.docstring == "Greeting helpers used by the sample app."
    blocks = [c for c in parsed.chunks if c.kind == "block"]
    assert [b.text for b in blocks] == ['if __name__ == "__main__":\n    sys.exit(main(sys.argv))']
    assert blocks[0].start_line == 48
    go_module = _chunk(_parse_fixture("sample.go"), "", "module")
    assert go_module.docstring == "Package greet says hello."


def test_definitions_inside_top_level_statements_are_found() -> None:
    text = (
        "import sys\n\n"
        "if sys.platform == 'win32':\n"
        "    def native():\n        return 1\n"
        "else:\n"
        "    class Native:\n        def run(self):\n            return 2\n\n"
        "try:\n    import fast\nexcept ImportError:\n    def fast():\n        return 3\n"
    )
    parsed = parse_file("compat.py", text, "python")
    kinds = {(c.symbol, c.kind) for c in parsed.chunks}
    assert {("native", "function"), ("Native", "class"), ("Native.run", "method")} <= kinds
    assert ("fast", "function") in kinds
    # the statements around them stay searchable as header and gap blocks
    assert "if sys.platform" in _chunk(parsed, "", "module").text
    blocks = [c.text for c in parsed.chunks if c.kind == "block"]
    assert blocks == ["else:", "try:\n    import fast\nexcept ImportError:"]


def test_file_without_header_has_no_module_chunk() -> None:
    parsed = parse_file("a.py", "\n\ndef f():\n    return 1\n", "python")
    assert [(c.kind, c.symbol, c.start_line) for c in parsed.chunks] == [("function", "f", 3)]


def test_oversize_function_is_split_with_its_signature_repeated() -> None:
    body = "\n".join(f"    value_{i} = compute({i})  # step {i}" for i in range(400))
    text = f'import os\n\n\ndef big(alpha, beta):\n    """Long."""\n{body}\n    return 0\n'
    parsed = parse_file("big.py", text, "python")
    parts = [c for c in parsed.chunks if c.symbol == "big"]
    assert len(parts) >= 3
    assert all(p.kind == "function" and p.signature == "def big(alpha, beta):" for p in parts)
    assert all(len(p.text) <= MAX_CHARS and p.text.count("\n") < MAX_LINES for p in parts)
    assert parts[0].start_line == 4 and parts[0].text.startswith("def big(alpha, beta):")
    for previous, part in pairwise(parts):
        assert part.text.startswith("def big(alpha, beta):\n    ...\n")
        assert part.start_line == previous.end_line + 1  # real lines, no gaps, no overlap
        assert f"value_{part.start_line - 6} = " in part.text
    assert parts[-1].end_line == 406
    assert [d.symbol for d in parsed.definitions] == ["big"]  # one definition, not one per part


def test_a_huge_line_is_cut_into_parts() -> None:
    text = "const data = [" + ", ".join(str(i) for i in range(5000)) + "];\n"
    parsed = parse_file("data.min.js", text, "javascript")
    assert len(parsed.chunks) > 2
    assert all(len(c.text) <= MAX_CHARS for c in parsed.chunks)
    assert "".join(c.text for c in parsed.chunks) == text.rstrip("\n")


def test_file_with_syntax_errors_still_yields_its_valid_functions() -> None:
    text = (
        "import os\n\n"
        "def good_one(x):\n    return x + 1\n\n"
        "def broken(:\n    return )(\n\n"
        "class Fine:\n    def method(self):\n        return 2\n\n"
        "def good_two():\n    pass\n"
    )
    parsed = parse_file("broken.py", text, "python")
    assert parsed.syntax_errors
    symbols = {c.symbol for c in parsed.chunks}
    assert {"good_one", "Fine", "Fine.method", "good_two"} <= symbols


def test_plain_text_is_cut_into_overlapping_windows() -> None:
    text = "\n".join(f"line {i} of the notes" for i in range(1, 131)) + "\n"
    parsed = parse_file("notes.txt", text, None)
    assert parsed.language == "text"
    spans = [(c.kind, c.start_line, c.end_line) for c in parsed.chunks]
    assert spans == [("window", 1, 60), ("window", 51, 110), ("window", 101, 130)]
    assert parsed.chunks[1].text.startswith("line 51 of the notes")


def test_a_language_without_query_gets_windows_under_its_own_name() -> None:
    parsed = parse_file("config.yaml", "name: demo\nitems:\n  - one\n", "yaml")
    assert [(c.language, c.kind, c.start_line, c.end_line) for c in parsed.chunks] == [
        ("yaml", "window", 1, 3)
    ]


def test_markdown_is_split_at_headings_then_windows() -> None:
    text = (
        "Intro paragraph.\n\n"
        "# Install\n\nRun the installer.\n\n"
        "```bash\n# not a heading\nmake install\n```\n\n"
        "## Usage\n\n" + "\n".join(f"usage line {i}" for i in range(100)) + "\n"
    )
    parsed = parse_file("README.md", text, "markdown")
    assert [c.symbol for c in parsed.chunks] == ["", "Install", "Usage", "Usage"]
    install = parsed.chunks[1]
    assert install.start_line == 3 and "# not a heading" in install.text
    usage = parsed.chunks[2:]
    assert usage[0].start_line == 12 and usage[1].start_line == usage[0].start_line + 50


def test_empty_and_blank_files_have_no_chunks() -> None:
    for text in ("", "\n\n   \n\t"):
        for language in ("python", None, "markdown"):
            parsed = parse_file("empty", text, language)
            assert parsed.chunks == [] and parsed.definitions == [] and parsed.references == []


def test_crlf_line_endings() -> None:
    parsed = parse_file("w.py", 'def f():\r\n    """Doc."""\r\n    return 1\r\n', "python")
    (chunk,) = parsed.chunks
    assert chunk.text == 'def f():\n    """Doc."""\n    return 1'
    assert chunk.docstring == "Doc." and chunk.end_line == 3


def test_references_are_the_identifiers_used() -> None:
    text = (FIXTURES / "sample.py").read_text(encoding="utf-8")
    parsed = parse_file("sample.py", text, "python")
    refs = parsed.references
    assert refs == sorted(set(refs))
    assert {"Greeter", "environ", "isupper", "DEFAULT_NAME", "argv", "decorate"} <= set(refs)
    assert not {"def", "return", "self", "None", "os"} & set(refs)  # keywords, short names
    assert all(len(r) >= 3 for r in refs)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_references_match_the_identifier_regex(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "abcXYZ_019 \n\t.()[]{}+-*/é\u00a0\u4e2d0x1F 3rd _a9 9_a"
    text = "".join(rng.choice(alphabet) for _ in range(5000))
    expected = sorted({m for m in IDENTIFIER_PATTERN.findall(text) if len(m) >= 3})
    assert parse_file("noise.txt", text, None).references == expected


@pytest.mark.parametrize(
    ("path", "head", "expected"),
    [
        ("src/app.py", "", "python"),
        ("types.pyi", "", "python"),
        ("web/main.js", "", "javascript"),
        ("web/main.mjs", "", "javascript"),
        ("web/App.tsx", "", "tsx"),
        ("web/api.ts", "", "typescript"),
        ("cmd/main.go", "", "go"),
        ("src/lib.rs", "", "rust"),
        ("Main.java", "", "java"),
        ("core.c", "", "c"),
        ("core.h", "", "c"),
        ("core.hpp", "", "cpp"),
        ("core.cc", "", "cpp"),
        ("Program.cs", "", "csharp"),
        ("app.rb", "", "ruby"),
        ("Rakefile", "", "ruby"),
        ("index.php", "", "php"),
        ("Main.kt", "", "kotlin"),
        ("App.swift", "", "swift"),
        ("build.sh", "", "bash"),
        ("README.md", "", "markdown"),
        ("Makefile", "", "make"),
        ("Dockerfile", "", "dockerfile"),
        ("config.yaml", "", "yaml"),
        ("bin/tool", "#!/usr/bin/env python3", "python"),
        ("bin/tool", "#!/usr/bin/python3.11 -u", "python"),
        ("bin/run", "#!/bin/bash", "bash"),
        ("bin/run", "#!/bin/sh -e", "bash"),
        ("bin/run", "#!/usr/bin/env -S node --no-warnings", "javascript"),
        ("bin/run", "#!/usr/bin/env ruby", "ruby"),
        ("notes.txt", "", None),
        ("LICENSE", "", None),
        ("bin/tool", "#!/usr/bin/env unknown-interpreter", None),
        ("bin/tool", "just text", None),
        ("data.bin", "#!", None),
    ],
)
def test_language_for_path(path: str, head: str, expected: str | None) -> None:
    assert language_for_path(path, head) == expected


def test_every_symbol_language_has_a_query_file_that_compiles() -> None:
    queries = Path(__file__).parents[1] / "src" / "mcode" / "index" / "queries"
    for language in SYMBOL_LANGUAGES:
        assert (queries / f"{language}.scm").is_file()
    required = {"python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp"}
    assert required | {"csharp", "ruby", "php", "kotlin", "swift", "bash"} <= SYMBOL_LANGUAGES
    for language in SYMBOL_LANGUAGES:  # compiling happens on first use
        parse_file("x", "x\n", language)


_NASTY = [
    "",
    "   \n\t\n",
    "{" * 50 + "}" * 10,
    ")]}" * 30,
    "(" * 10_000 + ")" * 10_000,
    "(" * 1_000 + "{[",
    "\x00\x01 def f(): pass",
    "\ud800 lone surrogate def f(): pass",
    "class A:\n" * 300,
    "def f():\n" + "    if x:\n" * 300,
    '"""unterminated docstring\ndef f():\n    pass\n',
    "x = 1\nclass Half:",  # a header at the very end of a file being typed
    "def f():",
]


@pytest.mark.parametrize("language", [*sorted(SYMBOL_LANGUAGES), None, "markdown", "json"])
def test_never_raises(language: str | None) -> None:
    rng = random.Random(language or "")
    noise = bytes(rng.getrandbits(8) for _ in range(3000)).decode("utf-8", "replace")
    for text in [*_NASTY, noise]:
        parsed = parse_file("fuzz", text, language)
        for chunk in parsed.chunks:
            assert 1 <= chunk.start_line <= chunk.end_line
            assert len(chunk.text) <= MAX_CHARS
