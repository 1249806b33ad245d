"""Bringing module summaries up to date with the index: what needs a new summary, and writing it.

The queue is never stored: it is what the index holds that the summaries do not match. A file
whose raw hash is the one its summary last saw costs nothing; one whose hash moved is read, and if
only comments or whitespace changed its summary is kept and merely re-stamped. Summaries are
written as they are made (model ones one by one, structural ones in small batches), so a pass
stopped at any point, even by `kill -9`, loses at most a batch of free work and the next pass
resumes from what is stored. Directories come last, deepest first: a directory's summary is made
from its children's, and is redone when any child's changed.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mcode.fsio import UnsafePathError, clock, inside
from mcode.index.chunker import parse_file
from mcode.index.discover import read_source
from mcode.index.languages import language_for_path
from mcode.index.worker import exit_with_parent
from mcode.secrets import redact
from mcode.store import Manifest
from mcode.store.summaries import STRUCTURAL, Summary, SummaryStore, is_model, summary_id
from mcode.summary.graph import ModuleGraph
from mcode.summary.normalize import meaningful_hash
from mcode.summary.structural import dir_summary, file_summary

ROOT = "."
BATCH_SECONDS = 2.0  # structural summaries are committed at least this often
BATCH_ROWS = 256
POOL_MIN_FILES = 200  # fewer files are read in this process: starting workers costs ~1 s


@dataclass(slots=True)
class FileJob:
    """One file to summarise, read and parsed: the model gets `text`, redacted."""

    path: str
    file_hash: str
    source_hash: str
    text: str
    structural: str
    reason: str  # "new", "changed" or "upgrade" (current, but structural: a model may redo it)


@dataclass(frozen=True, slots=True)
class Written:
    text: str
    generator: str
    tokens: int = 0


Summarise = Callable[[FileJob], Written]


def structural(job: FileJob) -> Written:
    return Written(job.structural, STRUCTURAL)


@dataclass(slots=True)
class Plan:
    jobs: list[FileJob] = field(default_factory=list)  # missing or out of date, by path
    touches: list[tuple[str, str]] = field(default_factory=list)  # (id, raw hash): same content
    deletes: list[str] = field(default_factory=list)  # ids of summaries of files now gone
    upgrades: list[str] = field(default_factory=list)  # current structural ones, newest first
    unreadable: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RunReport:
    written: list[tuple[str, str, str]] = field(default_factory=list)  # (path, reason, generator)
    dirs: int = 0
    touched: int = 0
    deleted: int = 0
    tokens: int = 0
    by_generator: Counter[str] = field(default_factory=Counter)
    stopped: str = ""  # why the pass ended early: "interrupted", or what `should_stop` said


def prepare_file(root: Path, path: str, max_file_bytes: int, graph: ModuleGraph) -> FileJob | None:
    """A file read, redacted and parsed, with its structural summary; None when it cannot be read
    (gone, grown past the size limit, binary now, or a link out of the repository)."""
    try:
        abspath = inside(root, root / path)
    except UnsafePathError:
        return None
    source = read_source(abspath, path, max_file_bytes)
    if source.text is None:
        return None
    text = redact(source.text)
    parsed = parse_file(path, text, language_for_path(path, text[:200].split("\n", 1)[0]))
    docs = [chunk.docstring for chunk in parsed.chunks]
    return FileJob(
        path=path,
        file_hash=source.content_hash,
        source_hash=meaningful_hash(text, parsed.language, docs),
        text=text,
        structural=file_summary(parsed, text, graph),
        reason="upgrade",
    )


def _prepare_batch(
    root: Path, paths: Sequence[str], max_file_bytes: int, graph: ModuleGraph
) -> list[tuple[str, FileJob | None]]:
    return [(path, prepare_file(root, path, max_file_bytes, graph)) for path in paths]


def prepare_files(
    root: Path, paths: Sequence[str], max_file_bytes: int, graph: ModuleGraph
) -> Iterator[tuple[str, FileJob | None]]:
    """`prepare_file` of each path, in order; in worker processes when there are enough files
    to repay starting them (a repository's first pass: parsing is most of its cost)."""
    workers = max(1, min(os.cpu_count() or 1, 8))
    if len(paths) < POOL_MIN_FILES or workers == 1:
        for path in paths:
            yield path, prepare_file(root, path, max_file_bytes, graph)
        return
    # As the indexer does (see index.pipeline): a fork server, so that no thread of LanceDB's
    # is forked, and workers that end with their parent.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__])
    size = max(8, len(paths) // (workers * 8))
    batches = [paths[start : start + size] for start in range(0, len(paths), size)]
    with ProcessPoolExecutor(workers, mp_context=context, initializer=exit_with_parent) as pool:
        futures = [pool.submit(_prepare_batch, root, b, max_file_bytes, graph) for b in batches]
        try:
            for future in futures:
                yield from future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def within(path: str, only: Sequence[str]) -> bool:
    """Whether `path` is one of `only` or lies under one (all paths when `only` is empty)."""
    if not only:
        return True
    for prefix in only:
        prefix = prefix.strip("/")
        if prefix in ("", ROOT) or path == prefix or path.startswith(prefix + "/"):
            return True
    return False


def parents(path: str) -> list[str]:
    """The directories above a file, nearest first, ending with the repository's own (".")."""
    parts = PurePosixPath(path).parts[:-1]
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)] + [ROOT]


