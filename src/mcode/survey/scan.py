"""Facts about a repository that `mcode init` can state without a model: its languages and layout,
the commands its manifests and CI declare, and the style of its commit messages.

Everything here is read from files and `git`, never guessed from names alone; a manifest that
cannot be parsed contributes nothing rather than failing the scan, since `init` must work on any
repository, half-broken ones included.
"""

from __future__ import annotations

import configparser
import json
import re
import statistics
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mcode.fsio import inside
from mcode.index.discover import discover
from mcode.index.languages import language_for_path
from mcode.vcs import recent_subjects

KINDS = ("install", "build", "test", "lint", "format", "typecheck", "run", "other")
# Formats that say nothing about what the project is written in.
_NOT_LANGUAGES = frozenset(
    {"markdown", "rst", "json", "yaml", "toml", "ini", "xml", "requirements", "gomod"}
)
_LANGUAGE_NAMES = {
    "python": "Python",
    "javascript": "JavaScript",
    "typescript": "TypeScript",
    "tsx": "TypeScript",
    "cpp": "C++",
    "c": "C",
    "csharp": "C#",
    "bash": "Shell",
    "make": "Make",
    "php": "PHP",
    "html": "HTML",
    "css": "CSS",
    "scss": "SCSS",
    "sql": "SQL",
    "objc": "Objective-C",
    "ocaml_interface": "OCaml",
    "ocaml": "OCaml",
    "dockerfile": "Dockerfile",
    "cuda": "CUDA",
    "hcl": "HCL",
    "graphql": "GraphQL",
}
_DIR_ROLES = {
    "tests": "tests",
    "test": "tests",
    "spec": "tests",
    "docs": "documentation",
    "doc": "documentation",
    "examples": "examples",
    "scripts": "scripts",
    "tools": "tools",
    "bin": "executables",
    ".github": "GitHub config and CI",
    "benchmarks": "benchmarks",
    "prompts": "prompt templates",
}
_MAX_LAYOUT_DIRS = 15
_MAX_TOP_FILES = 12
_MAX_CI_COMMANDS = 8
_MAX_OTHER_TARGETS = 6
_COMMIT_SAMPLE = 50


@dataclass(frozen=True, slots=True)
class Command:
    kind: str  # one of KINDS
    command: str  # the exact command line
    source: str  # the file that declares it, repo-relative
    detail: str = ""  # what it runs, when the command is an alias (a package.json script…)


@dataclass(frozen=True, slots=True)
class LayoutEntry:
    path: str  # "src/mcode/" for a directory, "pyproject.toml" for a file
    files: int
    language: str = ""  # the directory's main language, display name
    role: str = ""  # "tests", "documentation"…


@dataclass(frozen=True, slots=True)
class CommitStyle:
    sampled: int
    conventional: float  # share of subjects in Conventional Commits form
    types: tuple[str, ...]  # the conventional types seen, most used first
    scoped: float  # share of conventional subjects with a (scope)
    area_prefix: float  # share of "area: summary" subjects that are not conventional
    areas: tuple[str, ...]
    imperative: float  # share of subjects, among those whose mood is recognised
    capitalized: float  # share of summaries starting with a capital letter
    trailing_period: float
    median_length: int
    max_length: int
    examples: tuple[str, ...]

    def describe(self) -> str:
        """One paragraph a model can follow when it writes a commit message here."""
        parts: list[str] = []
        if self.conventional >= 0.6:
            form = "`type(scope): summary`" if self.scoped >= 0.3 else "`type: summary`"
            parts.append(f"Conventional Commits, {form}; types used: {', '.join(self.types)}")
        elif self.area_prefix >= 0.5:
            parts.append(f"`area: summary` prefixes (areas seen: {', '.join(self.areas)})")
        else:
            parts.append("plain summaries without a prefix")
        if self.imperative >= 0.7:
            parts.append("imperative mood (“add”, not “added”)")
        elif self.imperative <= 0.3:
            parts.append("past tense or descriptive summaries")
        parts.append("summary starts with a capital" if self.capitalized >= 0.6 else "lower-case")
        if self.trailing_period < 0.2:
            parts.append("no trailing period")
        parts.append(f"about {self.median_length} chars (longest {self.max_length})")
        text = "; ".join(parts) + f" — from the last {self.sampled} commits."
        if self.examples:
            text += "\nExamples: " + "; ".join(f"`{e}`" for e in self.examples)
        return text


