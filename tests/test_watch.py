from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import support.polling
from support.cli import run_in_process
from support.repos import indexed_repo, make_repo, mcode_env, opened_index, write_files

from mcode.config import Paths
from mcode.index.ignore import GIT_EXCLUDE
from mcode.index.pipeline import Indexer
from mcode.store import Manifest
from mcode.watch import Debouncer, RepoWatcher

DEADLINE = 5.0  # how long a poll may take before the test fails; a pass is far quicker


def poll(condition: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    """`support.polling.poll`, with this file's ceiling unless told."""
    return support.polling.poll(condition, timeout)


class Recorder:
    """The on_batch callback: remembers every batch, lets the test poll for what it expects."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self._lock = threading.Lock()

    def __call__(self, batch: list[str]) -> None:
        with self._lock:
            self.batches.append(list(batch))

    def paths(self) -> set[str]:
        with self._lock:
            return {path for batch in self.batches for path in batch}

    def wait_for(self, predicate: Callable[[Recorder], bool], timeout: float = DEADLINE) -> bool:
        return poll(lambda: predicate(self), timeout)

    def wait_paths(self, *paths: str, timeout: float = DEADLINE) -> bool:
        return self.wait_for(lambda r: set(paths) <= r.paths(), timeout)


def git_init(root: Path) -> None:
    subprocess.run(["git", "init", "-q", str(root)], check=True)


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=T", "-C", str(root), *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git_init(root)
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("x = 1\n")
    return root


@pytest.fixture
def watch(repo: Path) -> Iterator[Callable[..., tuple[RepoWatcher, Recorder]]]:
    """Start a watcher on `repo`; every watcher started here is stopped after the test."""
    started: list[RepoWatcher] = []

    def start(**kwargs: object) -> tuple[RepoWatcher, Recorder]:
        recorder = Recorder()
        watcher = RepoWatcher(repo, recorder, **kwargs)  # type: ignore[arg-type]
        watcher.start()
        started.append(watcher)
        return watcher, recorder

    yield start
    for watcher in started:
        watcher.stop()


# -- the debouncer, on a fake clock --------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_debouncer_flushes_after_the_quiet_period() -> None:
    clock = FakeClock()  # times below are binary fractions, so the arithmetic is exact
    debouncer = Debouncer(0.25, 4.0, clock)
    assert debouncer.due() is None
    debouncer.add("b.py")
    debouncer.add("a.py")
    debouncer.add("b.py")
    clock.now += 0.125
    assert debouncer.due() is None
    clock.now += 0.125
    assert debouncer.due() == ["a.py", "b.py"]
    assert debouncer.due() is None
    assert debouncer.deadline() is None


def test_debouncer_each_event_restarts_the_quiet_period() -> None:
    clock = FakeClock()
    debouncer = Debouncer(0.25, 4.0, clock)
    for i in range(10):
        debouncer.add(f"f{i}.py")
        clock.now += 0.125
        assert debouncer.due() is None
    clock.now += 0.125
    assert debouncer.due() == [f"f{i}.py" for i in range(10)]


def test_debouncer_flushes_a_continuing_burst_after_max_wait() -> None:
    clock = FakeClock()
    debouncer = Debouncer(0.25, 1.0, clock)
    debouncer.add("first.py")
    for _ in range(7):
        clock.now += 0.125
        debouncer.add("again.py")
        assert debouncer.due() is None
    clock.now += 0.125  # one second after the first path, though the last came just now
    assert debouncer.due() == ["again.py", "first.py"]
    # The next burst gets its own max-wait window, counted from its own first path.
    debouncer.add("later.py")
    assert debouncer.deadline() == clock.now + 0.25


def test_debouncer_due_accepts_an_explicit_time() -> None:
    debouncer = Debouncer(0.25, 4.0, FakeClock())
    debouncer.add("a.py")
    assert debouncer.due(now=100.125) is None
    assert debouncer.due(now=100.25) == ["a.py"]


# -- the watcher, on real files ---------------------------------------------------------------


def test_created_file_is_reported_within_a_second(watch, repo: Path) -> None:
    _, recorder = watch()
    written = time.monotonic()
    (repo / "src" / "new.py").write_text("y = 2\n")
    assert recorder.wait_paths("src/new.py")
    assert time.monotonic() - written < 1.0
    assert recorder.batches[0] == ["src/new.py"]


def test_edit_is_reported(watch, repo: Path) -> None:
    _, recorder = watch()
    with open(repo / "src" / "app.py", "a") as fh:
        fh.write("z = 3\n")
    assert recorder.wait_paths("src/app.py")


def test_delete_is_reported(watch, repo: Path) -> None:
    _, recorder = watch()
    (repo / "src" / "app.py").unlink()
    assert recorder.wait_paths("src/app.py")


def test_rename_reports_both_paths(watch, repo: Path) -> None:
    (repo / "lib").mkdir()
    (repo / "lib" / "util.py").write_text("u = 1\n")
    _, recorder = watch()
    (repo / "src" / "app.py").rename(repo / "src" / "main.py")
    (repo / "lib" / "util.py").rename(repo / "src" / "util.py")  # across directories
    assert recorder.wait_paths("src/app.py", "src/main.py", "lib/util.py", "src/util.py")


def test_a_burst_of_a_thousand_files_is_one_batch(watch, repo: Path) -> None:
    _, recorder = watch(quiet_seconds=0.3)
    expected = set()
    for i in range(1000):
        (repo / "src" / f"gen_{i:04}.py").write_text(f"n = {i}\n")
        expected.add(f"src/gen_{i:04}.py")
    assert recorder.wait_for(lambda r: bool(r.batches))
    # Anything arriving late would come as a second batch one quiet period later.
    assert not recorder.wait_for(lambda r: len(r.batches) > 1, timeout=0.6)
    assert len(recorder.batches) == 1
    assert set(recorder.batches[0]) == expected


def test_git_store_and_ignored_directories_are_neither_watched_nor_reported(
    watch, repo: Path
) -> None:
    for name in (".agentmemory/blocks", ".AgentMemory", "build/out/deep", "node_modules/pkg"):
        (repo / name).mkdir(parents=True)
    ignored_roots = ("build", "node_modules")

    def ignore(path: str, is_dir: bool) -> bool:
        return path.split("/")[0] in ignored_roots or path.endswith(".pyc")

    watcher, recorder = watch(ignore=ignore)
    assert watcher.watched_dirs == 2  # the root and src/
    (repo / ".agentmemory" / "blocks" / "persona.md").write_text("me\n")
    (repo / ".AgentMemory" / "notes.md").write_text("me\n")  # the same directory on macOS
    (repo / "build" / "out" / "deep" / "a.o").write_text("obj\n")
    (repo / "node_modules" / "pkg" / "index.js").write_text("js\n")
    (repo / "node_modules" / "new_pkg").mkdir()
    (repo / "src" / "app.pyc").write_bytes(b"\0")
    (repo / ".git" / "scratch").write_text("x\n")
    git(repo, "add", "src/app.py")
    git(repo, "commit", "-q", "-m", "first")
    (repo / "src" / "sentinel.py").write_text("s = 1\n")

    assert recorder.wait_paths("src/sentinel.py")
    assert recorder.paths() == {"src/sentinel.py"}
    assert watcher.watched_dirs == 2


def test_new_subdirectory_is_watched_and_its_files_reported(watch, repo: Path) -> None:
    watcher, recorder = watch()
    before = watcher.watched_dirs
    # Written at once: the files exist before the watcher has had a chance to watch the directory.
    (repo / "pkg" / "sub").mkdir(parents=True)
    (repo / "pkg" / "sub" / "early.py").write_text("e = 1\n")
    assert recorder.wait_paths("pkg/sub/early.py")
    assert poll(lambda: watcher.watched_dirs == before + 2)
    (repo / "pkg" / "sub" / "late.py").write_text("l = 1\n")
    assert recorder.wait_paths("pkg/sub/late.py")


def test_deleted_directory_is_reported_with_a_trailing_slash_and_unwatched(
    watch, repo: Path
) -> None:
    (repo / "old" / "inner").mkdir(parents=True)
    (repo / "old" / "inner" / "a.py").write_text("a = 1\n")
    watcher, recorder = watch()
    assert watcher.watched_dirs == 4
    shutil.rmtree(repo / "old")
    assert recorder.wait_paths("old/")
    assert poll(lambda: watcher.watched_dirs == 2)


def test_directory_moved_away_or_within_the_repo(watch, repo: Path, tmp_path: Path) -> None:
    for name in ("gone", "before"):
        (repo / name).mkdir()
        (repo / name / "m.py").write_text("m = 1\n")
    watcher, recorder = watch()
    (repo / "gone").rename(tmp_path / "outside")
    (repo / "before").rename(repo / "src" / "after")
    assert recorder.wait_paths("gone/", "before/", "src/after/m.py")
    assert poll(lambda: watcher.watched_dirs == 3)  # root, src, src/after
    # The moved directory is watched under its new name, not the stale one.
    (repo / "src" / "after" / "n.py").write_text("n = 1\n")
    assert recorder.wait_paths("src/after/n.py")
    assert not any(path.startswith("before/") and path != "before/" for path in recorder.paths())


def test_a_failing_on_batch_does_not_stop_later_batches(repo: Path) -> None:
    batches: list[list[str]] = []
    errors: list[BaseException] = []

    def on_batch(batch: list[str]) -> None:
        batches.append(batch)
        if len(batches) == 1:
            raise RuntimeError("indexer broke")

    with RepoWatcher(repo, on_batch, on_error=errors.append):
        (repo / "src" / "one.py").write_text("1\n")
        assert poll(lambda: len(errors) == 1)
        (repo / "src" / "two.py").write_text("2\n")
        assert poll(lambda: ["src/two.py"] in batches)
    assert str(errors[0]) == "indexer broke"


def test_stop_ends_the_threads_and_reports_nothing_more(repo: Path) -> None:
    recorder = Recorder()
    watcher = RepoWatcher(repo, recorder)
    watcher.start()
    (repo / "src" / "before.py").write_text("b\n")
    assert recorder.wait_paths("src/before.py")
    watcher.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("mcode-watch")]
    count = len(recorder.batches)
    (repo / "src" / "after.py").write_text("a\n")
    assert not recorder.wait_for(lambda r: len(r.batches) > count, timeout=0.3)


def test_symlinked_directories_are_not_followed(watch, repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, repo / "link")
    watcher, recorder = watch()
    assert watcher.watched_dirs == 2
    (elsewhere / "x.py").write_text("x\n")
    (repo / "src" / "sentinel.py").write_text("s\n")
    assert recorder.wait_paths("src/sentinel.py")
    assert "link/x.py" not in recorder.paths()


def test_rescan_brings_the_watched_directories_in_step_with_changed_rules(
    watch, repo: Path
) -> None:
    write_files(repo, {"scratch/draft.py": "d = 1\n", "build/deep/out.py": "o = 1\n"})
    ignored = {"scratch"}

    def ignore(path: str, is_dir: bool) -> bool:
        return path.split("/")[0] in ignored

    watcher, recorder = watch(ignore=ignore)
    assert watcher.watched_dirs == 4  # the root, src, build, build/deep
    ignored.clear()
    ignored.add("build")
    watcher.rescan()
    # Files of a directory nobody watched until now are reported: they may never have been seen.
    assert recorder.wait_paths("scratch/draft.py")
    assert poll(lambda: watcher.watched_dirs == 3)  # the root, src, scratch
    (repo / "scratch" / "later.py").write_text("l = 1\n")
    assert recorder.wait_paths("scratch/later.py")
    # The files of directories watched all along are not reported again.
    assert recorder.paths() == {"scratch/draft.py", "scratch/later.py"}


def test_a_file_outside_the_tree_is_reported_under_the_name_given_for_it(
    watch, repo: Path, tmp_path: Path
) -> None:
    exclude = repo / ".git" / "info" / "exclude"
    exclude.parent.mkdir(exist_ok=True)
    _, recorder = watch(also_watch={str(exclude): GIT_EXCLUDE})
    (repo / ".git" / "info" / "attributes").write_text("* text=auto\n")
    exclude.write_text("*.log\n")
    assert recorder.wait_paths(GIT_EXCLUDE)
    # An editor's save that writes a new file and moves it over the old one counts too.
    recorder.batches.clear()
    replacement = exclude.with_name("exclude.tmp")
    replacement.write_text("*.tmp\n")
    replacement.replace(exclude)
    (repo / "src" / "sentinel.py").write_text("s = 1\n")
    assert recorder.wait_paths(GIT_EXCLUDE, "src/sentinel.py")
    assert recorder.paths() == {GIT_EXCLUDE, "src/sentinel.py"}


# -- the watcher's batches reaching the index (Indexer.process_changes) ----------------------------

INDEXED = {
    "pkg/a.py": (
        "def alpha_first():\n    return 1\n\n\n"
        "def alpha_second():\n    return 2\n\n\n"
        "def alpha_third():\n    return 3\n"
    ),
    "pkg2/c.py": "def gamma_sibling():\n    return 3\n",
    "pkg-old/d.py": "def delta_neighbour():\n    return 4\n",
    "top.py": "def top_level_helper():\n    return 5\n",
}


class Killed(BaseException):
    """Stands for kill -9 at the point where it is raised: nothing after it runs."""


def symbols(indexer: Indexer, path: str) -> list[str]:
    rows = indexer.store.rows_for_paths([path])
    return [r["symbol"] for r in sorted(rows, key=lambda r: r["start_line"])]


@pytest.fixture
def indexed(tmp_path: Path) -> Iterator[Indexer]:
    with indexed_repo(tmp_path / "indexed", INDEXED, tmp_path) as indexer:
        yield indexer


def test_an_edited_file_is_searchable_at_once_and_its_old_chunks_are_gone(indexed: Indexer) -> None:
    (indexed.root / "pkg/a.py").write_text("def alpha_renamed():\n    return 1\n")
    report = indexed.process_changes(["pkg/a.py"])
    assert report.changed == 1
    assert symbols(indexed, "pkg/a.py") == ["alpha_renamed"]
    assert [r["symbol"] for r in indexed.store.full_text("alpha_renamed", 3)] == ["alpha_renamed"]
    assert indexed.store.full_text("third", 3) == []


def test_a_deleted_directory_takes_exactly_its_files_rows(indexed: Indexer) -> None:
    shutil.rmtree(indexed.root / "pkg")
    report = indexed.process_changes(["pkg/"])
    assert report.deleted == 1
    assert symbols(indexed, "pkg/a.py") == []
    for path in ("pkg2/c.py", "pkg-old/d.py", "top.py"):  # names that sort around "pkg/"
        assert symbols(indexed, path), path


def test_a_file_a_killed_run_left_half_written_is_rewritten_by_the_next_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "killed"
    write_files(root, INDEXED)
    path = root / "pkg/a.py"
    with opened_index(root, tmp_path) as first:
        first.update()
        before = path.stat()
        path.write_text("def alpha_shrunk():\n    return 1\n")

        def killed(*args: object) -> None:
            raise Killed

        # Die between the commit of the new rows and the delete of the leftover old ones.
        monkeypatch.setattr(first.store._table, "delete", killed)
        with pytest.raises(Killed):
            first.process_changes(["pkg/a.py"])
    # The user undoes the edit: the bytes and the stat are the ones the manifest recorded.
    path.write_text(INDEXED["pkg/a.py"])
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    # The next process's first batch names another file only.
    with opened_index(root, tmp_path) as after:
        after.process_changes(["top.py"])
        assert symbols(after, "pkg/a.py") == ["alpha_first", "alpha_second", "alpha_third"]
        assert after.store.full_text("shrunk", 3) == []
        assert after.update().changed == 0  # and nothing is left to redo


# -- ignore files: what they now ignore leaves the index, what they no longer ignore enters it -------

IGNORABLE = {
    "keep.py": "def kept_function():\n    return 1\n",
    "pkg/built.py": "def built_function():\n    return 2\n",
    "scratch/draft.py": "def draft_function():\n    return 3\n",
}


@pytest.mark.parametrize(
    ("ignore_file", "pattern"),
    [
        (".gitignore", "pkg/built.py"),
        ("pkg/.gitignore", "built.py"),
        (".mcodeignore", "pkg/"),
        (GIT_EXCLUDE, "built.py"),
    ],
)
def test_an_ignore_file_that_now_ignores_a_file_takes_its_rows(
    tmp_path: Path, ignore_file: str, pattern: str
) -> None:
    root = tmp_path / "repo"
    git_init(root)
    with indexed_repo(root, IGNORABLE, tmp_path) as indexer:
        assert symbols(indexer, "pkg/built.py") == ["built_function"]
        write_files(root, {ignore_file: pattern + "\n"})
        report = indexer.process_changes([ignore_file])
        assert report.deleted == 1
        assert symbols(indexer, "pkg/built.py") == []
        assert "pkg/built.py" not in {r["path"] for r in indexer.store.full_text("built", 10)}
        assert symbols(indexer, "keep.py") == ["kept_function"]


def test_files_an_ignore_file_no_longer_ignores_are_indexed(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    git_init(root)
    with indexed_repo(root, {**IGNORABLE, ".gitignore": "scratch/\n"}, tmp_path) as indexer:
        assert symbols(indexer, "scratch/draft.py") == []
        (root / ".gitignore").write_text("# nothing ignored\n")
        indexer.process_changes([".gitignore"])
        assert symbols(indexer, "scratch/draft.py") == ["draft_function"]
        assert symbols(indexer, "keep.py") == ["kept_function"]


def test_ignore_rules_outside_git_are_followed_too(tmp_path: Path) -> None:
    with indexed_repo(tmp_path / "plain", IGNORABLE, tmp_path) as indexer:
        (indexer.root / ".gitignore").write_text("pkg/\n")
        indexer.process_changes([".gitignore"])
        assert symbols(indexer, "pkg/built.py") == []
        assert symbols(indexer, "scratch/draft.py") == ["draft_function"]


END_TO_END = 120.0  # seconds: a real `mcode watch` process on a machine that may be busy


def test_mcode_watch_follows_ignore_files_and_mcode_index_says_who_holds_the_index(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo", {**IGNORABLE, ".gitignore": "scratch/\n"}, commit=False)
    env = mcode_env(tmp_path / "home", MCODE_EMBEDDING_MODEL="none")
    manifest_path = Paths.for_repo(repo).index / "manifest.db"

    def indexed() -> set[str]:
        if not manifest_path.exists():
            return set()
        manifest = Manifest(manifest_path)
        try:
            return {path for path in manifest.states() if path.endswith(".py")}
        finally:
            manifest.close()

    proc = subprocess.Popen(
        [sys.executable, "-m", "mcode", "watch", "--repo", str(repo)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    said: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            said.append(line)

    threading.Thread(target=read_stderr, daemon=True).start()
    try:
        # It says so once the first full pass is over (a Ctrl-C before then ends that pass).
        assert poll(lambda: any("watching" in line for line in said), END_TO_END), said
        assert indexed() == {"keep.py", "pkg/built.py"}
        (repo / ".gitignore").write_text("pkg/\n")
        assert poll(lambda: indexed() == {"keep.py", "scratch/draft.py"}, END_TO_END)
        (repo / "scratch" / "later.py").write_text("def later_function():\n    return 4\n")
        assert poll(lambda: "scratch/later.py" in indexed(), END_TO_END)
        (repo / ".git" / "info" / "exclude").write_text("keep.py\n")
        assert poll(lambda: "keep.py" not in indexed(), END_TO_END)

        out = run_in_process(["index", "--repo", str(repo)], env)
        assert out.returncode == 1
        assert out.stderr.splitlines() == [
            f"mcode: mcode watch (pid {proc.pid}) is keeping this index up to date (changed "
            "files, and the whole tree when an ignore file changes) and holds its lock; "
            "stop it to run mcode index"
        ]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=END_TO_END) == 0
