"""The system prompt: the base instructions from `prompts/system.md` with the context sections filled
in, each section measured and held to its budget.

Sections, in order: core memory blocks (rendered with their metadata, never cut), memory statistics,
project instructions (AGENTS.md, CLAUDE.md), a slice of the repo map, code retrieved for this turn,
and the date and repository. The first two and the last are fixed costs; the three in between are
optional and shrink — fewer snippets, a smaller map, shorter instructions, then nothing — before
anything fails. Inputs arrive as plain data and small Protocols, so this package never imports the
agent, the store or the index. Project instructions and retrieved code are redacted
(`mcode.secrets`): a key in them never reaches the model.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from html import escape
from typing import Any, Protocol

from mcode.context.budget import (
    PROJECT_INSTRUCTIONS,
    REPO_MAP,
    SNIPPETS,
    ContextBudget,
    ContextOverflowError,
    ContextReport,
    SectionUsage,
    TokenCounter,
    estimate_tokens,
    message_tokens,
    tools_tokens,
    truncate_to_tokens,
)
from mcode.prompts import load_prompt
from mcode.retrieval.hits import SearchHit
from mcode.secrets import redact
from mcode.survey.instructions import InstructionFile

SYSTEM_TEMPLATE = "system.md"
MEMORY_BLOCKS = "memory_blocks"
MEMORY_STATISTICS = "memory_statistics"
ENVIRONMENT = "environment"
BASE = "base"
# The placeholders of system.md, in the order the sections appear.
SECTIONS = (MEMORY_BLOCKS, MEMORY_STATISTICS, PROJECT_INSTRUCTIONS, REPO_MAP, SNIPPETS, ENVIRONMENT)
TITLES = {
    BASE: "base instructions",
    MEMORY_BLOCKS: "core memory blocks",
    MEMORY_STATISTICS: "memory statistics",
    PROJECT_INSTRUCTIONS: "project instructions",
    REPO_MAP: "repo map",
    SNIPPETS: "retrieved code",
    ENVIRONMENT: "environment",
}
MIN_REPO_MAP_TOKENS = 64  # below this a map is a list of a few paths: not worth its tokens
_BLANK_LINES = re.compile(r"\n{3,}")


class TemplateError(Exception):
    """A prompt template and the values given for it disagree; names the template."""


def fill_template(text: str, values: Mapping[str, str], name: str = "template") -> str:
    """`$name` placeholders filled strictly: a missing value, an unused value or a stray `$` (write
    `$$` for a dollar sign) is an error, so a renamed placeholder cannot silently vanish."""
    template = string.Template(text)
    if not template.is_valid():
        raise TemplateError(f"prompt template {name} has a stray '$' (write $$ for a dollar sign)")
    wanted = set(template.get_identifiers())
    missing, unused = sorted(wanted - set(values)), sorted(set(values) - wanted)
    if missing or unused:
        problems = [f"no value for ${m}" for m in missing] + [
            f"no ${u} placeholder" for u in unused
        ]
        raise TemplateError(f"prompt template {name}: {'; '.join(problems)}")
    return template.substitute(values)


def render_template(name: str, values: Mapping[str, str]) -> str:
    """A template from `prompts/` filled strictly (see `fill_template`)."""
    return fill_template(load_prompt(name), values, name)


# Inputs ------------------------------------------------------------------------------------------


class CoreBlock(Protocol):
    """A core memory block as the prompt shows it (`mcode.memory.Block` is one)."""

    @property
    def label(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def limit(self) -> int: ...
    @property
    def read_only(self) -> bool: ...
    @property
    def chars(self) -> int: ...


class BrokenCoreBlock(Protocol):
    """A block file that cannot be used (`mcode.memory.BrokenBlock` is one): shown with its error,
    so the agent knows why the block is missing instead of recreating it."""

    @property
    def label(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def error(self) -> str: ...


class Countable(Protocol):
    """A store that knows how many items it holds (recall messages, archival notes, …)."""

    def count(self) -> int: ...


# The repo map within a token budget; the agent passes
# `lambda n: repo_map_from_manifest(manifest, n, focus_files=..., query=...).text`.
RepoMapSource = Callable[[int], str]


@dataclass(frozen=True, slots=True)
class MemoryStats:
    """How much lies outside the window, so the agent knows searching is worth it. None: unknown."""

    recall_messages: int | None = None
    recall_sessions: int | None = None
    archival_notes: int | None = None
    code_chunks: int | None = None
    code_files: int | None = None

    @classmethod
    def collect(cls, **sources: Countable | None) -> MemoryStats:
        """Ask each source for its count. A store that cannot answer leaves its number unknown:
        statistics are a hint, and a missing hint must not stop the turn."""
        counts: dict[str, int | None] = {}
        for name, source in sources.items():
            if name not in cls.__dataclass_fields__:
                raise TypeError(f"unknown memory statistic {name!r}")
            try:
                counts[name] = None if source is None else int(source.count())
            except Exception:
                counts[name] = None
        return cls(**counts)


@dataclass(frozen=True, slots=True)
class Environment:
    today: date
    repo_root: str
    branch: str | None = None


@dataclass(frozen=True, slots=True)
class PromptInputs:
    """What one request's system prompt is made of; all of it gathered by the agent."""

    blocks: Sequence[CoreBlock] = ()
    broken_blocks: Sequence[BrokenCoreBlock] = ()
    stats: MemoryStats = field(default_factory=MemoryStats)
    environment: Environment | None = None
    project_instructions: Sequence[InstructionFile] = ()
    repo_map: RepoMapSource | None = None
    snippets: Sequence[SearchHit] = ()
    tools: Sequence[Mapping[str, Any]] = ()  # the tool definitions sent with the request


