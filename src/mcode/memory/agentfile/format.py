"""The Agent File format's vocabulary, shared by export and import: the top-level keys, where a
block's mcode scope travels, and how litellm's provider names map to Letta's endpoint types.
"""

from __future__ import annotations

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
SCOPE_KEY = "mcode_scope"  # in a block's metadata: which mcode scope it came from
# The bundled embedder, as Letta would describe it.
LOCAL_EMBEDDING = {"model": "all-MiniLM-L6-v2", "dim": 384, "chunk_size": 300}

# litellm provider prefix <-> Letta's model_endpoint_type, where the two differ.
ENDPOINT_TYPE = {"ollama_chat": "ollama", "gemini": "google_ai", "vertex_ai": "google_vertex"}
PROVIDER = {
    "ollama": "ollama_chat",
    "google_ai": "gemini",
    "google_vertex": "vertex_ai",
    "together": "together_ai",
}