@dataclass(frozen=True, slots=True)
class ProjectScan:
    root: Path
    files: tuple[str, ...]  # repo-relative paths discovery kept
    description: str
    languages: tuple[tuple[str, int], ...]  # (display name, file count), most files first
    layout: tuple[LayoutEntry, ...]
    commands: tuple[Command, ...]
    tools: tuple[str, ...]
    commit_style: CommitStyle | None
    manifests: tuple[str, ...] = field(default=())


def scan_project(root: Path, files: Iterable[str] | None = None) -> ProjectScan:
    """Everything `init` states about the repository at `root`."""
    listed = tuple(files) if files is not None else list_files(root)
    manifests = _Manifests(root, listed)
    commands, tools = manifests.commands()
    return ProjectScan(
        root=root,
        files=listed,
        description=manifests.description() or _readme_summary(root, listed),
        languages=tuple(count_languages(listed)),
        layout=tuple(layout(listed)),
        commands=tuple(commands),
        tools=tuple(tools),
        commit_style=commit_style(root),
        manifests=tuple(manifests.found),
    )


def list_files(root: Path) -> tuple[str, ...]:
    """The repository's files as the index sees them: tracked and not ignored, minus vendored,
    generated and binary files."""
    return tuple(f.path for f in discover(root).files)


# Languages and layout -----------------------------------------------------------------------------


def _language(path: str) -> str | None:
    language = language_for_path(path)
    if language is None or language in _NOT_LANGUAGES:
        return None
    return _LANGUAGE_NAMES.get(language, language.replace("_", " ").title())


def count_languages(files: Iterable[str]) -> list[tuple[str, int]]:
    counts = Counter(lang for lang in map(_language, files) if lang is not None)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def layout(files: Iterable[str]) -> list[LayoutEntry]:
    """Top-level directories with their size and main language, then the top-level files.

    A directory whose files all sit in one subdirectory is shown down to it (`src/mcode/`), since
    that is where a reader actually has to go.
    """
    by_dir: dict[str, list[str]] = {}
    top_files: list[str] = []
    for path in files:
        head, sep, rest = path.partition("/")
        if not sep:
            top_files.append(path)
        elif head != ".agentmemory":
            by_dir.setdefault(head, []).append(rest)
    entries: list[LayoutEntry] = []
    for name, inner in by_dir.items():
        shown = name
        while inner and all("/" in p for p in inner) and len({p.split("/")[0] for p in inner}) == 1:
            child = inner[0].split("/")[0]
            shown = f"{shown}/{child}"
            inner = [p.split("/", 1)[1] for p in inner]
        main = count_languages(inner)
        language = main[0][0] if main else ""
        entries.append(LayoutEntry(f"{shown}/", len(inner), language, _DIR_ROLES.get(name, "")))
    entries.sort(key=lambda e: (-e.files, e.path))
    entries = sorted(entries[:_MAX_LAYOUT_DIRS], key=lambda e: e.path)
    entries += [LayoutEntry(name, 1) for name in sorted(top_files)[:_MAX_TOP_FILES]]
    return entries