# Rendering -----------------------------------------------------------------------------------------


def render_block(block: CoreBlock) -> str:
    """Letta's layout: the metadata the agent needs to edit safely (how full, whether it may)."""
    read_only = "true" if block.read_only else "false"
    head = (
        f'<block label="{block.label}" scope="{block.scope}" '
        f'chars="{block.chars}/{block.limit}" read_only="{read_only}">'
    )
    parts = [head]
    if block.description:
        parts.append(f"<description>{block.description}</description>")
    parts += ["<value>", block.value, "</value>"] if block.value else ["<value></value>"]
    parts.append("</block>")
    return "\n".join(parts)


def render_broken_block(block: BrokenCoreBlock) -> str:
    # The label is a file name from the repository: escaped, since it is not a checked label.
    head = f'<block label="{escape(block.label)}" scope="{block.scope}" broken="true">'
    return f"{head}\n<error>{escape(block.error)}</error>\n</block>"


def render_blocks(blocks: Sequence[CoreBlock], broken: Sequence[BrokenCoreBlock] = ()) -> str:
    if not blocks and not broken:
        return "<memory_blocks>\n(no memory blocks yet)\n</memory_blocks>"
    body = "\n\n".join([*map(render_block, blocks), *map(render_broken_block, broken)])
    return f"<memory_blocks>\n{body}\n</memory_blocks>"


def _count(n: int | None, singular: str, plural: str | None = None) -> str:
    if n is None:
        return f"an unknown number of {plural or singular + 's'}"
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"


def render_stats(stats: MemoryStats) -> str:
    recall = f"{_count(stats.recall_messages, 'message')} in recall memory"
    if stats.recall_sessions is not None:
        recall += f" across {_count(stats.recall_sessions, 'session')}"
    notes = _count(stats.archival_notes, "archival note")
    if stats.code_chunks == 0:
        code = "no code indexed yet"
    else:
        code = f"{_count(stats.code_chunks, 'code chunk')}"
        if stats.code_files is not None:
            code += f" in {_count(stats.code_files, 'file')}"
    return f"<memory_statistics>\n{recall}, {notes}, {code}.\n</memory_statistics>"


def render_environment(environment: Environment | None) -> str:
    if environment is None:
        return ""
    lines = [
        f"Today's date: {environment.today.isoformat()}",
        f"Repository: {environment.repo_root}",
    ]
    if environment.branch:
        lines.append(f"Git branch: {environment.branch}")
    return "<environment>\n" + "\n".join(lines) + "\n</environment>"


def _instructions_section(files: Sequence[InstructionFile]) -> str:
    body = "\n\n".join(f'<file path="{f.path}">\n{f.text}\n</file>' for f in files)
    return f"<project_instructions>\n{body}\n</project_instructions>" if files else ""


def _fence(code: str) -> str:
    longest = max((len(run) for run in re.findall(r"`{3,}", code)), default=2)
    return "`" * (longest + 1)


def render_snippet(snippet: SearchHit, *, about: bool = True) -> str:
    """The snippet under its place; with `about`, its file's module summary line too."""
    where = f"{snippet.path}:{snippet.start_line}-{snippet.end_line}"
    head = f"{where} {snippet.symbol}".rstrip()
    if about and snippet.summary:
        head += f"\nmodule summary: {redact(snippet.summary)}"
    code = redact(snippet.snippet.rstrip("\n"))  # an index built before redaction may hold keys
    fence = _fence(code)
    return f"{head}\n{fence}\n{code}\n{fence}"


