"""The coding tools (files, search, shell, git) and the permission system they ask through.

A tool sees only a `CodingContext`; it checks its own permission (asking the user through the
context when the mode or a rule says so) and reports every file change to the context's recorder,
which a `TurnCheckpoint` turns into `/undo`.
"""

from __future__ import annotations

from mcode.memory.tools import ToolRegistry
from mcode.tools.checkpoint import FileUndo, TurnCheckpoint, UndoOutcome
from mcode.tools.context import (
    Answer,
    AskCallback,
    CodingContext,
    CodingTool,
    FileChangeRecorder,
    OutputCallback,
    Request,
    ToolError,
)
from mcode.tools.files import create_file, edit_file, list_files, multi_edit, read_file, write_file
from mcode.tools.git import git_commit, git_diff, git_status
from mcode.tools.permissions import (
    MODES,
    Decision,
    PermissionMode,
    Permissions,
    Rule,
    parse_mode,
    parse_rule,
)
from mcode.tools.search import code_search, grep
from mcode.tools.shell import run_shell

CODING_TOOLS: tuple[CodingTool, ...] = (
    read_file,
    list_files,
    grep,
    code_search,
    create_file,
    edit_file,
    multi_edit,
    run_shell,
    git_status,
    git_diff,
    git_commit,
)


def coding_tools() -> ToolRegistry:
    """A fresh registry of the coding tools, for the agent to merge with the memory tools."""
    return ToolRegistry(CODING_TOOLS)


__all__ = [
    "CODING_TOOLS",
    "MODES",
    "Answer",
    "AskCallback",
    "CodingContext",
    "CodingTool",
    "Decision",
    "FileChangeRecorder",
    "FileUndo",
    "OutputCallback",
    "PermissionMode",
    "Permissions",
    "Request",
    "Rule",
    "ToolError",
    "TurnCheckpoint",
    "UndoOutcome",
    "coding_tools",
    "parse_mode",
    "parse_rule",
    "write_file",
]
