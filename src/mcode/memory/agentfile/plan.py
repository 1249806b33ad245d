"""Import, first half: read an Agent File and check all of it (every reference, type, size and
depth) into an `ImportPlan`, before anything is written. Whatever the file holds, the outcome is a
plan or an AgentFileError that says what is wrong and where.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mcode.memory.agentfile.format import PROVIDER, SCOPE_KEY
from mcode.memory.blocks import LABEL_PATTERN, PROJECT, USER
from mcode.memory.defaults import DEFAULT_BLOCKS
from mcode.memory.frontmatter import DEFAULT_LIMIT, BlockContent, normalize_value
from mcode.secrets import blank_secrets

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
                f"(an unpaired surrogate, {shown_value(bad.group())})"
            )


def shown_value(value: object) -> str:
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
            raise AgentFileError(f"{source}: {agent_id} refers to unknown tool {shown_value(ref)}")
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
            raise AgentFileError(f"{source}: {agent_id} refers to unknown block {shown_value(ref)}")
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
            raise AgentFileError(
                f"{source}: more than one {kind} has the id {shown_value(item['id'])}"
            )
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
        raise AgentFileError(f"{source}: block {shown_value(ref)} has no label")
    label = re.sub(r"[^a-z0-9_-]+", "_", raw_label.strip().lower()).strip("_-")[:64]
    if not LABEL_PATTERN.fullmatch(label):
        raise AgentFileError(
            f"{source}: block {shown_value(ref)} has an unusable label {shown_value(raw_label)}"
        )
    shown = shown_value(raw_label)
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
        raise AgentFileError(f"{source}: block {shown} has an invalid limit {shown_value(limit)}")
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
            raise AgentFileError(
                f"{source}: {agent_id} refers to unknown message {shown_value(ref)}"
            )
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
        roles = ", ".join(shown_value(role) for role in left_out)
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
    return f"{PROVIDER.get(kind, kind)}/{model}"


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
        return f"{PROVIDER.get(kind, kind)}/{model}"
    return None
