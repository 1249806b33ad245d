"""Memory: core memory blocks (files the agent and the user both edit), their history, and the
archival and recall stores. The tools the agent uses on its memory are in `mcode.tools.memory`.
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

__all__ = [
    "DEFAULT_BLOCKS",
    "DEFAULT_LIMIT",
    "PROJECT",
    "USER",
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
    "ReadOnlyError",
    "Scope",
    "WriteRefusedError",
]
