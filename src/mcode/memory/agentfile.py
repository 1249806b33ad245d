"""Agent File (.af): carry an agent's memory blocks, model settings and recent messages between
repositories, machines and systems (Letta writes and reads the same format).

Export writes the JSON that letta-ai/agent-file describes: ids local to the file (`agent-0`,
`block-0`, `tool-0`, `message-0`) and cross-referenced. Import checks every reference before it
writes anything, writes blocks through the block store (locked, checked, recorded as "import"),
and refuses to replace a block someone wrote unless forced. Secrets are blanked both ways: a file
may travel anywhere, and a key found in one must not land in a repository.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mcode import __version__
from mcode.config import Settings, read_toml
from mcode.config.toml_edit import update_toml_file
from mcode.fsio import clock, read_bytes
from mcode.memory.blocks import (
    LABEL_PATTERN,
    PROJECT,
    USER,
    BlockStore,
    ConflictError,
)
from mcode.memory.defaults import DEFAULT_BLOCKS, template_text
from mcode.memory.frontmatter import (
    DEFAULT_LIMIT,
    BlockContent,
    FrontMatterError,
    normalize_value,
    parse_block,
)
from mcode.memory.tools import MEMORY_TOOLS
from mcode.secrets import blank_secrets

TOP_LEVEL = (
    "agents",
    "groups",
    "blocks",
    "files",
    "sources",
    "tools",
    "mcp_servers",
    "skills",
    "metadata",
    "created_at",
)
ACTOR = "import"
SCOPE_KEY = "mcode_scope"  # in a block's metadata: which mcode scope it came from
# The bundled embedder, as Letta would describe it.
LOCAL_EMBEDDING = {"model": "all-MiniLM-L6-v2", "dim": 384, "chunk_size": 300}

# litellm provider prefix <-> Letta's model_endpoint_type, where the two differ.
_ENDPOINT_TYPE = {"ollama_chat": "ollama", "gemini": "google_ai", "vertex_ai": "google_vertex"}
_PROVIDER = {
    "ollama": "ollama_chat",
    "google_ai": "gemini",
    "google_vertex": "vertex_ai",
    "together": "together_ai",
}
# Endpoints that are a provider's default: importing one must not pin `api_base`.
_PUBLIC_HOSTS = (
    "api.openai.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "openrouter.ai",
    "api.groq.com",
    "api.mistral.ai",
    "api.together.xyz",
    "api.deepseek.com",
    "api.x.ai",
)

MessageSink = Callable[[list[dict[str, Any]]], None]

# Import refuses anything beyond these: Letta's files are kilobytes and about 10 levels deep.
MAX_FILE_BYTES = 32 << 20
MAX_DEPTH = 64
_MAX_DIGITS = 100
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHOWN_CHARS = 60  # how much of a value from the file an error line quotes
_SESSION_ROLES = ("user", "assistant", "tool")  # the messages a session keeps
# The fields of a message that reach the session store, and the types it takes for them.
_MESSAGE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "role": str,
    "content": (str, list),
    "tool_calls": list,
    "tool_call_id": str,
    "tool_returns": list,
}
_KINDS = {str: "text", bool: "true or false", list: "a list", (str, list): "text or a list"}


class AgentFileError(Exception):
    """The file cannot be imported as it is; the message says what is wrong and where."""


class ImportConflictError(Exception):
    """Blocks in the repository differ from the file's; nothing was written."""


# Export -------------------------------------------------------------------------------------------


