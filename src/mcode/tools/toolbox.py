"""The tools as the agent loop runs them: one registry, and the access object each tool works
through (`RepoAccess` or `MemoryAccess`, chosen by the tool's own annotation)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mcode.tools.access import MemoryAccess, RepoAccess
from mcode.tools.base import Tool, ToolError, ToolRegistry, decode_arguments


class Toolbox:
    """Runs a registry's tools by name, each with the session's access object of its type."""

    def __init__(self, tools: ToolRegistry, repo: RepoAccess, memory: MemoryAccess) -> None:
        self.tools = tools
        self.repo = repo
        self.memory = memory
        unserved = [t.name for t in tools if t.access not in (RepoAccess, MemoryAccess)]
        if unserved:
            raise ValueError(f"no access object for the tools {', '.join(unserved)}")

    def names(self) -> list[str]:
        return self.tools.names()

    def schemas(self) -> list[dict[str, Any]]:
        return self.tools.schemas()

    def lookup(self, name: str) -> Tool | None:
        """The tool called `name` (its kind, its path argument), or None when there is none."""
        return self.tools.get(name) if name in self.tools else None

    def concurrent(self, name: str, arguments: str) -> bool:
        """Whether the call may run alongside others: a parallel tool that, working on the
        repository, needs no question to the user."""
        tool = self.lookup(name)
        if tool is None or not tool.parallel:
            return False
        if tool.access is not RepoAccess:
            return True  # memory tools ask no permission
        try:
            args = decode_arguments(name, arguments)
        except ToolError:
            return False
        return self.repo.permissions.check(name, args).behavior == "allow"

    def run(self, name: str, arguments: str, on_output: Callable[[str], None]) -> str:
        """The result for the model; a ToolError when the tool refuses or does not exist.
        `on_output` hears a shell command's lines as they come."""
        tool = self.tools.get(name)
        if tool.access is RepoAccess:
            return tool(replace(self.repo, on_output=on_output), arguments)
        return tool(self.memory, arguments)