def _snippets_section(rendered: Sequence[str]) -> str:
    if not rendered:
        return ""
    return "<retrieved_code>\n" + "\n\n".join(rendered) + "\n</retrieved_code>"


def _repo_map_section(text: str) -> str:
    return f"<repo_map>\n{text}\n</repo_map>" if text else ""


# Fitting the optional sections ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Fitted:
    text: str
    note: str = ""


def fit_instructions(
    files: Sequence[InstructionFile], budget: int, counter: TokenCounter
) -> _Fitted:
    kept: list[InstructionFile] = []
    cut = ""  # the file cut here to fit the budget
    for file in files:
        whole = _instructions_section([*kept, file])
        if counter(whole) <= budget:
            kept.append(file)
            continue
        marker = f"\n[… cut to fit the context; read {file.path} for the rest]"
        room = budget - counter(_instructions_section([*kept, replace(file, text="")]))
        text = truncate_to_tokens(file.text, room, counter, marker)
        if text:
            kept.append(replace(file, text=text))
            cut = file.path
        break
    names = [f.path + (" (cut)" if f.truncated or f.path == cut else "") for f in kept]
    left_out = [f.path for f in files if f.path not in {k.path for k in kept}]
    note = ", ".join(names) + (f"; left out {', '.join(left_out)}" if left_out else "")
    return _Fitted(_instructions_section(kept), note)


def fit_repo_map(source: RepoMapSource | None, budget: int, counter: TokenCounter) -> _Fitted:
    """The map is asked for what the budget allows; when the model's tokenizer counts more than the
    map's own estimate, it is asked once more for less, then cut at a line end."""
    wrapper = counter(_repo_map_section("x"))
    ask = budget - wrapper
    if source is None or ask < MIN_REPO_MAP_TOKENS:
        return _Fitted("", "" if source is None else "left out: no room")
    text = source(ask).strip()
    if text and counter(_repo_map_section(text)) > budget:
        ask = int(ask * ask / max(counter(text), 1))
        text = source(ask).strip() if ask >= MIN_REPO_MAP_TOKENS else ""
        text = truncate_to_tokens(text, budget - wrapper, counter)
    return _Fitted(_repo_map_section(text))


def fit_snippets(snippets: Sequence[SearchHit], budget: int, counter: TokenCounter) -> _Fitted:
    """Best first, each snippet that still fits; a long one may be skipped for shorter ones.
    A file's module summary line comes with its first snippet kept."""
    room = budget - counter(_snippets_section(["x"]))
    kept: list[str] = []
    described: set[str] = set()
    for snippet in snippets:
        rendered = render_snippet(snippet, about=snippet.path not in described)
        cost = counter(rendered + "\n\n")
        if cost <= room:
            kept.append(rendered)
            described.add(snippet.path)
            room -= cost
    note = f"{len(kept)} of {len(snippets)} snippets" if len(kept) < len(snippets) else ""
    return _Fitted(_snippets_section(kept), note)


# Assembly ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SystemPrompt:
    text: str
    tokens: int  # the system message as sent, per-message overhead included
    report: ContextReport

    def message(self) -> dict[str, str]:
        return {"role": "system", "content": self.text}


