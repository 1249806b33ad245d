"""One sleep-time pass: module summaries brought up to date with the index, then their vectors.

A pass holds `Paths.sleep_lock` (one writer of the summaries table; `mcode watch`'s passes and
`mcode sleep` take turns), reads the index through its own manifest connection (it never writes
the index), and logs what it spent as it spends it (`costs`). It can stop at any point: Ctrl-C, a
budget cap, or the caller's `should_stop` (edits arrived); everything stored stays, and the next
pass starts from what is stored, since the queue is recomputed from the index each time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mcode.agent.llm import ModelClient
from mcode.agent.providers import ModelChoice
from mcode.config import Settings
from mcode.embed import EmbedderUnavailable
from mcode.fsio import read_json_lines
from mcode.retrieval.workspace import build_embedder, open_manifest
from mcode.sleep.consolidate import consolidate
from mcode.sleep.costs import PASS, Budget, log_event, spent_on, today
from mcode.sleep.model import (
    ModelSummariser,
    NoSleepModel,
    choose_model,
    estimate,
    make_client,
    messages_for,
)
from mcode.store import IndexLock, Manifest
from mcode.store.summaries import SummaryStore
from mcode.summary import Plan, Refresher, structural
from mcode.summary.refresh import parents

SLEEP_PURPOSE = "mcode sleep"
VECTOR_BATCH = 32
ClientFactory = Callable[[Settings, ModelChoice], ModelClient]


class Progress(Protocol):
    """What `cli.progress.TerminalProgress` offers: a stage with a total, advanced step by step."""

    def start(self, stage: str, total: int) -> None: ...
    def advance(self, count: int = 1) -> None: ...
    def finish(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PassOptions:
    paths: tuple[str, ...] = ()  # only files under these (repo-relative); all when empty
    dry_run: bool = False
    budget_tokens: int | None = None  # this pass's cap, instead of `sleep_pass_tokens`
    purpose: str = SLEEP_PURPOSE  # how the pass names itself in the lock


@dataclass(slots=True)
class PassReport:
    dry_run: bool = False
    files: list[dict[str, Any]] = field(default_factory=list)  # what was or would be summarised
    dirs: int = 0
    touched: int = 0  # files whose edit left the summary true (comments, whitespace)
    deleted: int = 0
    unreadable: int = 0
    vectors: int = 0
    tokens: int = 0  # spent (or, in a dry run, estimated) with the model
    generators: dict[str, int] = field(default_factory=dict)
    model: str = ""  # the model in use, "" when structural only
    note: str = ""  # why there is no model, or why it stopped being asked
    stopped: str = ""  # "interrupted", "budget", "edits": the pass ended early
    seconds: float = 0.0
    memory: dict[str, Any] = field(default_factory=dict)  # the consolidation of core memory

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "files": self.files,
            "dirs": self.dirs,
            "touched": self.touched,
            "deleted": self.deleted,
            "unreadable": self.unreadable,
            "vectors": self.vectors,
            "tokens": self.tokens,
            "generators": self.generators,
            "model": self.model,
            "note": self.note,
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
            "memory": self.memory,
        }


def budget_for(settings: Settings, options: PassOptions) -> Budget:
    cap = settings.sleep_pass_tokens if options.budget_tokens is None else options.budget_tokens
    spent = spent_on(read_json_lines(settings.paths.sleep_log), today())
    return Budget(settings.sleep_budget_tokens_per_day, cap, spent_today=spent)


def _model(
    settings: Settings, budget: Budget, factory: ClientFactory, report: PassReport
) -> ModelSummariser | None:
    if not settings.sleep_model:
        return None
    try:
        choice = choose_model(settings)
    except NoSleepModel as exc:
        report.note = str(exc)
        return None
    report.model = choice.model
    return ModelSummariser(
        factory(settings, choice), choice.model, budget, settings.paths.sleep_log
    )


def run_pass(
    settings: Settings,
    options: PassOptions = PassOptions(),
    *,
    progress: Progress | None = None,
    client_factory: ClientFactory = make_client,
    should_stop: Callable[[], bool] = lambda: False,
) -> PassReport:
    """Run (or with `dry_run`, plan) one pass. IndexMissingError when there is no index yet,
    IndexLockedError when another pass runs."""
    started = time.monotonic()
    manifest = open_manifest(settings)
    try:
        if options.dry_run:
            report = _dry_run(settings, options, manifest)
        else:
            with IndexLock(settings.paths.sleep_lock, options.purpose):
                report = _run(settings, options, manifest, progress, client_factory, should_stop)
    finally:
        manifest.close()
    report.seconds = time.monotonic() - started
    if not options.dry_run:
        log_event(
            settings.paths.sleep_log,
            PASS,
            files=len(report.files),
            dirs=report.dirs,
            touched=report.touched,
            deleted=report.deleted,
            generators=report.generators,
            tokens=report.tokens,
            seconds=round(report.seconds, 3),
            stopped=report.stopped,
            note=report.note,
        )
    return report


def _run(
    settings: Settings,
    options: PassOptions,
    manifest: Manifest,
    progress: Progress | None,
    client_factory: ClientFactory,
    should_stop: Callable[[], bool],
) -> PassReport:
    report = PassReport()
    try:
        embedder = build_embedder(settings)
    except (EmbedderUnavailable, ValueError) as exc:  # summaries need no vectors
        embedder, report.note = None, f"no vectors for summaries: {exc}"
    dim, embedder_id = (embedder.dim, embedder.id) if embedder is not None else (0, "")
    store = SummaryStore(settings.paths.summaries, dim, embedder_id, writer=True)
    refresher = Refresher(settings.paths.repo, manifest, store, settings.max_file_bytes)
    budget = budget_for(settings, options)
    model = _model(settings, budget, client_factory, report)
    if model is not None:  # one request, before the summaries take the budget
        report.memory = _consolidate(settings, model, budget)
    reading = _stage(progress, "reading")
    plan = refresher.plan(options.paths, upgrades=model is not None, on_read=reading)
    run = refresher.run(
        plan,
        model or structural,
        upgrade=model,
        on_progress=_stage(progress, "summaries"),
        should_stop=lambda: "edits" if should_stop() else "",
    )
    if progress is not None:
        progress.finish()
    report.files = [
        {"path": path, "reason": reason, "generator": generator}
        for path, reason, generator in run.written
    ]
    report.dirs, report.touched, report.deleted = run.dirs, run.touched, run.deleted
    report.unreadable = len(plan.unreadable)
    report.tokens = run.tokens + report.memory.get("tokens", 0)
    report.generators = dict(run.by_generator)
    report.stopped = run.stopped
    if model is not None and model.failure:
        report.note = f"the model failed, summaries stayed structural: {model.failure}"
    elif model is not None and model.spent_out:
        report.note = f"the {model.spent_out} token budget is spent"
    if embedder is not None and not run.stopped:
        try:
            report.vectors = _embed(store, embedder, should_stop)
        except KeyboardInterrupt:
            report.stopped = "interrupted"
        except EmbedderUnavailable as exc:
            report.note = f"no vectors for summaries: {exc}"
    store.compact()
    return report


def _consolidate(settings: Settings, model: ModelSummariser, budget: Budget) -> dict[str, Any]:
    entries = read_json_lines(settings.paths.sleep_log)
    memory = consolidate(settings, model.client, model.model, budget, entries)
    return {
        "session": memory.session,
        "applied": memory.applied,
        "proposals": memory.proposals,
        "refused": memory.refused,
        "tokens": memory.tokens,
        "skipped": memory.skipped,
    }


def _stage(progress: Progress | None, stage: str) -> Callable[..., None] | None:
    """A callback that shows one stage: started at its first call, then advanced."""
    if progress is None:
        return None
    begun = []

    def advance(*args: Any) -> None:
        total = args[-1]
        if not begun:
            begun.append(True)
            progress.start(stage, total)
        progress.advance()

    return advance


def _embed(store: SummaryStore, embedder: Any, should_stop: Callable[[], bool]) -> int:
    done = 0
    while not should_stop():
        rows = store.pending_vectors(VECTOR_BATCH)
        if not rows:
            break
        vectors = embedder.embed_documents([row["text"] or "" for row in rows])
        store.set_vectors([row["id"] for row in rows], vectors)
        done += len(rows)
    return done


def _dry_run(settings: Settings, options: PassOptions, manifest: Manifest) -> PassReport:
    """What a pass would do and, with a model, the tokens it would spend (up to the caps)."""
    report = PassReport(dry_run=True)
    store = SummaryStore(settings.paths.summaries)
    refresher = Refresher(settings.paths.repo, manifest, store, settings.max_file_bytes)
    budget = budget_for(settings, options)
    try:
        report.model = choose_model(settings).model if settings.sleep_model else ""
    except NoSleepModel as exc:
        report.note = str(exc)
    plan = refresher.plan(options.paths, upgrades=bool(report.model))
    report.files = [{"path": job.path, "reason": job.reason} for job in plan.jobs]
    report.touched, report.deleted = len(plan.touches), len(plan.deletes)
    report.unreadable = len(plan.unreadable)
    dirty, gone = refresher.dirty_dirs()
    changed = [job.path for job in plan.jobs] + [key.split(":", 1)[1] for key in plan.deletes]
    report.dirs = len({d for d, _ in dirty} | {d for path in changed for d in parents(path)})
    report.deleted += len(gone)
    if report.model:
        report.tokens = _estimated(refresher, plan, budget, report)
    return report


def _estimated(refresher: Refresher, plan: Plan, budget: Budget, report: PassReport) -> int:
    """The tokens the model would spend on the plan: the changed files, then upgrades, each
    while it fits the caps (as a pass would stop)."""
    total = 0
    jobs: Sequence[Any] = plan.jobs
    for job in [*jobs, *plan.upgrades]:
        if isinstance(job, str):
            job = refresher.prepare(job)
            if job is None:
                continue
            report.files.append({"path": job.path, "reason": "upgrade"})
        cost = estimate(messages_for(job))
        if total + cost > min(budget.left_today, budget.pass_cap):
            report.stopped = "budget"
            break
        total += cost
    return total
