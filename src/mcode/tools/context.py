"""What a coding tool sees, how it asks the user, and how it is declared.

A coding tool never receives the agent: it gets a `CodingContext` holding the repository root, the
session's permissions, a callback to ask the user, one to stream shell output, the code searcher when
the repository is indexed, and a recorder that hears about every file before it is overwritten (for
`/undo`). Coding tools are the memory package's `Tool`, so the agent has one kind of tool; only the
argument checking here is wider (booleans, lists of objects), see `CodingTool`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from mcode.memory.tools import MemoryToolError, Tool
from mcode.retrieval.hits import CodeSearcher
from mcode.tools.permissions import Permissions

Answer = Literal["yes", "no", "always"]
RequestKind = Literal["edit", "shell", "secret", "read"]


class ToolError(MemoryToolError):
    """A coding tool refused its call; the message tells the model what to do differently."""


@dataclass(frozen=True, slots=True)
class Request:
    """A question for the user: `summary` is one line, `detail` the diff or the command to show."""

    kind: RequestKind
    summary: str
    detail: str
    tool: str = ""
    always: tuple[str, ...] = ()  # the rules that answering "always" adds


AskCallback = Callable[[Request], Answer]
OutputCallback = Callable[[str], None]


class FileChangeRecorder(Protocol):
    def before_write(self, path: Path, previous: bytes | None) -> None:
        """Hear a file's content (None: it did not exist) just before a tool changes it."""
        ...


def _discard(line: str) -> None:
    pass


@dataclass(slots=True)
class CodingContext:
    """Everything a coding tool may touch. `ask` is None when nobody can answer (headless)."""

    root: Path
    permissions: Permissions = field(default_factory=Permissions)
    ask: AskCallback | None = None
    on_output: OutputCallback = _discard
    searcher: CodeSearcher | None = None
    recorder: FileChangeRecorder | None = None

    def authorize(
        self,
        tool: str,
        subject: Mapping[str, Any],
        *,
        kind: RequestKind,
        action: str,
        summary: str,
        detail: str,
    ) -> None:
        """Return when the call may go ahead; otherwise a ToolError the model reads.

        `action` completes "the user denied …", e.g. "running `make`" or "the edit to a.py".
        """
        decision = self.permissions.check(tool, subject)
        if decision.behavior == "allow":
            return
        if decision.behavior == "deny":
            raise ToolError(
                f"{_capital(action)} is denied by the permission rule {decision.rule}; nothing "
                "was done. Do not try to reach the same result another way; ask the user."
            )
        if self.ask is None:
            raise ToolError(
                f"{_capital(action)} needs the user's approval ({decision.reason}), and this "
                "session cannot ask; nothing was done. Tell the user what you wanted to do."
            )
        # an ask rule asks every time, so "always" is not offered against it
        always = () if decision.rule else tuple(self.permissions.always_rules(tool, subject))
        answer = self.ask(Request(kind, summary, detail, tool, always))
        if answer == "always":
            self.permissions.remember(always)
        elif answer != "yes":
            raise ToolError(
                f"the user denied {action}; nothing was done. Ask the user how to proceed "
                "instead of working around it."
            )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# Declaring tools -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodingTool(Tool):
    """A `Tool` whose arguments may also be booleans and lists of objects, run with a
    `CodingContext`. Once the memory package's argument checking accepts those types, plain
    `Tool` will do and this class can go."""

    def __call__(self, context: Any, arguments: dict[str, Any] | str) -> str:
        args = check_arguments(self.name, self.parameters, decode_arguments(self.name, arguments))
        try:
            return self.run(context, **args)
        except OSError as exc:  # a read-only file, a full disk: tell the model, not a traceback
            where = f" ({exc.filename})" if exc.filename else ""
            raise ToolError(f"{self.name} failed: {exc.strerror or exc}{where}") from exc


def coding_tool(parameters: dict[str, Any]) -> Callable[[Callable[..., str]], CodingTool]:
    """Make a tool of a function: its name is the function's, its description the docstring."""

    def wrap(function: Callable[..., str]) -> CodingTool:
        schema = {"type": "object", "additionalProperties": False, **parameters}
        description = inspect.cleandoc(function.__doc__ or "")
        return CodingTool(function.__name__, description, schema, function)

    return wrap


def decode_arguments(tool: str, arguments: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError as exc:
            raise ToolError(f"{tool}: arguments are not valid JSON: {exc}") from exc
    if not isinstance(arguments, dict):
        raise ToolError(f"{tool}: arguments must be a JSON object")
    return arguments


def check_arguments(tool: str, schema: Mapping[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """Arguments checked against a JSON schema's object, with the model's usual slips forgiven
    (null for unset, "true" for true, 3.0 for 3); anything else is a ToolError naming it."""
    properties: dict[str, Any] = schema.get("properties", {})
    unknown = sorted(set(args) - set(properties))
    if unknown:
        raise ToolError(
            f"{tool}: unexpected argument {unknown[0]!r}; expected {', '.join(properties)}"
        )
    present = {k: v for k, v in args.items() if v is not None}
    missing = [k for k in schema.get("required", []) if k not in present]
    if missing:
        raise ToolError(f"{tool}: missing required argument {missing[0]!r}")
    return {k: _coerce(tool, k, properties[k], v) for k, v in present.items()}


def _coerce(tool: str, name: str, spec: Mapping[str, Any], value: Any) -> Any:
    kind = spec.get("type")
    if kind == "string" and isinstance(value, str):
        allowed = spec.get("enum")
        if allowed and value not in allowed:
            raise ToolError(f"{tool}: {name} must be one of {', '.join(allowed)}")
        return value
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    if kind == "integer" and not isinstance(value, bool):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, int):
            low, high = spec.get("minimum"), spec.get("maximum")
            if (low is not None and value < low) or (high is not None and value > high):
                raise ToolError(f"{tool}: {name} must be between {low} and {high}")
            return value
    if kind == "array":
        items = spec.get("items", {})
        if isinstance(value, str) and items.get("type") == "string":
            value = [value]
        if isinstance(value, list):
            return [_coerce(tool, f"{name}[{i}]", items, item) for i, item in enumerate(value)]
    if kind == "object" and isinstance(value, dict):
        return check_arguments(f"{tool}: {name}", spec, value)
    expected = {
        "string": "text",
        "integer": "a whole number",
        "boolean": "true or false",
        "array": "a list",
        "object": "an object",
    }
    raise ToolError(f"{tool}: {name} must be {expected.get(kind, kind)}, got {value!r}")
