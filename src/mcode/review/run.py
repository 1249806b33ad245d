"""One review of a change: the offline rules, then the model file by file, then what to report.

The rules always run. The model part runs unless the run is `rules_only`, and ends in one of:
`reviewed` (every file answered, from the cache or a call), `cached` (all from the cache: no call
made), `skipped` (no model, no key, rate-limited, provider unreachable, nothing to send) or `error`
(the model's answer was malformed twice, the provider refused the key or the request). A skip or
an error is one line in `notes`; it never reads as a clean result. After a failure that a retry
would only repeat (rate limit, provider down), no further file is sent.

Files go to the model in parallel, at most `max_parallel` at once; a file whose hunks are longer
than `MAX_REQUEST_CHARS` goes in several parts, each cached on its own. A run's `max_tokens` is
spent in estimated tokens before each call, and files past it are left out with a note. Findings
on dismissed ids are dropped; the rest are sorted most severe first and capped at `max_findings`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from mcode.agent.llm import LiteLLMClient, LLMError, ModelClient
from mcode.agent.providers import ModelChoice
from mcode.config import Settings
from mcode.context import estimate_tokens
from mcode.memory import BlockStore
from mcode.review.cache import ReviewCache, prompts_digest
from mcode.review.context import HUNK_CONTEXT_TOKENS, CodeFacts, ReviewMemory
from mcode.review.diff import FileDiff
from mcode.review.dismissals import Dismissals
from mcode.review.findings import Finding, MalformedAnswer, rank
from mcode.review.model import (
    NoReviewModel,
    ask_about_file,
    choose_model,
    estimated_tokens,
    file_messages,
)
from mcode.review.rules import load_rules, run_rules
from mcode.review.source import Target, read_changes
from mcode.secrets import is_secret_path

MAX_PARALLEL = 4
MAX_FINDINGS = 30
MAX_REQUEST_CHARS = 48_000  # of hunks per request (~12k tokens): a bigger file is split
MAX_RETRY_WAIT = 10.0  # a hook waits this long at most for a rate limit to pass, per retry
# Failures the next file would only meet again.
_STOP_KINDS = frozenset({"rate_limit", "connection", "timeout", "server", "auth", "not_found"})
_SKIP_KINDS = frozenset({"rate_limit", "connection", "timeout", "server"})

ClientFactory = Callable[[Settings, ModelChoice], ModelClient]


@dataclass(frozen=True, slots=True)
class ReviewOptions:
    rules_only: bool = False
    max_tokens: int | None = None
    max_parallel: int = MAX_PARALLEL
    max_findings: int = MAX_FINDINGS
    hunk_tokens: int = HUNK_CONTEXT_TOKENS


@dataclass(slots=True)
class ReviewReport:
    target: str
    files: int = 0
    hunks: int = 0
    findings: list[Finding] = field(default_factory=list)
    model: str = ""
    model_status: str = "off"  # reviewed, cached, skipped, error, off
    notes: list[str] = field(default_factory=list)
    tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    rule_seconds: float = 0.0
    rules: int = 0
    calls: int = 0
    cached: int = 0  # requests (files, or parts of long ones) answered from the cache
    dismissed: int = 0
    cut: int = 0  # findings past max_findings
    dropped: int = 0  # model findings on lines the change does not add
    context_tokens: list[int] = field(default_factory=list)  # per hunk sent to the model

    @property
    def outcome(self) -> str:
        """clean, findings, skipped or error: what the run amounts to."""
        if self.findings:
            return "findings"
        if self.model_status in ("skipped", "error"):
            return self.model_status
        return "clean"


def make_client(settings: Settings, choice: ModelChoice) -> ModelClient:
    """The review's client: the choice's endpoint and key, and retries short enough for a hook."""
    return LiteLLMClient(
        choice.model,
        api_base=choice.api_base,
        api_key=choice.api_key,
        fallbacks=settings.fallbacks,
        timeout=120,
        max_retries=2,
        sleep=lambda seconds: time.sleep(min(seconds, MAX_RETRY_WAIT)),
    )


def review(
    settings: Settings,
    target: Target,
    options: ReviewOptions = ReviewOptions(),
    *,
    client_factory: ClientFactory = make_client,
) -> ReviewReport:
    """Review `target` in `settings`' repository. ChangeError when git cannot show the change."""
    started = time.monotonic()
    paths = settings.paths
    report = ReviewReport(target.describe())
    files = read_changes(paths.repo, target)
    report.files = len(files)
    report.hunks = sum(len(f.hunks) for f in files)
    blocks = BlockStore.for_paths(paths)
    rules, problems = load_rules(blocks)
    run = run_rules(rules, files)
    report.rules, report.rule_seconds = run.rules, run.seconds
    report.notes += problems + run.problems
    found = list(run.findings)
    if not any(f.hunks for f in files):
        report.model_status = "skipped" if not options.rules_only else "off"
        report.notes.append(f"nothing to review: {target.describe()} add no lines")
    elif not options.rules_only:
        found += _model_part(settings, blocks, files, options, report, client_factory)
    _settle(report, found, Dismissals(paths).ids(), options.max_findings)
    report.notes = list(dict.fromkeys(report.notes))  # files failing alike: one line
    ReviewCache(paths).save_last(found)
    report.seconds = time.monotonic() - started
    return report


