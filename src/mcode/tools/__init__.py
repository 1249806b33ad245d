"""The tools the agent works with, the framework that declares them, and the permission system
they ask through.

A tool is a typed function declared with `@tool` (`base`); its first parameter names the access
object it works through (`access`: `RepoAccess` for the repository, `MemoryAccess` for memory).
Every tool defined in a module of this package is found by `builtin_tools()` (`catalog`), and a
`Toolbox` runs them for the agent loop. A repository tool checks its own permission (asking the
user through its access object when the mode or a rule says so) and reports every file change to
the access object's recorder, which a `TurnCheckpoint` turns into `/undo`.
"""

from __future__ import annotations

from mcode.tools.access import (
    Answer,
    ArchivalMemory,
    AskCallback,
    CommitCheck,
    CommitVerdict,
    FileChangeRecorder,
    MemoryAccess,
    OutputCallback,
    PermissionDenied,
    RecallMemory,
    RepoAccess,
    Request,
)
from mcode.tools.base import (
    Doc,
    Kind,
    Range,
    Tool,
    ToolError,
    ToolRegistry,
    decode_arguments,
    tool,
)
from mcode.tools.catalog import builtin_tools
from mcode.tools.checkpoint import FileUndo, TurnCheckpoint, UndoOutcome
from mcode.tools.files import write_file
from mcode.tools.permissions import (
    MODES,
    Decision,
    PermissionMode,
    Permissions,
    Rule,
    parse_mode,
    parse_rule,
)
from mcode.tools.toolbox import Toolbox

__all__ = [
    "MODES",
    "Answer",
    "ArchivalMemory",
    "AskCallback",
    "CommitCheck",
    "CommitVerdict",
    "Decision",
    "Doc",
    "FileChangeRecorder",
    "FileUndo",
    "Kind",
    "MemoryAccess",
    "OutputCallback",
    "PermissionDenied",
    "PermissionMode",
    "Permissions",
    "Range",
    "RecallMemory",
    "RepoAccess",
    "Request",
    "Rule",
    "Tool",
    "ToolError",
    "ToolRegistry",
    "Toolbox",
    "TurnCheckpoint",
    "UndoOutcome",
    "builtin_tools",
    "decode_arguments",
    "parse_mode",
    "parse_rule",
    "tool",
    "write_file",
]
