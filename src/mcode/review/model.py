"""Asking the model about one file of a change, and holding it to the answer's shape.

One request per file: the system prompt (`prompts/review.md`) with the project's memory, then the
file's hunks with their line numbers and the code around them (`prompts/review_file.md`). The model
answers through the `report_findings` tool; an answer that is not the findings asked for gets one
more request naming what was wrong (`prompts/review_retry.md`), then `MalformedAnswer`. Failures of
the call itself are the client's `LLMError`s, already retried with backoff there.

Which model: `review_model`, else the project's model as the agent would choose it; no model, or a
provider without its key, is a reason to skip the model part, never a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcode.agent.llm import ModelClient
from mcode.agent.messages import AssistantTurn
from mcode.agent.providers import ModelChoice, NoModelError, choice_for, key_var, resolve_model
from mcode.config import Settings
from mcode.context import estimate_tokens, render_template
from mcode.review.context import ReviewMemory
from mcode.review.diff import FileDiff
from mcode.review.findings import (
    REPORT_TOOL,
    REPORT_TOOL_NAME,
    Finding,
    MalformedAnswer,
    decode_answer,
    read_answer,
)
from mcode.secrets import redact

REPLY_TOKENS = 600  # what an answer is allowed for in a run's token budget


class NoReviewModel(Exception):
    """No model to review with; the message says what to set."""


@dataclass(frozen=True, slots=True)
class FileAnswer:
    findings: list[Finding]
    tokens: int
    cost: float
    dropped: int  # findings on lines the change does not add


def choose_model(settings: Settings) -> ModelChoice:
    """`review_model`, else the project's model; NoReviewModel when there is none or no key."""
    if settings.review_model:
        source = settings.sources.get("review_model", "settings")
        choice = choice_for(settings, settings.review_model, source)
    else:
        try:
            choice = resolve_model(settings)
        except NoModelError:
            raise NoReviewModel(
                "no model configured (set review_model or model in the config, or run "
                "`mcode model NAME`)"
            ) from None
    var = key_var(choice.model)
    if var and not choice.api_key:
        raise NoReviewModel(f"no key for {choice.model}: set {var}")
    return choice


def file_messages(memory: ReviewMemory, file: FileDiff, context: str) -> list[dict[str, Any]]:
    system = render_template("review.md", {"memory": memory.text})
    user = render_template(
        "review_file.md",
        {
            "path": file.name,
            "status": file.status,
            "hunks": redact(file.text()),
            "context": context or "(the index knows nothing more about this code)",
        },
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def estimated_tokens(messages: list[dict[str, Any]]) -> int:
    """What a request will cost, before it is made: for the run's budget."""
    return sum(estimate_tokens(m["content"]) for m in messages) + REPLY_TOKENS


def ask_about_file(
    client: ModelClient, messages: list[dict[str, Any]], file: FileDiff, memory: ReviewMemory
) -> FileAnswer:
    """The model's findings on `file`; MalformedAnswer after two unusable answers, LLMError when
    a call fails."""
    tokens, cost = 0, 0.0
    messages = list(messages)
    for attempt in range(2):
        turn = client.complete(messages, tools=[REPORT_TOOL])
        tokens += turn.usage.total_tokens
        cost += turn.usage.cost_usd
        try:
            findings, dropped = read_answer(_decoded(turn), file, memory.text)
            return FileAnswer(findings, tokens, cost, dropped)
        except MalformedAnswer as exc:
            if attempt:
                raise
            messages += _retry(turn, str(exc))
    raise AssertionError("unreachable")


def _decoded(turn: AssistantTurn) -> Any:
    call = next((c for c in turn.tool_calls if c.name == REPORT_TOOL_NAME), None)
    if call is None and turn.tool_calls:
        raise MalformedAnswer(f"it called {turn.tool_calls[0].name!r}, not {REPORT_TOOL_NAME!r}")
    return decode_answer(call.arguments if call else None, turn.content)


def _retry(turn: AssistantTurn, problem: str) -> list[dict[str, Any]]:
    """The conversation's next messages: the bad answer, and what was wrong with it (a tool
    call must be answered by a tool message before anything else)."""
    retry = render_template("review_retry.md", {"problem": problem})
    out: list[dict[str, Any]] = [turn.to_message()]
    if turn.tool_calls:
        out += [
            {"role": "tool", "tool_call_id": call.id, "content": f"Error: {problem}"}
            for call in turn.tool_calls
        ]
    out.append({"role": "user", "content": retry})
    return out