def _settle(report: ReviewReport, found: list[Finding], dismissed: set[str], cap: int) -> None:
    unique = list({f.id: f for f in found}.values())
    kept = [f for f in unique if f.id not in dismissed]
    report.dismissed = len(unique) - len(kept)
    kept.sort(key=lambda f: (rank(f.severity), f.path, f.line))
    report.findings, report.cut = kept[:cap], max(0, len(kept) - cap)


def _model_part(
    settings: Settings,
    blocks: BlockStore,
    files: list[FileDiff],
    options: ReviewOptions,
    report: ReviewReport,
    client_factory: ClientFactory,
) -> list[Finding]:
    try:
        choice = choose_model(settings)
    except NoReviewModel as exc:
        report.model_status = "skipped"
        report.notes.append(f"model review skipped: {exc}; offline rules only")
        return []
    report.model = choice.model
    memory = ReviewMemory.read(blocks)
    cache = ReviewCache(settings.paths)
    prompts = prompts_digest()
    secret = [f.name for f in files if f.hunks and is_secret_path(f.name)]
    if secret:
        report.notes.append(f"left out of the model review (secret files): {', '.join(secret)}")
    changed = [f for f in files if f.name not in secret and any(f.added())]
    wanted = [part for f in changed for part in f.parts(MAX_REQUEST_CHARS) if any(part.added())]
    found: list[Finding] = []
    todo: list[tuple[FileDiff, str]] = []
    for file in wanted:
        key = cache.key(file.digest(), memory.version, choice.model, prompts)
        hit = cache.get(key)
        if hit is None:
            todo.append((file, key))
        else:
            found += hit[0]
            report.cached += 1
    if todo:
        found += _ask(settings, choice, memory, todo, cache, options, report, client_factory)
    if report.model_status in ("skipped", "error"):
        return found  # a failure, which _ask has told
    if report.calls:
        report.model_status = "reviewed"
    elif wanted and report.cached == len(wanted):
        report.model_status = "cached"
    else:
        report.model_status = "skipped"
        if not wanted:
            report.notes.append("model review skipped: no added lines the model may see")
    return found


def _ask(
    settings: Settings,
    choice: ModelChoice,
    memory: ReviewMemory,
    todo: list[tuple[FileDiff, str]],
    cache: ReviewCache,
    options: ReviewOptions,
    report: ReviewReport,
    client_factory: ClientFactory,
) -> list[Finding]:
    facts = CodeFacts.open(settings)
    try:
        requests = []
        for file, key in todo:
            context = _file_context(facts, file, options.hunk_tokens, report)
            requests.append((file, key, file_messages(memory, file, context)))
    finally:
        if facts is not None:
            facts.close()
    client = client_factory(settings, choice)
    lock = threading.Lock()
    stop = threading.Event()
    budget = {"left": options.max_tokens, "over": 0}
    found: list[Finding] = []
    failures: list[str] = []

    def one(file: FileDiff, key: str, messages: list[dict[str, str]]) -> None:
        with lock:
            if stop.is_set():
                return
            cost = estimated_tokens(messages)
            if budget["left"] is not None:
                if cost > budget["left"]:
                    budget["over"] += 1
                    return
                budget["left"] -= cost
            report.calls += 1
        try:
            answer = ask_about_file(client, messages, file, memory)
        except LLMError as exc:
            with lock:
                failures.append(exc.kind if exc.kind in _SKIP_KINDS else "error")
                report.notes.append(_failure_note(exc, file))
                if exc.kind in _STOP_KINDS:
                    stop.set()
            return
        except MalformedAnswer as exc:
            with lock:
                failures.append("error")
                report.notes.append(
                    f"model review failed for {file.name}: the answer was malformed twice ({exc})"
                )
            return
        cache.put(key, answer.findings, answer.tokens)
        with lock:
            found.extend(answer.findings)
            report.tokens += answer.tokens
            report.cost_usd += answer.cost
            report.dropped += answer.dropped

    workers = max(1, min(options.max_parallel, len(requests)))
    with ThreadPoolExecutor(workers, thread_name_prefix="mcode-review") as pool:
        for future in [pool.submit(one, *request) for request in requests]:
            future.result()
    if budget["over"]:
        report.notes.append(
            f"{budget['over']} files left out of the model review: --max-tokens "
            f"{options.max_tokens} reached"
        )
    if failures:
        report.model_status = "error" if "error" in failures else "skipped"
    return found


def _file_context(
    facts: CodeFacts | None, file: FileDiff, budget: int, report: ReviewReport
) -> str:
    if facts is None:
        return ""
    parts = []
    for hunk in file.hunks:
        text = facts.for_hunk(file, hunk, budget)
        report.context_tokens.append(estimate_tokens(text))
        if text:
            parts.append(f"### Around lines {hunk.new_start}-{hunk.new_end}\n{text}")
    return "\n\n".join(parts)


def _failure_note(error: LLMError, file: FileDiff) -> str:
    if error.kind in _SKIP_KINDS:
        return f"model review skipped: {error.message}; offline rules only"
    return f"model review failed for {file.name}: {error.message}"
