"""Every built-in tool, found where it is defined: a module-level `Tool` in a module of this package.

So adding a tool is adding a module (or a function to one) with a `@tool` function; no list
elsewhere names it. The modules are read in name order and each module's tools in the order they
are defined, which is the order the model sees them in.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path

from mcode.tools.base import Kind, Tool, ToolRegistry


@cache
def _defined() -> tuple[Tool, ...]:
    found: list[Tool] = []
    for module_info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        module = importlib.import_module(f"{__package__}.{module_info.name}")
        found += [
            value
            for value in vars(module).values()
            if isinstance(value, Tool) and value.run.__module__ == module.__name__
        ]
    ToolRegistry(found)  # two tools of one name are refused here, before anything runs
    return tuple(found)


def builtin_tools() -> ToolRegistry:
    """A fresh registry of every built-in tool, for a session to run (or extend)."""
    return ToolRegistry(_defined())


@cache
def _kinds() -> dict[str, Kind]:
    return {tool.name: tool.kind for tool in _defined()}


def kind_of(name: str) -> Kind | None:
    """The kind of the built-in tool called `name`; None when there is none."""
    return _kinds().get(name)
