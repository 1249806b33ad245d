"""Discovery over real directories and real git repositories: what gets indexed, what is skipped."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from mcode.index import discover as discover_module
from mcode.index.discover import SKIP_REASONS, discover, read_source
from mcode.index.ignore import IgnoreRules

MARK_GEN = "@" + "generated"  # spelled apart so this file is not itself taken for generated code


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the machine's git config and global excludes out of every test."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)
    return home


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=T", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def write(root: Path, path: str, text: str | bytes = "x = 1\n") -> Path:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text, encoding="utf-8")
    return target


def make_repo(root: Path) -> Path:
    root.mkdir(exist_ok=True)
    git(root, "init", "-q")
    return root


def paths(root: Path, **kwargs: int) -> list[str]:
    return [f.path for f in discover(root, **kwargs).files]


# --- git repositories -------------------------------------------------------------------------


def test_git_repo_lists_tracked_and_untracked_files_but_not_ignored_ones(
    tmp_path: Path, isolated_git: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    write(repo, "tracked.py")
    write(repo, ".gitignore", "*.log\nbuild/\n")
    write(repo, "app.log")
    write(repo, "build/out.py")
    write(repo, "pkg/.gitignore", "secret.py\n")
    write(repo, "pkg/secret.py")
    write(repo, "pkg/mod.py")
    git(repo, "add", "tracked.py", ".gitignore", "pkg/.gitignore")
    write(repo, "untracked.py")
    write(repo, ".git/info/exclude", "local-only.txt\n")
    write(repo, "local-only.txt")
    write(isolated_git, ".config/git/ignore", "*.swp\n")  # git's default core.excludesFile
    write(repo, "notes.py.swp")

    result = discover(repo)

    assert [f.path for f in result.files] == [
        ".gitignore",
        "pkg/.gitignore",
        "pkg/mod.py",
        "tracked.py",
        "untracked.py",
    ]
    assert result.skipped == {}
    first = result.files[-2]
    assert first.abspath == repo / "tracked.py"
    assert first.size == len("x = 1\n")
    assert first.mtime_ns == os.stat(repo / "tracked.py").st_mtime_ns


def test_configured_core_excludes_file_is_honoured(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    excludes = write(tmp_path, "my-excludes", "*.bak\n")
    git(repo, "config", "core.excludesFile", str(excludes))
    write(repo, "main.py")
    write(repo, "main.py.bak")

    assert paths(repo) == ["main.py"]
    rules = IgnoreRules.load(repo)
    assert rules.ignored("main.py.bak")
    assert not rules.ignored("main.py")


def test_mcodeignore_excludes_even_tracked_files(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    write(repo, "keep.py")
    write(repo, "docs/guide.py")
    write(repo, "fixtures/big.json", "{}")
    write(repo, "deep/a/fixtures/b.json", "{}")
    git(repo, "add", "-A")
    write(repo, ".mcodeignore", "docs/\nfixtures\n")

    assert paths(repo) == [".mcodeignore", "keep.py"]


def test_deleted_tracked_file_is_not_listed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    write(repo, "gone.py")
    write(repo, "stays.py")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    (repo / "gone.py").unlink()

    result = discover(repo)

    assert [f.path for f in result.files] == ["stays.py"]
    assert result.skipped == {}


def test_empty_repo_and_empty_directory_give_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    plain = tmp_path / "plain"
    plain.mkdir()
    for root in (repo, plain):
        result = discover(root)
        assert result.files == []
        assert result.skipped == {}
        assert result.skip_counts() == {}


def test_mcode_store_and_git_dir_are_never_listed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    write(repo, ".agentmemory/blocks/persona.md", "hi\n")
    write(repo, "sub/.agentmemory/x.py")
    write(repo, ".AgentMemory/blocks/persona.md", "hi\n")  # the same directory on macOS
    write(repo, "sub/.GIT/hooks/post.py")
    write(repo, "main.py")

    assert paths(repo) == ["main.py"]


def test_names_and_sizes_decide_the_first_stage(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    write(repo, "main.py", "print('hi')\n")
    write(repo, "empty.py", "")
    write(repo, "big.py", "#" * 500)
    write(repo, "logo.png", b"\x89PNG not really")
    write(repo, "lib/thing.pyc", b"\0\0")
    write(repo, "vendor/github.com/x/y.go", "package y\n")
    write(repo, "web/node_modules/left-pad/index.js", "module.exports = 1\n")
    write(repo, "third_party/lib.c", "int x;\n")
    write(repo, "vendor.py", "a file named like a vendored dir is fine\n")
    write(repo, "static/app.min.js", "var a=1;\n")
    write(repo, "api/service_pb2.py", "x = 1\n")
    write(repo, "package-lock.json", "{}\n")
    write(repo, "go.sum", "x\n")
    write(repo, "ui/Form.generated.cs", "class A {}\n")

    result = discover(repo, max_file_bytes=100)

    assert [f.path for f in result.files] == ["empty.py", "main.py", "vendor.py"]
    assert result.skipped == {
        "oversized": ["big.py"],
        "vendored": [
            "third_party/lib.c",
            "vendor/github.com/x/y.go",
            "web/node_modules/left-pad/index.js",
        ],
        "generated": [
            "api/service_pb2.py",
            "go.sum",
            "package-lock.json",
            "static/app.min.js",
            "ui/Form.generated.cs",
        ],
        "binary": ["lib/thing.pyc", "logo.png"],
    }
    assert result.skip_counts() == {"oversized": 1, "vendored": 3, "generated": 5, "binary": 2}
    assert list(result.skip_counts()) == [r for r in SKIP_REASONS if r in result.skipped]


def test_ignored_vendored_dir_is_neither_listed_nor_counted(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    write(repo, ".gitignore", "node_modules/\n")
    write(repo, "node_modules/a/index.js")
    write(repo, "app.js")

    result = discover(repo)

    assert [f.path for f in result.files] == [".gitignore", "app.js"]
    assert result.skipped == {}


# --- outside git --------------------------------------------------------------------------------


def test_outside_git_the_walk_honours_gitignore_files(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write(root, "main.py")
    write(root, ".gitignore", "*.log\nout/\n!keep.log\n")
    write(root, "debug.log")
    write(root, "keep.log")
    write(root, "out/gen.py")
    write(root, "src/.gitignore", "local_*.py\n")
    write(root, "src/local_cfg.py")
    write(root, "src/app.py")
    write(root, "src/deeper/local_x.py")
    write(root, "node_modules/pkg/index.js")
    write(root, "src/.venv/lib/site.py")
    write(root, ".agentmemory/store.lance", b"\0")
    write(root, ".mcodeignore", "docs/\n")
    write(root, "docs/a.md", "# a\n")

    result = discover(root)

    assert [f.path for f in result.files] == [
        ".gitignore",
        ".mcodeignore",
        "keep.log",
        "main.py",
        "src/.gitignore",
        "src/app.py",
    ]
    # A vendored tree is not walked outside git: counted once, as a directory.
    assert result.skipped == {"vendored": ["node_modules/", "src/.venv/"]}


# --- symlinks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("in_git", [True, False], ids=["git", "walk"])
def test_symlinks_loops_escapes_and_duplicates(tmp_path: Path, in_git: bool) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    if in_git:
        make_repo(root)
    outside = write(tmp_path, "elsewhere/secret.py")
    write(root, "real.py")
    write(root, ".gitignore", "hidden/\n")
    write(root, "hidden/target.py")
    os.symlink("b", root / "a")
    os.symlink("a", root / "b")
    write(root, "sub/mod.py")
    os.symlink("..", root / "sub" / "up")  # a directory link to its own parent
    os.symlink(outside, root / "escape.py")
    os.symlink("missing.py", root / "dangling.py")
    os.symlink("real.py", root / "alias.py")  # target indexed itself: duplicate
    os.symlink("hidden/target.py", root / "shown.py")  # target ignored: index the link
    os.symlink("sub", root / "subdir-link")  # directory inside: its files come under sub/

    result = discover(root)

    assert [f.path for f in result.files] == [".gitignore", "real.py", "shown.py", "sub/mod.py"]
    shown = result.files[2]
    assert shown.abspath == root / "shown.py"
    assert shown.size == os.stat(root / "hidden/target.py").st_size
    assert result.skipped == {
        "symlink-outside": ["escape.py"],
        "symlink-loop": ["a", "b", "sub/up"],
        "broken-symlink": ["dangling.py"],
        "symlink-duplicate": ["alias.py", "subdir-link"],
    }


# --- unreadable -----------------------------------------------------------------------------


def test_fifo_is_unreadable_and_reading_it_does_not_block(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    write(root, "ok.py")
    os.mkfifo(root / "pipe.py")

    result = discover(root)

    assert [f.path for f in result.files] == ["ok.py"]
    assert result.skipped == {"unreadable": ["pipe.py"]}
    assert read_source(root / "pipe.py", "pipe.py").skip_reason == "unreadable"


def test_file_that_cannot_be_stat_or_opened_is_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo")
    write(repo, "ok.py")
    locked = write(repo, "locked.py")
    hidden = write(repo, "private/inner.py")
    if os.geteuid() == 0:  # root reads through any mode bits: make the OS calls fail instead
        real_lstat, real_open = os.lstat, os.open

        def lstat(path: str, *args: object, **kwargs: object) -> os.stat_result:
            if os.fspath(path) == str(hidden):
                raise PermissionError(13, "Permission denied", path)
            return real_lstat(path, *args, **kwargs)  # type: ignore[arg-type]

        def open_(path: str, *args: object, **kwargs: object) -> int:
            if os.fspath(path) == str(locked):
                raise PermissionError(13, "Permission denied", path)
            return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(discover_module.os, "lstat", lstat)
        monkeypatch.setattr(discover_module.os, "open", open_)
    git(repo, "add", "-A")
    if os.geteuid() != 0:
        locked.chmod(0)
        hidden.parent.chmod(0o600)  # no search permission: the file inside cannot be stat'ed
    try:
        result = discover(repo)
        text = read_source(locked, "locked.py")
    finally:
        hidden.parent.chmod(0o700)

    assert "locked.py" in [f.path for f in result.files]  # stat works; only reading fails
    assert result.skipped == {"unreadable": ["private/inner.py"]}
    assert text == discover_module.SourceText(None, "unreadable", False, "")


# --- reading: the second stage --------------------------------------------------------------


def test_read_source_decodes_and_normalises_text(tmp_path: Path) -> None:
    raw = b"\xef\xbb\xbfdef f():\r\n    return 1\r\n"
    target = write(tmp_path, "win.py", raw)

    got = read_source(target, "win.py")

    assert got.text == "def f():\n    return 1\n"
    assert got.skip_reason is None
    assert got.invalid_utf8 is False
    assert got.content_hash == hashlib.sha256(raw).hexdigest()


def test_invalid_utf8_is_decoded_and_flagged_not_skipped(tmp_path: Path) -> None:
    target = write(tmp_path, "latin.py", b"name = 'caf\xe9'\n")

    got = read_source(target, "latin.py")

    assert got.text == "name = 'caf\ufffd'\n"
    assert got.invalid_utf8 is True
    assert got.skip_reason is None


def test_empty_file_is_read_not_skipped(tmp_path: Path) -> None:
    got = read_source(write(tmp_path, "empty.py", ""), "empty.py")
    assert got.text == ""
    assert got.skip_reason is None


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("blob.dat", b"head\0tail" + b"x" * 100, "binary"),
        ("api.py", f"# {MARK_GEN} by protoc\nx = 1\n".encode(), "generated"),
        ("db.go", b"// Code generated by sqlc. DO NOT EDIT.\npackage db\n", "generated"),
        ("x.ts", b"\n\n\n\n/* DO NOT EDIT */\nlet a = 1\n", "generated"),
        ("bundle.js", b"var a=1;" * 600, "minified"),  # one 4.8 KB line
        ("wide.js", (b"x" * 400 + b"\n") * 10, "minified"),  # mean line 400 chars over 4 KB
        ("huge_line.js", b"y" * 12_000 + b"\n" + b"z\n" * 4, "minified"),
    ],
)
def test_content_checks_skip_with_a_reason(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    got = read_source(write(tmp_path, name, content), name)

    assert got.text is None
    assert got.skip_reason == reason
    assert got.content_hash == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("late_marker.py", "a = 1\n" * 5 + f"# {MARK_GEN}\n"),  # marker below the first 5 lines
        ("short_long_line.js", "q" * 1500 + "\n"),  # long line but under 2 KB
        ("normal.py", "value = compute(alpha, beta)  # a typical line of code\n" * 200),
    ],
)
def test_ordinary_files_pass_the_content_checks(tmp_path: Path, name: str, content: str) -> None:
    got = read_source(write(tmp_path, name, content), name)

    assert got.skip_reason is None
    assert got.text == content


def test_file_grown_past_the_limit_since_discovery_is_oversized(tmp_path: Path) -> None:
    got = read_source(write(tmp_path, "grew.py", "a = 1\n" * 100), "grew.py", max_file_bytes=50)
    assert (got.text, got.skip_reason) == (None, "oversized")


# --- IgnoreRules (the watcher's filter) ---------------------------------------------------------


def test_ignore_rules_follow_git_precedence(tmp_path: Path, isolated_git: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    write(repo, ".gitignore", "*.log\n!keep.log\nbuild/\n/top.txt\n")
    write(repo, "pkg/.gitignore", "*.tmp\n!important.log\n")
    write(repo, "build/.gitignore", "!rescued.py\n")  # cannot re-include inside an ignored dir
    write(repo, ".git/info/exclude", "scratch/\n")
    write(isolated_git, ".config/git/ignore", "*.swp\n")
    write(repo, ".mcodeignore", "docs/\n")

    rules = IgnoreRules.load(repo)

    ignored = [
        "app.log",
        "pkg/deep/app.log",
        "build/out.py",
        "build/rescued.py",
        "top.txt",
        "pkg/x.tmp",
        "scratch/notes.md",
        "a/b/file.swp",
        "docs/guide.md",
        ".git/config",
        ".GIT/hooks/pre-commit",
        ".agentmemory/archival/data.lance",
        ".AgentMemory/blocks/x.md",
        "web/node_modules/x/index.js",
        "src/__pycache__/m.cpython-311.pyc",
        "vendor/github.com/a/b.go",
    ]
    kept = ["main.py", "keep.log", "pkg/important.log", "pkg/top.txt", "build.py", "src/vendor.py"]
    assert [p for p in ignored if not rules.ignored(p)] == []
    assert [p for p in kept if rules.ignored(p)] == []
    assert rules.ignored("build", is_dir=True)
    assert rules.ignored("node_modules", is_dir=True)
    assert not rules.ignored("build")  # "build/" only matches directories


def test_ignore_rules_outside_git_use_gitignore_files_only(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write(root, ".gitignore", "*.o\n")
    write(root, "lib/.gitignore", "gen/\n")

    rules = IgnoreRules.load(root)

    assert rules.ignored("x.o")
    assert rules.ignored("lib/gen/a.c")
    assert not rules.ignored("gen/a.c")  # nested patterns apply below their own directory
    assert not rules.ignored("lib/a.c")