def _readme_summary(root: Path, files: Iterable[str]) -> str:
    """The README's first paragraph of prose: badges, headings and HTML skipped."""
    readme = next((f for f in sorted(files) if re.fullmatch(r"(?i)readme(\.\w+)?", f)), None)
    if readme is None:
        return ""
    text = _read(root, readme)
    paragraph: list[str] = []
    in_fence = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        prose = stripped and not stripped.startswith(("#", "<", "[!", "![", "=", "-", "|", ">"))
        if in_fence or not prose:
            if paragraph:
                break
            continue
        paragraph.append(stripped)
    summary = " ".join(paragraph)
    return summary if len(summary) <= 400 else summary[:399].rsplit(" ", 1)[0] + "…"


# Commands from manifests --------------------------------------------------------------------------

_KIND_WORDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("typecheck", frozenset({"typecheck", "types", "mypy", "tsc", "pyright", "typing"})),
    ("format", frozenset({"format", "fmt", "prettier", "black", "isort", "autoformat"})),
    ("lint", frozenset({"lint", "eslint", "flake8", "ruff", "pylint", "clippy", "vet", "style"})),
    ("test", frozenset({"test", "tests", "spec", "check", "e2e", "unit", "coverage", "cov"})),
    ("build", frozenset({"build", "compile", "dist", "all", "package", "bundle", "release"})),
    ("install", frozenset({"install", "setup", "deps", "bootstrap", "sync"})),
    ("run", frozenset({"run", "start", "serve", "dev", "watch", "server"})),
)


def classify_name(name: str) -> str:
    """The kind of a script or target from its name: `test:unit` → test, `fmt` → format."""
    words = set(re.split(r"[^a-z0-9]+", name.lower())) | {name.lower()}
    for kind, known in _KIND_WORDS:
        if words & known:
            return kind
    return "other"


_LINE_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("format", re.compile(r"\b(ruff format|black|isort|prettier|cargo fmt|gofmt|go fmt)\b")),
    ("typecheck", re.compile(r"\b(mypy|pyright|tsc|typecheck)\b")),
    ("lint", re.compile(r"\b(lint|ruff( check)?|flake8|eslint|clippy|go vet|pre-commit run)\b")),
    ("test", re.compile(r"\b(pytest|tox|nox|test|tests|rspec|jest|vitest|unittest)\b")),
    ("build", re.compile(r"\b(build|compile|package)\b")),
    ("install", re.compile(r"\b(pip install|npm ci|npm install|uv sync|poetry install|bundle)\b")),
)


def classify_line(line: str) -> str | None:
    """The kind of a CI shell line, or None when it is scaffolding (echo, cd, setup…)."""
    for kind, pattern in _LINE_KINDS:
        if pattern.search(line):
            return kind
    return None


