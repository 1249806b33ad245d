"""Summaries written by `sleep_model`: the file's text and its structural summary in, a short
summary out, within the budget.

Only `sleep_model` is ever used (never the project's chat model by default), so no cost starts
without someone choosing it; a repository's `sleep_model` waits for trust like `model`. A call is
made only when its estimate (the request, plus 400 tokens of reply) fits the budget, so none
starts past a cap; what it really cost is charged and logged. An empty answer is not stored (the
structural summary stays), but its tokens still count. After the first failed call the model is
left alone for the rest of the pass: one outage, one line in the log, not a call per file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mcode.agent.llm import LiteLLMClient, LLMError, ModelClient
from mcode.agent.providers import ModelChoice, choice_for, key_var
from mcode.config import Settings
from mcode.context import estimate_tokens, render_template
from mcode.sleep.costs import SUMMARY, Budget, BudgetSpent, log_event
from mcode.store.summaries import MODEL_PREFIX
from mcode.summary import FileJob, Written, structural

MAX_TEXT_CHARS = 24_000  # of a file sent to the model: ~6k tokens; the rest is cut
REPLY_TOKENS = 400  # what an answer is counted for before it is made
MAX_SUMMARY_CHARS = 2_400


class NoSleepModel(Exception):
    """No model to summarise with; the message says why."""


def choose_model(settings: Settings) -> ModelChoice:
    if not settings.sleep_model:
        raise NoSleepModel("no sleep_model set: summaries are structural")
    choice = choice_for(settings, settings.sleep_model, settings.sources.get("sleep_model", ""))
    var = key_var(choice.model)
    if var and not choice.api_key:
        raise NoSleepModel(f"no key for sleep_model {choice.model}: set {var}")
    return choice


def make_client(settings: Settings, choice: ModelChoice) -> ModelClient:
    return LiteLLMClient(
        choice.model,
        api_base=choice.api_base,
        api_key=choice.api_key,
        timeout=120,
        max_retries=2,
    )


def messages_for(job: FileJob) -> list[dict[str, str]]:
    text = job.text if len(job.text) <= MAX_TEXT_CHARS else job.text[:MAX_TEXT_CHARS] + "\n…"
    system = render_template("sleep_system.md", {"path": job.path})
    user = render_template(
        "sleep_file.md", {"path": job.path, "structural": job.structural, "text": text}
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def estimate(messages: list[dict[str, str]]) -> int:
    """What a request will cost, counted before it is made."""
    return sum(estimate_tokens(m["content"]) for m in messages) + REPLY_TOKENS


@dataclass(slots=True)
class ModelSummariser:
    """A `Summarise` for `Refresher.run`: the model's summary while the budget lasts, else the
    structural one. Every stored model summary is logged with its tokens."""

    client: ModelClient
    model: str
    budget: Budget
    log_path: Path  # the sleep log
    failure: str = ""  # the first error, after which the model is not asked again
    spent_out: str = ""  # "day" or "pass" once a cap stopped a call

    def __call__(self, job: FileJob) -> Written:
        if self.failure or self.spent_out:
            return structural(job)
        messages = messages_for(job)
        try:
            self.budget.check(estimate(messages))
        except BudgetSpent as exc:
            self.spent_out = exc.which
            return structural(job)
        try:
            turn = self.client.complete(messages)
        except LLMError as exc:
            self.failure = f"{self.model}: {exc}"
            return structural(job)
        tokens = turn.usage.total_tokens or estimate(messages)
        self.budget.charge(tokens)
        generator = MODEL_PREFIX + self.model
        log_event(self.log_path, SUMMARY, path=job.path, generator=generator, tokens=tokens)
        text = (turn.content or "").strip()
        if not text:
            return structural(job)
        if len(text) > MAX_SUMMARY_CHARS:
            text = text[: MAX_SUMMARY_CHARS - 1].rstrip() + "…"
        if not text.startswith(job.path):
            text = f"{job.path} — {text}"
        return Written(text, generator, tokens)