class Refresher:
    """One repository's summaries against its index. Not thread-safe; one per pass."""

    def __init__(
        self, root: Path, manifest: Manifest, store: SummaryStore, max_file_bytes: int
    ) -> None:
        self.root = root
        self.manifest = manifest
        self.store = store
        self.max_file_bytes = max_file_bytes
        self.states = store.states()
        self.indexed = manifest.versions()  # path -> (raw hash, embedded)
        self._graph: ModuleGraph | None = None
        self._children: dict[str, set[tuple[str, str]]] | None = None
        self._unreadable: set[str] = set()

    @property
    def graph(self) -> ModuleGraph:
        if self._graph is None:
            self._graph = ModuleGraph.from_manifest(self.manifest)
        return self._graph

    # -- planning --------------------------------------------------------------------------------

    def plan(
        self,
        only: Sequence[str] = (),
        *,
        upgrades: bool = False,
        on_read: Callable[[int, int], None] | None = None,
    ) -> Plan:
        """What a pass would do. Files whose raw hash moved are read (that is how a comment-only
        edit is told apart); `upgrades` also lists current structural summaries a model may redo."""
        plan = Plan()
        moved = self.dirty(only)
        if upgrades:
            seen = set(moved)
            plan.upgrades = [p for p in self.structural_only(only) if p not in seen]
        read = prepare_files(self.root, moved, self.max_file_bytes, self.graph)
        for done, (path, job) in enumerate(read, 1):
            if on_read is not None:
                on_read(done, len(moved))
            if job is None:
                plan.unreadable.append(path)
                self._unreadable.add(path)
                continue
            stored = self.states.get(summary_id("file", path))
            if stored is not None and stored.source_hash == job.source_hash:
                plan.touches.append((stored.id, job.file_hash))
                if upgrades and not is_model(stored.generator):
                    plan.upgrades.append(path)
            else:
                job.reason = "new" if stored is None else "changed"
                plan.jobs.append(job)
        for key, stored in self.states.items():
            if stored.level == "file" and within(stored.path, only) and self._gone(stored):
                plan.deletes.append(key)
        if upgrades:
            mtimes = self.manifest.states_for(plan.upgrades)
            plan.upgrades.sort(key=lambda p: -mtimes[p].mtime_ns if p in mtimes else 0)
        return plan

    def _gone(self, stored: Summary) -> bool:
        """Whether a file's summary should go: its file is deleted, or no longer indexed (now
        ignored, or unreadable). A model summary of a file still on disk is kept while the index
        lacks it: an index being rebuilt lists its files a batch at a time, and paid work is not
        dropped for that."""
        if stored.path in self.indexed and stored.path not in self._unreadable:
            return False
        if is_model(stored.generator):
            return not os.path.lexists(self.root / stored.path)
        return True

    def dirty(self, only: Sequence[str] = ()) -> list[str]:
        """Indexed files whose raw hash is not the one their summary last saw (or that have none),
        by path: without reading a file. Some may turn out to differ only in comments."""
        moved = []
        for path, (raw, _) in self.indexed.items():
            stored = self.states.get(summary_id("file", path))
            if (stored is None or stored.file_hash != raw) and within(path, only):
                moved.append(path)
        return sorted(moved)

    def structural_only(self, only: Sequence[str] = ()) -> list[str]:
        """Indexed files whose summary is a structural one: what a model may redo."""
        return [
            path
            for path in self.indexed
            if within(path, only)
            and (stored := self.states.get(summary_id("file", path))) is not None
            and not is_model(stored.generator)
        ]

    def prepare(self, path: str) -> FileJob | None:
        return prepare_file(self.root, path, self.max_file_bytes, self.graph)

    # -- running ---------------------------------------------------------------------------------

    def run(
        self,
        plan: Plan,
        summarise: Summarise = structural,
        *,
        upgrade: Summarise | None = None,
        on_progress: Callable[[str, int, int], None] | None = None,
        should_stop: Callable[[], str] = lambda: "",
    ) -> RunReport:
        """Carry out `plan`: changed files, then (with `upgrade`) structural summaries a model may
        redo, newest change first, then directories. `should_stop()` is asked between summaries;
        a non-empty answer ends the pass there, keeping everything written (directories are
        still brought up to date: they are free). Ctrl-C ends it too ("interrupted"), after
        committing what was made."""
        report = RunReport()
        self.store.set_file_hashes(plan.touches)
        report.touched = len(plan.touches)
        self.store.delete(plan.deletes)
        for key in plan.deletes:
            self.states.pop(key, None)
        report.deleted = len(plan.deletes)
        batch = _Batch(self.store, self.states)
        try:
            total = len(plan.jobs)
            for done, job in enumerate(plan.jobs, 1):
                report.stopped = should_stop()
                if report.stopped:
                    break
                self._write(batch, job, summarise(job), report)
                if on_progress is not None:
                    on_progress(job.path, done, total)
            if upgrade is not None and not report.stopped:
                for done, path in enumerate(plan.upgrades, 1):
                    report.stopped = should_stop()
                    if report.stopped:
                        break
                    job = self.prepare(path)
                    if job is None:
                        continue
                    written = upgrade(job)
                    if not is_model(written.generator):
                        break  # the model is spent or failing: the rest waits for another pass
                    self._write(batch, job, written, report)
                    if on_progress is not None:
                        on_progress(path, done, len(plan.upgrades))
        except KeyboardInterrupt:
            report.stopped = "interrupted"
        finally:
            batch.flush()
        if report.stopped != "interrupted":
            self._refresh_dirs(batch, report)
            batch.flush()
        return report

    def _write(self, batch: _Batch, job: FileJob, written: Written, report: RunReport) -> None:
        summary = Summary(
            path=job.path,
            level="file",
            source_hash=job.source_hash,
            text=written.text,
            generator=written.generator,
            time=clock.now(),
            tokens=written.tokens,
            file_hash=job.file_hash,
        )
        batch.add(summary, now=written.tokens > 0)  # paid-for work is committed at once
        report.written.append((job.path, job.reason, written.generator))
        report.tokens += written.tokens
        report.by_generator[written.generator] += 1

    # -- directories -----------------------------------------------------------------------------

    def dirty_dirs(self) -> tuple[list[tuple[str, str]], list[str]]:
        """(directory, the hash its summary must be made from) for each directory whose summary
        is missing or stale, deepest first; and the ids of summaries of directories now gone."""
        children = self.children()
        gone = [k for k, s in self.states.items() if s.level == "dir" and s.path not in children]
        out = []
        hashes: dict[str, str] = {}
        for directory in sorted(children, key=lambda d: (-_depth(d), d)):
            lines = []
            for child, level in sorted(children[directory]):
                if level == "dir":  # made in this loop, before its parent
                    lines.append(f"dir\t{child}\t{hashes[child]}")
                    continue
                stored = self.states.get(summary_id(level, child))
                if stored is not None:
                    lines.append(f"file\t{child}\t{stored.source_hash}\t{stored.generator}")
            hashes[directory] = hashlib.sha256("\n".join(lines).encode()).hexdigest()
            stored = self.states.get(summary_id("dir", directory))
            if stored is None or stored.source_hash != hashes[directory]:
                out.append((directory, hashes[directory]))
        return out, gone

    def children(self) -> dict[str, set[tuple[str, str]]]:
        """Each directory above an indexed file, with its (path, level) children."""
        if self._children is None:
            children: dict[str, set[tuple[str, str]]] = {}
            for path in self.indexed:
                above = parents(path)
                kids = [(path, "file"), *((d, "dir") for d in above[:-1])]
                for kid, parent in zip(kids, above, strict=True):
                    children.setdefault(parent, set()).add(kid)
            self._children = children
        return self._children

    def _refresh_dirs(self, batch: _Batch, report: RunReport) -> None:
        dirty, gone = self.dirty_dirs()
        self.store.delete(gone)
        for key in gone:
            self.states.pop(key)
        report.deleted += len(gone)
        children = self.children()
        wanted = [
            summary_id(level, child)
            for directory, _ in dirty
            for child, level in children[directory]
        ]
        texts = self.store.texts([key for key in wanted if key not in batch.texts])
        texts.update(batch.texts)
        for directory, digest in dirty:
            kids = []
            for child, level in sorted(children[directory], key=lambda c: (c[1] == "dir", c[0])):
                key = summary_id(level, child)
                if key in texts:
                    kids.append((PurePosixPath(child).name, level, texts[key]))
            depends, used_by = self._dir_links(directory)
            text = dir_summary(directory, kids, depends, used_by)
            summary = Summary(directory, "dir", digest, text, STRUCTURAL, clock.now())
            batch.add(summary)
            texts[summary.id] = text
            report.dirs += 1

    def _dir_links(self, directory: str) -> tuple[list[str], list[str]]:
        """The directories this one's files use, and those whose files use them, by files."""
        inner = [p for p in self.indexed if within(p, [directory])]
        depends: Counter[str] = Counter()
        used_by: Counter[str] = Counter()
        for path in inner:
            for target in self.graph.depends_on(path):
                if not within(target, [directory]):
                    depends[parents(target)[0]] += 1
            for user in self.graph.used_by(path):
                if not within(user, [directory]):
                    used_by[parents(user)[0]] += 1
        return _ranked(depends), _ranked(used_by)


def _ranked(counts: Counter[str]) -> list[str]:
    return sorted(counts, key=lambda d: (-counts[d], d))


def _depth(directory: str) -> int:
    return 0 if directory == ROOT else directory.count("/") + 1


class _Batch:
    """Summaries waiting to be committed together; `texts` keeps what this pass wrote."""

    def __init__(self, store: SummaryStore, states: dict[str, Summary]) -> None:
        self.store = store
        self.states = states
        self.pending: list[Summary] = []
        self.texts: dict[str, str] = {}
        self.started = time.monotonic()

    def add(self, summary: Summary, *, now: bool = False) -> None:
        self.pending.append(summary)
        self.texts[summary.id] = summary.text
        old_batch = time.monotonic() - self.started > BATCH_SECONDS
        if now or old_batch or len(self.pending) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.store.put(self.pending)
            for summary in self.pending:
                self.states[summary.id] = summary
        self.pending = []
        self.started = time.monotonic()