def export_agent(
    store: BlockStore,
    settings: Settings,
    *,
    name: str,
    system: str = "",
    messages: Iterable[dict[str, Any]] = (),
    max_messages: int = 50,
    context_window: int | None = None,
) -> dict[str, Any]:
    """The Agent File for this repository's memory, secrets blanked.

    `messages` are OpenAI-shaped (`role`, `content`, `tool_calls`, `tool_call_id`, `created_at`),
    oldest first; the last `max_messages` are kept.
    """
    created = clock.iso(timespec="seconds")
    blocks = [
        {
            "id": f"block-{i}",
            "label": block.label,
            "value": block.value,
            "limit": block.limit,
            "description": block.description,
            "read_only": block.read_only,
            "metadata": {**block.content.extra, SCOPE_KEY: block.scope},
        }
        for i, block in enumerate(store.blocks())
    ]
    tools = [
        {
            "id": f"tool-{i}",
            "name": tool.name,
            "description": tool.description,
            "tool_type": "letta_core",
            "source_type": "python",
            "source_code": None,
            "json_schema": tool.schema()["function"],
            "tags": ["letta_core"],
        }
        for i, tool in enumerate(MEMORY_TOOLS)
    ]
    recent = list(messages)[-max_messages:] if max_messages > 0 else []
    af_messages = [to_af_message(m, i, created) for i, m in enumerate(recent)]
    agent = {
        "id": "agent-0",
        "name": name,
        "system": system,
        "agent_type": "mcode",
        "llm_config": llm_config(settings, context_window),
        "embedding_config": embedding_config(settings),
        "tool_ids": [t["id"] for t in tools],
        "block_ids": [b["id"] for b in blocks],
        "source_ids": [],
        "tool_rules": [],
        "messages": af_messages,
        "in_context_message_ids": [m["id"] for m in af_messages],
        "tags": ["mcode"],
        "description": f"mcode's memory of the {name} repository",
        "metadata": {
            "mcode": {
                "model": settings.model,
                "weak_model": settings.weak_model,
                "fallbacks": list(settings.fallbacks),
                "embedding_model": settings.embedding_model,
            }
        },
    }
    doc = {
        "agents": [agent],
        "groups": [],
        "blocks": blocks,
        "files": [],
        "sources": [],
        "tools": tools,
        "mcp_servers": [],
        "skills": [],
        "metadata": {"exported_by": f"mcode {__version__}"},
        "created_at": created,
    }
    return blank_secrets(doc)


def llm_config(settings: Settings, context_window: int | None) -> dict[str, Any]:
    provider, _, model = settings.model.partition("/")
    if not model:
        provider, model = "", settings.model
    extra = settings.extra
    return {
        "model": model,
        "model_endpoint_type": _ENDPOINT_TYPE.get(provider, provider or "openai"),
        "model_endpoint": settings.api_base or None,
        "context_window": extra.get("context_window") or context_window,
        "temperature": extra.get("temperature", 0.7),
        "max_tokens": extra.get("max_tokens"),
        "handle": settings.model or None,
        "provider_name": provider or None,
    }


def embedding_config(settings: Settings) -> dict[str, Any]:
    name = settings.embedding_model
    if name in ("local", "none"):
        return {
            "embedding_endpoint_type": name,
            "embedding_endpoint": None,
            "embedding_model": LOCAL_EMBEDDING["model"] if name == "local" else "none",
            "embedding_dim": LOCAL_EMBEDDING["dim"] if name == "local" else 0,
            "embedding_chunk_size": LOCAL_EMBEDDING["chunk_size"],
            "handle": name,
        }
    provider, _, model = name.partition("/")
    return {
        "embedding_endpoint_type": provider if model else "openai",
        "embedding_endpoint": None,
        "embedding_model": model or name,
        "embedding_dim": settings.extra.get("embedding_dim"),
        "embedding_chunk_size": LOCAL_EMBEDDING["chunk_size"],
        "handle": name,
    }


def to_af_message(message: dict[str, Any], index: int, default_time: str) -> dict[str, Any]:
    content = message.get("content")
    if content is None:
        parts: list[dict[str, Any]] = []
    elif isinstance(content, str):
        parts = [{"type": "text", "text": content}]
    else:
        parts = [p for p in content if isinstance(p, dict)]
    return {
        "id": f"message-{index}",
        "type": "message",
        "role": message.get("role", "user"),
        "content": parts,
        "name": message.get("name"),
        "tool_calls": message.get("tool_calls") or None,
        "tool_call_id": message.get("tool_call_id"),
        "created_at": message.get("created_at") or default_time,
        "agent_id": "agent-0",
        "model": message.get("model"),
    }


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


# Import: reading and checking ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedBlock:
    label: str
    scope: str
    content: BlockContent
    renamed_from: str | None = None