class _Manifests:
    """The build files of one repository, read once each."""

    def __init__(self, root: Path, files: tuple[str, ...]) -> None:
        self.root = root
        self.files = set(files)
        self.found: list[str] = []
        self._commands: list[Command] = []
        self._tools: list[str] = []

    def has(self, *names: str) -> str | None:
        for name in names:
            if name in self.files or (self.root / name).is_file():
                return name
        return None

    def add(self, kind: str, command: str, source: str, detail: str = "") -> None:
        self._commands.append(Command(kind, command, source, detail))

    def tool(self, name: str) -> None:
        if name not in self._tools:
            self._tools.append(name)

    def description(self) -> str:
        pyproject = _toml(self.root, "pyproject.toml")
        for value in (
            _dig(pyproject, "project", "description"),
            _dig(pyproject, "tool", "poetry", "description"),
            _dig(_json(self.root, "package.json"), "description"),
            _dig(_toml(self.root, "Cargo.toml"), "package", "description"),
        ):
            if isinstance(value, str) and value.strip():
                return value.strip()
        return ""

    def commands(self) -> tuple[list[Command], list[str]]:
        for reader in (
            self._python,
            self._tox_nox,
            self._node,
            self._make,
            self._rust,
            self._go,
            self._ruby,
            self._jvm,
            self._pre_commit,
            self._ci,
        ):
            reader()
        return _dedupe(self._commands), self._tools

    # Python ---------------------------------------------------------------------------------------

    def _python(self) -> None:
        data = _toml(self.root, "pyproject.toml")
        has_setup = self.has("setup.py", "setup.cfg")
        requirements = self.has("requirements-dev.txt", "requirements.txt")
        if not data and not has_setup and not requirements:
            return
        source = "pyproject.toml" if data else (has_setup or requirements or "")
        if data:
            self.found.append("pyproject.toml")
        tool = data.get("tool", {}) if isinstance(data.get("tool"), dict) else {}
        runner = self._python_runner(tool)
        self._python_install(data, tool, source, requirements)
        for name, target in [
            *_table(data, "project", "scripts"),
            *_table(tool, "poetry", "scripts"),
        ]:
            self.add("run", name, source, str(target))
        if self._uses_pytest(data, tool):
            self.add("test", f"{runner}pytest", source)
            self.tool("pytest")
        if "ruff" in tool or self.has("ruff.toml", ".ruff.toml"):
            self.add("lint", f"{runner}ruff check .", source)
            self.tool("ruff")
            if isinstance(tool.get("ruff"), dict) and "format" in tool["ruff"]:
                self.add("format", f"{runner}ruff format .", source)
        for name, kind in (("black", "format"), ("isort", "format"), ("pyright", "typecheck")):
            if name in tool:
                self.add(kind, f"{runner}{name} .", source)
                self.tool(name)
        if "mypy" in tool or self.has("mypy.ini"):
            files_set = isinstance(tool.get("mypy"), dict) and tool["mypy"].get("files")
            self.add("typecheck", f"{runner}mypy" + ("" if files_set else " ."), source)
            self.tool("mypy")
        for env, scripts in _hatch_scripts(tool):
            for name, body in scripts:
                target = name if env == "default" else f"{env}:{name}"
                self.add(classify_name(target), f"hatch run {target}", source, _short(body))
        for name, body in _table(tool, "pdm", "scripts"):
            self.add(classify_name(name), f"pdm run {name}", source, _short(body))
        for name, body in _table(tool, "poe", "tasks"):
            self.add(classify_name(name), f"poe {name}", source, _short(body))

    def _python_runner(self, tool: dict[str, Any]) -> str:
        if self.has("uv.lock"):
            return "uv run "
        if "poetry" in tool:
            return "poetry run "
        if "pdm" in tool:
            return "pdm run "
        return ""

    def _python_install(
        self, data: dict[str, Any], tool: dict[str, Any], source: str, requirements: str | None
    ) -> None:
        if self.has("uv.lock"):
            self.add("install", "uv sync", "uv.lock")
        elif "poetry" in tool:
            self.add("install", "poetry install", source)
        elif "pdm" in tool:
            self.add("install", "pdm install", source)
        elif "project" in data or self.has("setup.py"):
            extras = _dig(data, "project", "optional-dependencies") or {}
            extra = next((e for e in ("dev", "test", "tests") if e in extras), None)
            self.add(
                "install", f"pip install -e '.[{extra}]'" if extra else "pip install -e .", source
            )
        elif requirements:
            self.add("install", f"pip install -r {requirements}", requirements)

    def _uses_pytest(self, data: dict[str, Any], tool: dict[str, Any]) -> bool:
        if "pytest" in tool or self.has("pytest.ini", "conftest.py", "tests/conftest.py"):
            return True
        return "pytest" in json.dumps(
            [_dig(data, "project", "optional-dependencies"), data.get("dependency-groups")]
        )

    def _tox_nox(self) -> None:
        if self.has("tox.ini"):
            self.found.append("tox.ini")
            parser = configparser.ConfigParser(interpolation=None)
            try:
                parser.read_string(_read(self.root, "tox.ini"))
                envlist = parser.get("tox", "envlist", fallback="")
            except configparser.Error:
                envlist = ""
            self.add("test", "tox", "tox.ini", _short(" ".join(envlist.split())))
            self.tool("tox")
        if self.has("noxfile.py"):
            self.found.append("noxfile.py")
            text = _read(self.root, "noxfile.py")
            for name in re.findall(r"@nox\.session[^\n]*\n(?:\s*@[^\n]*\n)*\s*def (\w+)", text):
                self.add(classify_name(name), f"nox -s {name}", "noxfile.py")
            self.tool("nox")

    # JavaScript -----------------------------------------------------------------------------------

    def _node(self) -> None:
        data = _json(self.root, "package.json")
        if not data:
            return
        self.found.append("package.json")
        manager = "npm"
        for lock, name in (("pnpm-lock.yaml", "pnpm"), ("yarn.lock", "yarn"), ("bun.lockb", "bun")):
            if self.has(lock):
                manager = name
        install = "npm ci" if manager == "npm" and self.has("package-lock.json") else None
        self.add("install", install or f"{manager} install", "package.json")
        scripts = data.get("scripts") if isinstance(data.get("scripts"), dict) else {}
        for name, body in scripts.items():
            kind = classify_name(name)
            if kind == "other" or name.startswith(("pre", "post")):
                continue
            command = f"{manager} test" if name == "test" else f"{manager} run {name}"
            self.add(kind, command, "package.json", _short(str(body)))
        has_typecheck = any(classify_name(n) == "typecheck" for n in scripts)
        if self.has("tsconfig.json") and not has_typecheck:
            self.add("typecheck", "npx tsc --noEmit", "tsconfig.json")
        if any(f.startswith((".eslintrc", "eslint.config.")) for f in self.files):
            self.tool("eslint")
        if any(f.startswith((".prettierrc", "prettier.config.")) for f in self.files):
            self.tool("prettier")

    # Make -----------------------------------------------------------------------------------------

    def _make(self) -> None:
        name = self.has("Makefile", "makefile", "GNUmakefile")
        if name is None:
            return
        self.found.append(name)
        others: list[str] = []
        for target in make_targets(_read(self.root, name)):
            kind = classify_name(target)
            if kind != "other":
                self.add(kind, f"make {target}", name)
            elif target not in {"clean", "help"}:
                others.append(target)
        for target in others[:_MAX_OTHER_TARGETS]:
            self.add("other", f"make {target}", name)

    # Compiled languages ---------------------------------------------------------------------------

    def _rust(self) -> None:
        if not self.has("Cargo.toml"):
            return
        self.found.append("Cargo.toml")
        workspace = " --workspace" if "workspace" in _toml(self.root, "Cargo.toml") else ""
        self.add("build", f"cargo build{workspace}", "Cargo.toml")
        self.add("test", f"cargo test{workspace}", "Cargo.toml")
        self.add("lint", f"cargo clippy{workspace} --all-targets", "Cargo.toml")
        self.add("format", "cargo fmt", "Cargo.toml")

    def _go(self) -> None:
        if not self.has("go.mod"):
            return
        self.found.append("go.mod")
        self.add("build", "go build ./...", "go.mod")
        self.add("test", "go test ./...", "go.mod")
        self.add("lint", "go vet ./...", "go.mod")
        self.add("format", "gofmt -l .", "go.mod")
        config = self.has(".golangci.yml", ".golangci.yaml", ".golangci.toml")
        if config:
            self.add("lint", "golangci-lint run", config)

    def _ruby(self) -> None:
        if self.has("Gemfile"):
            self.found.append("Gemfile")
            self.add("install", "bundle install", "Gemfile")
        rakefile = self.has("Rakefile", "rakefile")
        if rakefile:
            self.found.append(rakefile)
            tasks = re.findall(r"""^\s*task\s+[:'"]?(\w+)""", _read(self.root, rakefile), re.M)
            for task in dict.fromkeys(t for t in tasks if t != "default"):
                self.add(classify_name(task), f"bundle exec rake {task}", rakefile)
        if self.has(".rspec") or any(f.startswith("spec/") for f in self.files):
            self.add("test", "bundle exec rspec", ".rspec" if self.has(".rspec") else "spec/")
        if self.has(".rubocop.yml"):
            self.add("lint", "bundle exec rubocop", ".rubocop.yml")

    def _jvm(self) -> None:
        if self.has("pom.xml"):
            self.found.append("pom.xml")
            mvn = "./mvnw" if self.has("mvnw") else "mvn"
            self.add("build", f"{mvn} package", "pom.xml")
            self.add("test", f"{mvn} test", "pom.xml")
        gradle = self.has("build.gradle.kts", "build.gradle")
        if gradle:
            self.found.append(gradle)
            tool = "./gradlew" if self.has("gradlew") else "gradle"
            self.add("build", f"{tool} build", gradle)
            self.add("test", f"{tool} test", gradle)

    # Hooks and CI ---------------------------------------------------------------------------------

    def _pre_commit(self) -> None:
        if not self.has(".pre-commit-config.yaml"):
            return
        self.found.append(".pre-commit-config.yaml")
        data = _yaml(self.root, ".pre-commit-config.yaml")
        hooks = [
            str(hook.get("id"))
            for repo in (data.get("repos") or [] if isinstance(data, dict) else [])
            if isinstance(repo, dict)
            for hook in repo.get("hooks") or []
            if isinstance(hook, dict) and hook.get("id")
        ]
        self.add("lint", "pre-commit run --all-files", ".pre-commit-config.yaml", ", ".join(hooks))
        if "ruff-format" in hooks:
            self.add("format", "ruff format .", ".pre-commit-config.yaml")
        self.tool("pre-commit")

    def _ci(self) -> None:
        found = 0
        for path in sorted(self.files):
            is_workflow = path.startswith(".github/workflows/") and path.endswith((".yml", ".yaml"))
            if not is_workflow and path != ".gitlab-ci.yml":
                continue
            self.found.append(path)
            for line in ci_run_lines(_yaml(self.root, path)):
                kind = classify_line(line)
                if kind is None or found >= _MAX_CI_COMMANDS:
                    continue
                self.add(kind, line, path)
                found += 1


