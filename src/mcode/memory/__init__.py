"""Memory: core memory blocks (files the agent and the user both edit), their history, and the tools
the agent uses on its memory. Archival and recall storage plug in through the Protocols in `tools`.
"""

from mcode.memory.blocks import (
    PROJECT,
    USER,
    Block,
    BlockError,
    BlockNotFoundError,
    BlockStore,
    BlockStoreError,
    BrokenBlock,
    ConflictError,
    HistoryEntryNotFoundError,
    InvalidLabelError,
    LimitExceededError,
    ReadOnlyError,
    Scope,
    WriteRefusedError,
)
from mcode.memory.defaults import DEFAULT_BLOCKS
from mcode.memory.frontmatter import DEFAULT_LIMIT, BlockContent
from mcode.memory.history import HistoryEntry
from mcode.memory.tools import (
    MEMORY_TOOLS,
    ArchivalMemory,
    MemoryToolError,
    RecallMemory,
    Tool,
    ToolContext,
    ToolRegistry,
    memory_tools,
)

__all__ = [
    "DEFAULT_BLOCKS",
    "DEFAULT_LIMIT",
    "MEMORY_TOOLS",
    "PROJECT",
    "USER",
    "ArchivalMemory",
    "Block",
    "BlockContent",
    "BlockError",
    "BlockNotFoundError",
    "BlockStore",
    "BlockStoreError",
    "BrokenBlock",
    "ConflictError",
    "HistoryEntry",
    "HistoryEntryNotFoundError",
    "InvalidLabelError",
    "LimitExceededError",
    "MemoryToolError",
    "ReadOnlyError",
    "RecallMemory",
    "Scope",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "WriteRefusedError",
    "memory_tools",
]