@dataclass(slots=True)
class ImportPlan:
    """What a file would change, checked in full before anything is written."""

    agent_name: str
    blocks: list[PlannedBlock]
    model: str | None
    api_base: str | None  # None: leave as is; "": remove (the endpoint is the provider's default)
    embedding_model: str | None
    weak_model: str | None
    fallbacks: list[str] | None
    messages: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def load_agent_file(text: str | bytes, source: str = "the file") -> dict[str, Any]:
    """The file's JSON, secrets blanked; a JSON string that itself holds the JSON is accepted.

    Whatever the file holds, the outcome is a document or an AgentFileError: a file larger than
    MAX_FILE_BYTES, nested deeper than MAX_DEPTH (the parser and everything after it recurse) or
    holding text no file can store (an unpaired surrogate such as "\\ud800") is refused here.
    """
    if len(text) > MAX_FILE_BYTES:
        raise AgentFileError(f"{source} is larger than {MAX_FILE_BYTES >> 20} MiB")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise AgentFileError(f"{source} is not UTF-8 text") from exc
    data: Any = text
    for _ in range(2):
        if not isinstance(data, str):
            break
        try:
            data = json.loads(data, parse_int=_parse_int)
        except RecursionError:
            raise AgentFileError(f"{source} is nested more than {MAX_DEPTH} levels deep") from None
        except ValueError as exc:
            raise AgentFileError(f"{source} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise AgentFileError(f"{source} is not an agent file: expected a JSON object at the top")
    _check_nesting_and_text(data, source)
    return blank_secrets(data)


def _parse_int(digits: str) -> int:
    if len(digits) > _MAX_DIGITS:  # Python's own refusal would advise a setting, not the user
        raise ValueError(f"a number of {len(digits)} digits")
    return int(digits)


def _check_nesting_and_text(data: Any, source: str) -> None:
    """Walk the document without recursing: depth within MAX_DEPTH, every string storable."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise AgentFileError(f"{source} is nested more than {MAX_DEPTH} levels deep")
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
        elif isinstance(value, str) and (bad := _SURROGATE.search(value)):
            raise AgentFileError(
                f"{source} holds text that is not valid Unicode "
                f"(an unpaired surrogate, {_shown(bad.group())})"
            )


def _shown(value: object) -> str:
    """A value from the file as an error line quotes it: repr, cut short."""
    return _clip(repr(value))


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def plan_import(doc: dict[str, Any], source: str = "the file") -> ImportPlan:
    """Check the first agent and everything it refers to; AgentFileError on the first problem."""
    agents = doc.get("agents")
    if not isinstance(agents, list) or not agents or not isinstance(agents[0], dict):
        raise AgentFileError(f"{source} holds no agents")
    agent = agents[0]
    agent_id = _clip(str(agent.get("id", "agent-0")))
    notes = []
    if len(agents) > 1:
        notes.append(f"the file holds {len(agents)} agents; imported the first")
    blocks = _by_id(doc.get("blocks"), "block", source)
    tools = _by_id(doc.get("tools"), "tool", source)
    block_ids = _id_list(agent, "block_ids", agent_id, source)
    for ref in _id_list(agent, "tool_ids", agent_id, source):
        if ref not in tools:
            raise AgentFileError(f"{source}: {agent_id} refers to unknown tool {_shown(ref)}")
    messages = _messages(agent, agent_id, source, notes)
    custom = [
        _clip(str(t.get("name")))
        for ref in agent.get("tool_ids") or []
        if (t := tools[ref]).get("tool_type") not in ("letta_core", "letta_memory_core")
        and t.get("source_code")
    ]
    if custom:
        notes.append(f"tools with code not imported (mcode runs only its own): {', '.join(custom)}")
    planned = []
    for ref in block_ids:
        if ref not in blocks:
            raise AgentFileError(f"{source}: {agent_id} refers to unknown block {_shown(ref)}")
        planned.append(_plan_block(blocks[ref], ref, source))
    counts = Counter(p.label for p in planned)
    duplicates = sorted(label for label, count in counts.items() if count > 1)
    if duplicates:
        raise AgentFileError(f"{source}: more than one block is labelled {duplicates[0]!r}")
    plan = ImportPlan(
        agent_name=str(agent.get("name") or agent_id),
        blocks=planned,
        model=None,
        api_base=None,
        embedding_model=None,
        weak_model=None,
        fallbacks=None,
        messages=messages,
        notes=notes,
    )
    _plan_config(plan, agent, notes)
    return plan


def _by_id(items: Any, kind: str, source: str) -> dict[str, dict[str, Any]]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise AgentFileError(f"{source}: '{kind}s' must be a list")
    out: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise AgentFileError(f"{source}: {kind} #{index} has no id")
        if item["id"] in out:
            raise AgentFileError(f"{source}: more than one {kind} has the id {_shown(item['id'])}")
        out[item["id"]] = item
    return out


def _id_list(agent: dict[str, Any], key: str, agent_id: str, source: str) -> list[str]:
    value = agent.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AgentFileError(f"{source}: {agent_id}.{key} must be a list of ids")
    return value


def _plan_block(block: dict[str, Any], ref: str, source: str) -> PlannedBlock:
    raw_label = block.get("label")
    if not isinstance(raw_label, str) or not raw_label.strip():
        raise AgentFileError(f"{source}: block {_shown(ref)} has no label")
    label = re.sub(r"[^a-z0-9_-]+", "_", raw_label.strip().lower()).strip("_-")[:64]
    if not LABEL_PATTERN.fullmatch(label):
        raise AgentFileError(
            f"{source}: block {_shown(ref)} has an unusable label {_shown(raw_label)}"
        )
    shown = _shown(raw_label)
    value = block.get("value") or ""
    if not isinstance(value, str):
        raise AgentFileError(f"{source}: block {shown} has a value that is not text")
    for key, kind in (("description", str), ("read_only", bool)):
        if block.get(key) is not None and not isinstance(block[key], kind):
            raise AgentFileError(f"{source}: block {shown} has a {key} that is not {_KINDS[kind]}")
    value = normalize_value(value)
    limit = block.get("limit")
    if limit is None:
        limit = max(DEFAULT_LIMIT, len(value))
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise AgentFileError(f"{source}: block {shown} has an invalid limit {_shown(limit)}")
    if len(value) > limit:
        raise AgentFileError(
            f"{source}: block {shown} holds {len(value)} characters, over its limit of {limit}"
        )
    metadata = block.get("metadata") if isinstance(block.get("metadata"), dict) else {}
    scope = metadata.get(SCOPE_KEY)
    if scope not in (PROJECT, USER):
        scope = DEFAULT_BLOCKS.get(label, PROJECT)
    extra = {
        k: v
        for k, v in metadata.items()
        if k != SCOPE_KEY and k not in ("description", "limit", "read_only") and v is not None
    }
    content = BlockContent(
        value=value,
        description=str(block.get("description") or ""),
        limit=limit,
        read_only=block.get("read_only") or False,
        extra=extra,
    )
    return PlannedBlock(label, scope, content, raw_label if raw_label != label else None)


def _messages(
    agent: dict[str, Any], agent_id: str, source: str, notes: list[str]
) -> list[dict[str, Any]]:
    items = agent.get("messages") or []
    if not isinstance(items, list):
        raise AgentFileError(f"{source}: {agent_id}.messages must be a list")
    for index, item in enumerate(items):
        _check_message(item, f"{source}: {agent_id}.messages[{index}]")
    ids = {m.get("id") for m in items}
    for ref in _id_list(agent, "in_context_message_ids", agent_id, source):
        if ref not in ids:
            raise AgentFileError(f"{source}: {agent_id} refers to unknown message {_shown(ref)}")
    out = []
    left_out: Counter[str] = Counter()
    for item in items:
        role = item.get("role") or "user"
        if role not in _SESSION_ROLES:
            if role != "system":  # the system prompt is mcode's own: left out without a word
                left_out[role] += 1
            continue
        message = from_af_message(item)
        if message["content"] or message.get("tool_calls") or message["role"] == "tool":
            out.append(message)
    if left_out:
        roles = ", ".join(_shown(role) for role in left_out)
        notes.append(
            f"{roles} messages not imported ({left_out.total()}): "
            "a session keeps user, assistant and tool messages"
        )
    return out


def _check_message(item: Any, where: str) -> None:
    """The fields a session keeps have the types a session needs, or the file is refused."""
    if not isinstance(item, dict):
        raise AgentFileError(f"{where} is not an object")
    for key, kind in _MESSAGE_FIELDS.items():
        if item.get(key) is not None and not isinstance(item[key], kind):
            raise AgentFileError(f"{where}.{key} is not {_KINDS[kind]}")
    for call in item.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise AgentFileError(f"{where}.tool_calls holds a call that names no function")


def from_af_message(message: dict[str, Any]) -> dict[str, Any]:
    """An Agent File message as an OpenAI-shaped one: typed text parts joined, others dropped."""
    content = message.get("content")
    if isinstance(content, list):
        text = "\n".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type", "text") == "text"
        )
    else:
        text = str(content or "")
    if not text and message.get("tool_returns"):
        text = "\n".join(
            str(r.get("func_response", "")) for r in message["tool_returns"] if isinstance(r, dict)
        )
    out: dict[str, Any] = {"role": str(message.get("role") or "user"), "content": text}
    if message.get("tool_calls"):
        out["tool_calls"] = message["tool_calls"]
    if message.get("tool_call_id"):
        out["tool_call_id"] = message["tool_call_id"]
    if message.get("created_at"):
        out["created_at"] = message["created_at"]
    return out


def _plan_config(plan: ImportPlan, agent: dict[str, Any], notes: list[str]) -> None:
    llm = agent.get("llm_config") if isinstance(agent.get("llm_config"), dict) else {}
    model = model_from_llm_config(llm)
    if model is not None and model.startswith("letta/"):
        notes.append(f"model {model!r} is Letta's hosted service; kept this repository's model")
        model = None
    plan.model = model
    if model is not None:
        endpoint = llm.get("model_endpoint")
        public = not endpoint or any(host in str(endpoint) for host in _PUBLIC_HOSTS)
        plan.api_base = "" if public else str(endpoint)
    embedding = agent.get("embedding_config")
    plan.embedding_model = embedding_from_config(embedding if isinstance(embedding, dict) else {})
    if plan.embedding_model is not None and plan.embedding_model.startswith("letta/"):
        notes.append("embeddings are Letta's hosted service; kept this repository's embeddings")
        plan.embedding_model = None
    metadata = agent.get("metadata") if isinstance(agent.get("metadata"), dict) else {}
    ours = metadata.get("mcode")
    if isinstance(ours, dict):
        plan.weak_model = str(ours["weak_model"]) if ours.get("weak_model") else None
        fallbacks = ours.get("fallbacks")
        if isinstance(fallbacks, list) and fallbacks:
            plan.fallbacks = [str(f) for f in fallbacks]


def model_from_llm_config(llm: dict[str, Any]) -> str | None:
    """A litellm model string from Letta's `llm_config`; the `handle` wins when it has one."""
    handle = llm.get("handle")
    if isinstance(handle, str) and "/" in handle:
        return handle
    model = llm.get("model")
    if not isinstance(model, str) or not model:
        return None
    kind = str(llm.get("model_endpoint_type") or "openai")
    return f"{_PROVIDER.get(kind, kind)}/{model}"


def embedding_from_config(config: dict[str, Any]) -> str | None:
    kind = config.get("embedding_endpoint_type")
    model = config.get("embedding_model")
    handle = config.get("handle")
    if kind in ("local", "none") or model in ("local", "none"):
        return "none" if "none" in (kind, model) else "local"
    if isinstance(model, str) and "minilm" in model.lower():
        return "local"  # the model mcode bundles
    if isinstance(handle, str) and "/" in handle:
        return handle
    if isinstance(model, str) and model and isinstance(kind, str) and kind:
        return f"{_PROVIDER.get(kind, kind)}/{model}"
    return None


# Import: writing ----------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportReport:
    agent: str
    blocks: list[tuple[str, str, str]]  # (label, scope, "created" | "updated" | "unchanged")
    config: dict[str, Any]  # keys written to the project config (None: removed)
    messages: int  # handed to the sink
    messages_not_imported: int
    notes: list[str]


def import_agent_file(
    doc: dict[str, Any],
    store: BlockStore,
    config_path: Path,
    *,
    source: str = "the file",
    model: str | None = None,
    embedding: str | None = None,
    force: bool = False,
    message_sink: MessageSink | None = None,
) -> ImportReport:
    """Write the file's blocks and settings into this repository (its config at `config_path`).

    Refuses, writing nothing, when a block exists here with other content, unless `force`; a
    default block nobody has edited does not count. `model` and `embedding` replace the file's.
    """
    plan = plan_import(doc, source)
    current = {p.label: _existing(store, p) for p in plan.blocks}
    conflicts = [
        (p, c)
        for p in plan.blocks
        if (c := current[p.label]) is not None and not _same(c, p.content) and not _default(p, c)
    ]
    locked = [p.label for p, c in conflicts if c.read_only]
    if locked:
        raise ImportConflictError(
            f"read-only blocks differ from the file's: {', '.join(locked)}; edit them by hand"
        )
    if conflicts and not force:
        labels = ", ".join(f"{p.label} ({p.scope})" for p, _ in conflicts)
        raise ImportConflictError(
            f"blocks already exist here with other content: {labels}; "
            "nothing was imported (pass --force to replace them)"
        )
    read_toml(config_path)  # a broken config stops the import before any block is written
    written = [_write_block(store, p, current[p.label], source) for p in plan.blocks]
    config = update_toml_file(
        config_path, _config_values(plan, model, embedding), note="Set by `mcode import`."
    )
    sent = 0
    if plan.messages and message_sink is not None:
        message_sink(plan.messages)
        sent = len(plan.messages)
    notes = list(plan.notes)
    notes += [
        f"block {_shown(p.renamed_from)} imported as {p.label!r}"
        for p in plan.blocks
        if p.renamed_from
    ]
    return ImportReport(plan.agent_name, written, config, sent, len(plan.messages) - sent, notes)


def _existing(store: BlockStore, planned: PlannedBlock) -> BlockContent | None:
    path = store.scope(planned.scope).block_path(planned.label)
    try:
        return parse_block(read_bytes(path).decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, FrontMatterError) as exc:
        raise ImportConflictError(
            f"{path}: cannot be read ({exc}); fix or remove it first"
        ) from exc


def _same(a: BlockContent, b: BlockContent) -> bool:
    return (a.value, a.description, a.limit, a.read_only) == (
        b.value,
        b.description,
        b.limit,
        b.read_only,
    )


def _default(planned: PlannedBlock, current: BlockContent) -> bool:
    """The block is still mcode's default text: nobody's work is lost by replacing it."""
    text = template_text(planned.label)
    return text is not None and _same(parse_block(text), current)


def _write_block(
    store: BlockStore, planned: PlannedBlock, snapshot: BlockContent | None, source: str
) -> tuple[str, str, str]:
    if snapshot is not None and _same(snapshot, planned.content):
        return (planned.label, planned.scope, "unchanged")

    def change(now: BlockContent | None) -> BlockContent:
        if now != snapshot:
            raise ConflictError(f"memory block {planned.label!r} changed during the import")
        extra = {**(now.extra if now is not None else {}), **planned.content.extra}
        return replace(planned.content, extra=extra)

    store.update(
        planned.label,
        change,
        actor=ACTOR,
        reason=f"mcode import {source}",
        op="create" if snapshot is None else "set",
        scope=planned.scope,
    )
    return (planned.label, planned.scope, "created" if snapshot is None else "updated")


def _config_values(plan: ImportPlan, model: str | None, embedding: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if model:
        values["model"] = model
    elif plan.model:
        values["model"] = plan.model
        values["api_base"] = plan.api_base or None
    if embedding or plan.embedding_model:
        values["embedding_model"] = embedding or plan.embedding_model
    if plan.weak_model:
        values["weak_model"] = plan.weak_model
    if plan.fallbacks:
        values["fallbacks"] = plan.fallbacks
    return values