class SystemPromptBuilder:
    """Builds the system prompt for one request within a `ContextBudget`."""

    def __init__(
        self,
        budget: ContextBudget,
        counter: TokenCounter = estimate_tokens,
        template: str = SYSTEM_TEMPLATE,
    ) -> None:
        self.budget = budget
        self.counter = counter
        self.template_name = template
        self.template = load_prompt(template)
        fill_template(self.template, dict.fromkeys(SECTIONS, ""), template)  # fail early

    def _fill(self, sections: Mapping[str, str]) -> str:
        text = fill_template(self.template, {s: sections.get(s, "") for s in SECTIONS})
        return _BLANK_LINES.sub("\n\n", text).strip() + "\n"

    def _system_tokens(self, text: str) -> int:
        return message_tokens({"role": "system", "content": text}, self.counter)

    def _fixed(self, inputs: PromptInputs) -> dict[str, str]:
        return {
            MEMORY_BLOCKS: render_blocks(inputs.blocks, inputs.broken_blocks),
            MEMORY_STATISTICS: render_stats(inputs.stats),
            ENVIRONMENT: render_environment(inputs.environment),
        }

    def core_tokens(self, inputs: PromptInputs) -> int:
        """The fixed cost of a request — the system prompt without its optional sections, plus the
        tool definitions. ContextOverflowError when that alone exceeds the prompt budget."""
        tools = tools_tokens(inputs.tools, self.counter)
        core = self._system_tokens(self._fill(self._fixed(inputs))) + tools
        if core > self.budget.prompt_tokens:
            raise self._overflow(inputs, core, tools)
        return core

    def _overflow(self, inputs: PromptInputs, core: int, tools: int) -> ContextOverflowError:
        budget = self.budget
        message = (
            f"the system prompt needs {core:,} tokens but the model's window leaves "
            f"{budget.prompt_tokens:,} for the prompt ({budget.context_window:,} in the window, "
            f"{budget.reserve_tokens:,} reserved for the reply)"
        )
        sizes = [(self.counter(render_block(b)), b) for b in inputs.blocks]
        if sizes:
            tokens, block = max(sizes, key=lambda pair: pair[0])
            message += (
                f"; memory blocks take {self.counter(render_blocks(inputs.blocks)):,}, the biggest "
                f"is {block.label!r} ({block.chars:,} chars, about {tokens:,} tokens): shorten it "
                f"(mcode memory edit {block.label}) or use a model with a larger window"
            )
        if tools:
            message += f"; tool definitions take {tools:,}"
        return ContextOverflowError(message)

    def build(
        self, inputs: PromptInputs, history_tokens: int = 0, history_messages: int = 0
    ) -> SystemPrompt:
        """The system prompt for a request whose messages take `history_tokens`: the optional
        sections share what the fixed cost and the history leave, so the whole fits the budget."""
        core = self.core_tokens(inputs)
        remaining = self.budget.prompt_tokens - core - history_tokens
        if remaining < 0:
            raise ContextOverflowError(
                f"the conversation ({history_tokens:,} tokens) and the system prompt "
                f"({core:,}) exceed the prompt budget of {self.budget.prompt_tokens:,} tokens"
            )
        fitted = {
            PROJECT_INSTRUCTIONS: fit_instructions(
                inputs.project_instructions,
                self._share(PROJECT_INSTRUCTIONS, remaining),
                self.counter,
            ),
            REPO_MAP: fit_repo_map(inputs.repo_map, self._share(REPO_MAP, remaining), self.counter),
            SNIPPETS: fit_snippets(inputs.snippets, self._share(SNIPPETS, remaining), self.counter),
        }
        fixed = self._fixed(inputs)
        tools = tools_tokens(inputs.tools, self.counter)
        # Rounding can make the whole count a few tokens more than its parts: drop optional
        # sections, least valuable first, until the request fits.
        for dropped in (None, SNIPPETS, REPO_MAP, PROJECT_INSTRUCTIONS):
            if dropped is not None:
                fitted[dropped] = _Fitted("", "left out: no room")
            text = self._fill({**fixed, **{k: f.text for k, f in fitted.items()}})
            tokens = self._system_tokens(text)
            if tokens + tools + history_tokens <= self.budget.prompt_tokens:
                break
        else:  # unreachable while core_tokens holds, kept as a guard for odd counters
            raise ContextOverflowError("the system prompt does not fit the prompt budget")
        report = self._report(inputs, fixed, fitted, remaining, tokens, tools)
        report = replace(report, history_tokens=history_tokens, history_messages=history_messages)
        return SystemPrompt(text, tokens, report)

    def _share(self, section: str, remaining: int) -> int:
        return self.budget.optional_budget(section, remaining)

    def _report(
        self,
        inputs: PromptInputs,
        fixed: Mapping[str, str],
        fitted: Mapping[str, _Fitted],
        remaining: int,
        system_tokens: int,
        tools: int,
    ) -> ContextReport:
        count = self.counter
        sections = [SectionUsage(BASE, TITLES[BASE], self._system_tokens(self._fill({})))]
        for name in SECTIONS:
            if name in fixed:
                note = f"{len(inputs.blocks)} blocks" if name == MEMORY_BLOCKS else ""
                sections.append(SectionUsage(name, TITLES[name], count(fixed[name]), None, note))
            else:
                part = fitted[name]
                budget = self._share(name, remaining)
                sections.append(
                    SectionUsage(name, TITLES[name], count(part.text), budget, part.note)
                )
        return ContextReport(
            self.budget.context_window,
            self.budget.reserve_tokens,
            tuple(sections),
            system_tokens=system_tokens,
            tool_tokens=tools,
        )
