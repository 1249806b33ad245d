"""Export: this repository's memory blocks, model settings and recent messages as an Agent File,
every secret blanked, since the file may travel anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from mcode import __version__
from mcode.config import Settings
from mcode.fsio import clock
from mcode.memory.agentfile.format import ENDPOINT_TYPE, LOCAL_EMBEDDING, SCOPE_KEY
from mcode.memory.blocks import BlockStore
from mcode.secrets import blank_secrets


def export_agent(
    store: BlockStore,
    settings: Settings,
    *,
    name: str,
    system: str = "",
    messages: Iterable[dict[str, Any]] = (),
    max_messages: int = 50,
    context_window: int | None = None,
    tool_schemas: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The Agent File for this repository's memory, secrets blanked.

    `tool_schemas` are the function declarations of the memory tools (OpenAI format: `name`,
    `description`, `parameters`), listed as Letta core tools.

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
            "name": function["name"],
            "description": function["description"],
            "tool_type": "letta_core",
            "source_type": "python",
            "source_code": None,
            "json_schema": dict(function),
            "tags": ["letta_core"],
        }
        for i, function in enumerate(tool_schemas)
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
        "model_endpoint_type": ENDPOINT_TYPE.get(provider, provider or "openai"),
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