def make_targets(text: str) -> list[str]:
    """Targets a user would type: not special (`.PHONY`), not pattern rules, not files."""
    targets: list[str] = []
    for match in re.finditer(r"^([A-Za-z0-9][^:=#\n\t]*?)\s*:(?![:=])", text, re.M):
        for name in match.group(1).split():
            if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name) and name not in targets:
                targets.append(name)
    return targets


def ci_run_lines(data: Any) -> list[str]:
    """The shell lines of a GitHub workflow's `run:` steps or a GitLab job's `script:`."""
    scripts: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "run" and isinstance(value, str):
                    scripts.append(value)
                elif key in ("script", "before_script") and isinstance(value, list):
                    scripts.extend(v for v in value if isinstance(v, str))
                else:
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(data)
    lines: list[str] = []
    for script in scripts:
        for line in script.replace("\\\n", " ").splitlines():
            line = " ".join(line.split())
            if line and not line.startswith(("#", "echo ", "cd ", "export ")) and line not in lines:
                lines.append(line)
    return lines


# Commit style -------------------------------------------------------------------------------------

_CONVENTIONAL = re.compile(
    r"^(feat|fix|docs|doc|style|refactor|perf|test|tests|build|ci|chore|revert|deps|release)"
    r"(\([^)]*\))?!?: (.+)$",
    re.I,
)
_AREA = re.compile(r"^([\w./-]{2,30}): (.+)$")
_VERBS_TEXT = """
    add allow avoid bump build change check clean create delete deprecate disable document drop
    enable ensure extend fix handle implement improve introduce keep let make merge move prevent
    print raise read reduce refactor remove rename replace restore return revert rewrite run set
    show simplify skip speed split support switch test update upgrade use write wire
"""
_VERBS = frozenset(_VERBS_TEXT.split())


