"""Which tree-sitter grammar a file belongs to, and what the chunker needs to know about each one.

Names are tree-sitter-language-pack names so that `get_parser(language_for_path(...))` just works.
The per-language facts below were read off trees parsed with the bundled grammars, not guessed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

_EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".c++": "cpp",
    ".hh": "cpp",
    ".hpp": "cpp",
    ".hxx": "cpp",
    ".h++": "cpp",
    ".ipp": "cpp",
    ".inl": "cpp",
    ".cs": "csharp",
    ".rb": "ruby",
    ".rake": "ruby",
    ".gemspec": "ruby",
    ".php": "php",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".swift": "swift",
    ".sh": "bash",
    ".bash": "bash",
    ".zsh": "bash",
    ".ksh": "bash",
    ".bats": "bash",
    # Languages that are chunked into windows but still carry their real name.
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".rst": "rst",
    ".json": "json",
    ".jsonc": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".ini": "ini",
    ".cfg": "ini",
    ".html": "html",
    ".htm": "html",
    ".xml": "xml",
    ".css": "css",
    ".scss": "scss",
    ".sql": "sql",
    ".lua": "lua",
    ".scala": "scala",
    ".sc": "scala",
    ".hs": "haskell",
    ".ex": "elixir",
    ".exs": "elixir",
    ".erl": "erlang",
    ".dart": "dart",
    ".pl": "perl",
    ".pm": "perl",
    ".r": "r",
    ".jl": "julia",
    ".zig": "zig",
    ".nim": "nim",
    ".ml": "ocaml",
    ".mli": "ocaml_interface",
    ".clj": "clojure",
    ".cljs": "clojure",
    ".el": "elisp",
    ".vue": "vue",
    ".svelte": "svelte",
    ".proto": "proto",
    ".graphql": "graphql",
    ".tf": "terraform",
    ".hcl": "hcl",
    ".nix": "nix",
    ".cmake": "cmake",
    ".m": "objc",
    ".mm": "objc",
    ".cu": "cuda",
    ".groovy": "groovy",
    ".gradle": "groovy",
    ".fish": "fish",
    ".ps1": "powershell",
    ".sol": "solidity",
    ".tex": "latex",
    ".vim": "vim",
    ".bzl": "starlark",
}

_FILE_NAMES: dict[str, str] = {
    "makefile": "make",
    "gnumakefile": "make",
    "dockerfile": "dockerfile",
    "cmakelists.txt": "cmake",
    "gemfile": "ruby",
    "rakefile": "ruby",
    "podfile": "ruby",
    "vagrantfile": "ruby",
    "build": "starlark",
    "build.bazel": "starlark",
    "workspace": "starlark",
    ".bashrc": "bash",
    ".bash_profile": "bash",
    ".profile": "bash",
    ".zshrc": "bash",
    "go.mod": "gomod",
    "requirements.txt": "requirements",
}

_INTERPRETERS: dict[str, str] = {
    "python": "python",
    "pypy": "python",
    "sh": "bash",
    "bash": "bash",
    "zsh": "bash",
    "ksh": "bash",
    "dash": "bash",
    "node": "javascript",
    "nodejs": "javascript",
    "deno": "typescript",
    "ts-node": "typescript",
    "ruby": "ruby",
    "php": "php",
    "perl": "perl",
    "lua": "lua",
    "kotlin": "kotlin",
    "swift": "swift",
}


def language_for_path(path: str, head: str = "") -> str | None:
    """tree-sitter-language-pack name for a file (by extension/file name; `head` = first line, for
    shebangs like #!/bin/bash or #!/usr/bin/env python3), or None for plain text."""
    base = os.path.basename(path).lower()
    language = _FILE_NAMES.get(base)
    if language is not None:
        return language
    if base.startswith("dockerfile."):
        return "dockerfile"
    _, ext = os.path.splitext(base)
    language = _EXTENSIONS.get(ext)
    if language is not None:
        return language
    return _language_for_shebang(head)


def _language_for_shebang(head: str) -> str | None:
    if not head.startswith("#!"):
        return None
    words = head[2:].split()
    if not words:
        return None
    program = os.path.basename(words[0])
    if program == "env":
        # `#!/usr/bin/env -S python3 -u`: the interpreter is the first word that is not an option.
        rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        if not rest:
            return None
        program = os.path.basename(rest[0])
    # python3.11 -> python, bash5 -> bash
    stem = program.rstrip("0123456789.")
    return _INTERPRETERS.get(stem)


_C_COMMENTS = ("//", "/*", "*")


@dataclass(frozen=True, slots=True)
class LanguageSpec:
    """What the chunker needs beyond the query file to turn one grammar's tree into chunks."""

    name: str
    # The definitions query only starts matches this deep below the root (pruning cost), and
    # again this deep below any container found so deep that its members lie beyond the limit
    # (and one deeper inside statements the query captures as @scope).
    root_depth: int
    inner_depth: int
    # Parents that belong to a definition's text: `export`, `template <...>`. (Python's decorated
    # definitions are captured by the query itself.)
    wrappers: frozenset[str] = frozenset()
    # Wrappers that only count when the definition is their single named child (`type (A; B)`).
    single_wrappers: frozenset[str] = frozenset()
    # Children that hold the body when the grammar has no `body` field.
    body_types: frozenset[str] = frozenset()
    # Line starts of comments and attributes that sit right above a definition.
    comment_prefixes: tuple[str, ...] = _C_COMMENTS
    attribute_prefixes: tuple[str, ...] = ()
    # A qualified name written in the source (`Foo::bar`, `App\\Greet`) uses this separator.
    scope_separator: str = ""
    family: str = "c"
    # Line starts that attach a line to the definition below it (comments and attributes).
    above_prefixes: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        prefixes = self.comment_prefixes + self.attribute_prefixes
        object.__setattr__(self, "above_prefixes", prefixes)


_SPECS = (
    LanguageSpec(
        "python",
        root_depth=2,
        inner_depth=2,
        comment_prefixes=("#",),
        family="python",
    ),
    *(
        LanguageSpec(
            name,
            root_depth=5,
            inner_depth=4,
            wrappers=frozenset({"export_statement"}),
            # `const f = () => ...`; `namespace N {}` (an expression statement in TypeScript)
            single_wrappers=frozenset(
                {"lexical_declaration", "variable_declaration", "expression_statement"}
            ),
        )
        for name in ("javascript", "typescript", "tsx")
    ),
    LanguageSpec(
        "go",
        root_depth=4,
        inner_depth=2,
        single_wrappers=frozenset({"type_declaration"}),
    ),
    LanguageSpec(
        "rust",
        root_depth=4,
        inner_depth=2,
        attribute_prefixes=("#[",),
        scope_separator="::",
    ),
    LanguageSpec("java", root_depth=4, inner_depth=3, attribute_prefixes=("@",)),
    LanguageSpec("c", root_depth=3, inner_depth=2),
    LanguageSpec(
        "cpp",
        root_depth=4,
        inner_depth=3,
        wrappers=frozenset({"template_declaration"}),
        single_wrappers=frozenset({"field_declaration"}),
        scope_separator="::",
    ),
    LanguageSpec(
        "csharp", root_depth=5, inner_depth=2, attribute_prefixes=("[",), scope_separator="."
    ),
    LanguageSpec(
        "ruby",
        root_depth=4,
        inner_depth=2,
        comment_prefixes=("#",),
        scope_separator="::",
        family="ruby",
    ),
    LanguageSpec(
        "php",
        root_depth=3,
        inner_depth=2,
        comment_prefixes=(*_C_COMMENTS, "#"),
        attribute_prefixes=("#[",),
        scope_separator="\\",
    ),
    LanguageSpec(
        "kotlin",
        root_depth=3,
        inner_depth=4,
        body_types=frozenset({"class_body", "enum_class_body", "function_body"}),
        attribute_prefixes=("@",),
    ),
    LanguageSpec("swift", root_depth=3, inner_depth=2, attribute_prefixes=("@",)),
    LanguageSpec("bash", root_depth=3, inner_depth=1, comment_prefixes=("#",), family="shell"),
)

LANGUAGE_SPECS: dict[str, LanguageSpec] = {spec.name: spec for spec in _SPECS}

SYMBOL_LANGUAGES: frozenset[str] = frozenset(LANGUAGE_SPECS)


# Words too common to say anything about what a file refers to, per family of languages.
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_COMMON = _words(
    "and not for while return else true false null None True False self this new try "
    "import from class def"
)
REFERENCE_STOPWORDS: dict[str, frozenset[str]] = {
    "python": _COMMON
    | _words(
        "elif pass except finally raise lambda yield async await global nonlocal assert "
        "del with cls"
    ),
    "c": _COMMON
    | _words(
        "const let var function public private protected static void int char long float "
        "double bool boolean nil case break continue default switch struct enum impl pub use "
        "package func interface extends implements type typedef export async await catch "
        "throw throws unsigned signed short auto final override virtual namespace using "
        "template typename string val fun mut sizeof include define endif ifdef ifndef "
        "undefined typeof instanceof abstract readonly super extern inline where"
    ),
    "ruby": _COMMON
    | _words(
        "end module then elsif unless until when case begin rescue ensure yield require "
        "require_relative attr_reader attr_writer attr_accessor nil puts private protected "
        "include extend"
    ),
    "shell": _COMMON
    | _words(
        "then elif done esac function local export echo case until readonly declare "
        "shift exit set unset"
    ),
    "text": _words(
        "the and for with that this from are was were you your not but can will have has "
        "which what when where how its into also may all any our use see"
    ),
}
