"""Which repository paths mcode never looks at.

Git decides for discovery inside a repository (one `git ls-files`); these rules are the same
decision made without git: for the file watcher, which must drop events for ignored paths without a
subprocess, and for discovery in a directory that is not a repository. They follow git's order: a
`.gitignore` in a deeper directory overrides a shallower one, then `.git/info/exclude`, then
`core.excludesFile`, and nothing inside an ignored directory can be re-included. On top of git's
rules come the directories mcode always skips and a root `.mcodeignore`, which excludes even files
git tracks.

Known difference from git: these rules cannot know which files git tracks, so a tracked file that
matches a `.gitignore` pattern counts as ignored here (git would keep it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pathspec import GitIgnoreSpec

from mcode.fsio import is_reserved
from mcode.vcs import GitError, common_dir, config_value

# Third-party code checked into or installed inside a repository (Go's `vendor/` included).
VENDORED_DIRS: frozenset[str] = frozenset(
    {
        "vendor",
        "vendors",
        "third_party",
        "third-party",
        "node_modules",
        "bower_components",
        ".venv",
        "venv",
        "site-packages",
        "__pycache__",
        ".tox",
        "dist-packages",
    }
)

MCODEIGNORE = ".mcodeignore"
GITIGNORE = ".gitignore"
# How a watcher's batch names git's info/exclude, wherever the git directory lives.
GIT_EXCLUDE = ".git/info/exclude"


def is_ignore_file(path: str) -> bool:
    """Whether a change to `path` (repo-relative, as a watcher's batch names it) can change which
    files are ignored anywhere in the tree."""
    return path in (MCODEIGNORE, GIT_EXCLUDE) or path.rsplit("/", 1)[-1] == GITIGNORE


def read_spec(path: str | os.PathLike[str]) -> GitIgnoreSpec | None:
    """Compile an ignore file; None when it is missing, unreadable or has no patterns."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            spec = GitIgnoreSpec.from_lines(fh.read().splitlines())
    except (OSError, ValueError):
        return None
    # Comments and blank lines compile to patterns that decide nothing.
    return spec if any(p.include is not None for p in spec.patterns) else None


def _parents(path: str) -> Iterator[str]:
    """Yield the ancestor directories of a repo-relative path, shallowest first ("a", "a/b")."""
    start = 0
    while (cut := path.find("/", start)) != -1:
        yield path[:cut]
        start = cut + 1


def _decide(specs: list[tuple[str, GitIgnoreSpec]], path: str, is_dir: bool) -> bool | None:
    """Ask the specs, deepest first, about `path` itself; the first one with an opinion wins."""
    for base, spec in specs:
        if base:
            if not path.startswith(base + "/"):
                continue
            rel = path[len(base) + 1 :]
        else:
            rel = path
        verdict = spec.check_file(rel + "/" if is_dir else rel).include
        if verdict is not None:
            return verdict
    return None


def has_excluded_dir(path: str) -> bool:
    """Whether a directory of `path` (not its file name) is one mcode always skips: git's database
    or mcode's own store, in any letter case (`mcode.fsio.is_reserved`)."""
    return any(map(is_reserved, path.split("/")[:-1]))


@dataclass(slots=True)
class IgnoreRules:
    """Gitignore-style rules for one repository root, answering per repo-relative POSIX path."""

    gitignores: dict[str, GitIgnoreSpec] = field(default_factory=dict)  # dir ("" = root) -> spec
    fallbacks: list[GitIgnoreSpec] = field(default_factory=list)  # info/exclude, excludesFile
    mcodeignore: GitIgnoreSpec | None = None
    _ordered: list[tuple[str, GitIgnoreSpec]] | None = field(default=None, init=False, repr=False)

    @classmethod
    def load(cls, root: Path) -> IgnoreRules:
        """Read every ignore file that applies under `root`, walking only directories kept."""
        rules = cls(mcodeignore=read_spec(root / MCODEIGNORE))
        exclude = git_exclude_file(root)
        if exclude is not None:
            for source in (exclude, global_excludes_file(root)):
                spec = read_spec(source) if source is not None else None
                if spec is not None:
                    rules.fallbacks.append(spec)
        for _ in walk(root, rules):
            pass
        return rules

    def add_gitignore(self, directory: str, spec: GitIgnoreSpec) -> None:
        """Register the `.gitignore` of a repo-relative directory ("" for the root)."""
        self.gitignores[directory] = spec
        self._ordered = None

    def ignored(self, path: str, is_dir: bool = False) -> bool:
        """Whether mcode should never look at `path` (checks every directory above it too)."""
        parts = path.split("/")
        dirs = parts if is_dir else parts[:-1]
        if any(p in VENDORED_DIRS or is_reserved(p) for p in dirs):
            return True
        return any(self.ignored_here(parent, True) for parent in _parents(path)) or (
            self.ignored_here(path, is_dir)
        )

    def ignored_here(self, path: str, is_dir: bool = False) -> bool:
        """Judge `path` alone, assuming its directories were already found not ignored.

        A walk that prunes ignored directories calls this, so each entry costs one check.
        """
        if self.mcodeignore is not None and _decide([("", self.mcodeignore)], path, is_dir):
            return True
        if self._ordered is None:
            # Deepest directory first: a longer base path is never an ancestor of a shorter one.
            self._ordered = sorted(self.gitignores.items(), key=lambda kv: -len(kv[0]))
            self._ordered += [("", spec) for spec in self.fallbacks]
        return bool(_decide(self._ordered, path, is_dir))


@dataclass(slots=True)
class WalkedDir:
    """One directory of a pruning walk: the entries that are not directories, and what was cut."""

    path: str  # repo-relative, "" for the root
    files: list[str]  # repo-relative non-directory entries (symlinks included), not ignored
    vendored: list[str]  # repo-relative paths of vendored subdirectories, not entered
    error: OSError | None = None  # set when the directory could not be listed


def walk(root: Path, rules: IgnoreRules) -> Iterator[WalkedDir]:
    """Walk `root` without following symlinks, loading each `.gitignore` before judging siblings.

    Directory symlinks come back among `files`, so the caller decides what they are; a walk that
    never follows them cannot loop.
    """
    root_s = os.fspath(root)
    stack = [""]
    while stack:
        rel = stack.pop()
        abs_dir = os.path.join(root_s, rel) if rel else root_s
        found = WalkedDir(rel, [], [])
        try:
            with os.scandir(abs_dir) as entries:
                listing = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        except OSError as exc:
            found.error = exc
            yield found
            continue
        if (GITIGNORE, False) in listing:
            spec = read_spec(os.path.join(abs_dir, GITIGNORE))
            if spec is not None:
                rules.add_gitignore(rel, spec)
        prefix = rel + "/" if rel else ""
        subdirs = []
        for name, is_dir in listing:
            path = prefix + name
            if is_dir and is_reserved(name):
                continue
            if rules.ignored_here(path, is_dir):
                continue
            if not is_dir:
                found.files.append(path)
            elif name in VENDORED_DIRS:
                found.vendored.append(path)
            else:
                subdirs.append(path)
        stack.extend(sorted(subdirs, reverse=True))
        yield found


def git_exclude_file(root: Path) -> Path | None:
    """Git's `info/exclude` for a work tree root; None outside git."""
    common = common_dir(root)
    return common / "info" / "exclude" if common is not None else None


def global_excludes_file(root: Path) -> Path | None:
    """Where `core.excludesFile` points, defaulting as git does to `$XDG_CONFIG_HOME/git/ignore`."""
    try:
        configured = config_value(root, "core.excludesFile", path=True)
    except GitError:
        return None
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(xdg) / "git" / "ignore"