def _mood(summary: str) -> bool | None:
    """True for an imperative first word, False for "added"/"adds"/"adding", None if unknown."""
    first = re.sub(r"[^a-z]", "", summary.split(" ", 1)[0].lower())
    if first in _VERBS:
        return True
    for suffix in ("ed", "d", "es", "s", "ing"):
        stem = first.removesuffix(suffix)
        if stem != first and (stem in _VERBS or stem + "e" in _VERBS or stem[:-1] in _VERBS):
            return False
    return None


def commit_style(root: Path, sample: int = _COMMIT_SAMPLE) -> CommitStyle | None:
    """The style of the recent commit subjects, or None without git history."""
    subjects = recent_subjects(root, sample)
    return analyze_subjects(subjects) if subjects else None


def analyze_subjects(subjects: list[str]) -> CommitStyle:
    types: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    scoped = 0
    summaries: list[str] = []
    for subject in subjects:
        conventional = _CONVENTIONAL.match(subject)
        area = _AREA.match(subject)
        if conventional:
            types[conventional.group(1).lower()] += 1
            scoped += bool(conventional.group(2))
            summaries.append(conventional.group(3))
        elif area:
            areas[area.group(1)] += 1
            summaries.append(area.group(2))
        else:
            summaries.append(subject)
    moods = [m for m in map(_mood, summaries) if m is not None]
    n = len(subjects)
    lengths = [len(s) for s in subjects]
    n_conventional = sum(types.values())
    return CommitStyle(
        sampled=n,
        conventional=n_conventional / n,
        types=tuple(t for t, _ in types.most_common(6)),
        scoped=scoped / n_conventional if n_conventional else 0.0,
        area_prefix=sum(areas.values()) / n,
        areas=tuple(a for a, _ in areas.most_common(6)),
        imperative=sum(moods) / len(moods) if moods else 0.5,
        capitalized=sum(s[:1].isupper() for s in summaries) / n,
        trailing_period=sum(s.endswith(".") for s in subjects) / n,
        median_length=round(statistics.median(lengths)),
        max_length=max(lengths),
        examples=tuple(subjects[:3]),
    )


# Small readers ------------------------------------------------------------------------------------


def _read(root: Path, name: str) -> str:
    """A project file's text; "" when absent, unreadable, or a link leading out of the repository
    (a README linked to ~/.ssh/id_rsa must not end up in the committed project block)."""
    try:
        return inside(root, root / name).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _toml(root: Path, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(_read(root, name))
    except tomllib.TOMLDecodeError:
        return {}


def _json(root: Path, name: str) -> dict[str, Any]:
    try:
        data = json.loads(_read(root, name) or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _yaml(root: Path, name: str) -> Any:
    try:
        return yaml.safe_load(_read(root, name))
    except yaml.YAMLError:
        return None


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _table(data: Any, *keys: str) -> list[tuple[str, Any]]:
    table = _dig(data, *keys)
    return list(table.items()) if isinstance(table, dict) else []


def _hatch_scripts(tool: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    envs = _dig(tool, "hatch", "envs")
    if not isinstance(envs, dict):
        return []
    out = []
    for env, config in envs.items():
        scripts = config.get("scripts") if isinstance(config, dict) else None
        if isinstance(scripts, dict):
            out.append((env, [(name, _script_text(body)) for name, body in scripts.items()]))
    return out


def _script_text(body: Any) -> str:
    if isinstance(body, list):
        return " && ".join(map(str, body))
    if isinstance(body, dict):
        return str(body.get("cmd") or body.get("shell") or body.get("call") or "")
    return str(body)


def _short(text: str, width: int = 70) -> str:
    text = " ".join(_script_text(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _dedupe(commands: list[Command]) -> list[Command]:
    """One line per command, grouped by kind in KINDS order, first declaration kept."""
    seen: dict[str, Command] = {}
    for command in commands:
        seen.setdefault(command.command, command)
    return sorted(seen.values(), key=lambda c: KINDS.index(c.kind))
