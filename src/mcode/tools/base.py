"""The one way to declare a tool: a typed function whose signature and docstring are its schema.

A tool is a plain function. Its first parameter is the access object it works through (see
`mcode.tools.access`: `RepoAccess` for the repository, `MemoryAccess` for memory), and the
toolbox hands each tool the one its annotation names. The other parameters are the model's
arguments; the JSON schema the model reads is derived from them, as simonw/llm does:

- `str`, `int`, `bool`, `Literal["a", "b"]` (an enum), `list[...]` and a `TypedDict` (an object)
  become their JSON types; `X | None` is X; a parameter without a default is required;
- `Annotated[int, Range(1, 50)]` bounds a number (on a list, its length);
- a parameter's description is the `Doc` its type carries (for an argument several tools share),
  or else its entry in the docstring's `Args:` section, which must come last; every argument the
  model sees has one;
- the rest of the docstring is the tool's description, and the function's name is the tool's.

`@tool(kind, parallel=..., path_arg=...)` records what the rest of mcode asks of a tool, so that
adding a tool is one module: the permission modes decide by its `kind`, the agent loop runs
`parallel` tools side by side, and the session keeps the file named by `path_arg` in focus.

Arguments are checked against the derived schema in one place (`check_arguments`), forgiving the
model's usual slips. A tool refuses a call by raising `ToolError`, whose message the model reads.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, Required, Union, get_args, get_origin

Kind = Literal["read", "edit", "shell", "memory", "search"]
"""What a tool does, which decides what the permission modes say about it:

- read: reads the repository (files, git); every mode allows it, `Read(...)` rules cover it;
- edit: changes files of the repository; `Edit(...)` and `Write(...)` rules cover it;
- shell: runs a command; `Bash(...)` rules cover it;
- memory: changes the agent's own memory; no permission is asked;
- search: searches the agent's own memory; no permission is asked.
"""
KINDS: tuple[Kind, ...] = get_args(Kind)


class ToolError(Exception):
    """A tool refused its call; the message tells the model what to do differently."""


@dataclass(frozen=True, slots=True)
class Range:
    """Bounds for a number argument, or for the length of a list argument."""

    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True, slots=True)
class Doc:
    """The description of an argument, carried by its type (`Annotated[str, Doc("…")]`) so that
    tools sharing the argument share its words."""

    text: str


@dataclass(frozen=True, slots=True)
class Tool:
    """A tool as the model and the toolbox see it. `access` is the type of the object `run`
    takes first; `parameters` the JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    run: Callable[..., str]
    access: type
    kind: Kind
    parallel: bool = False
    path_arg: str | None = None

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-calling declaration."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def __call__(self, access: Any, arguments: Mapping[str, Any] | str) -> str:
        """Run with the model's arguments (a dict, or the JSON text a model sends)."""
        args = check_arguments(self.name, self.parameters, decode_arguments(self.name, arguments))
        try:
            return self.run(access, **args)
        except OSError as exc:  # a read-only file, a full disk: tell the model, not a traceback
            where = f" ({exc.filename})" if exc.filename else ""
            raise ToolError(f"{self.name} failed: {exc.strerror or exc}{where}") from exc


def tool(
    kind: Kind, *, parallel: bool = False, path_arg: str | None = None
) -> Callable[[Callable[..., str]], Tool]:
    """Make a tool of a function, its schema derived from its signature and docstring.

    `parallel`: the tool only reads, so several calls may run at once. `path_arg`: the argument
    naming the one file the tool reads or changes (leave it out when it may name a directory).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown tool kind {kind!r}; use one of {', '.join(KINDS)}")

    def wrap(function: Callable[..., str]) -> Tool:
        description, documented = _split_docstring(function)
        access, parameters = _derive_parameters(function, documented)
        if path_arg is not None and path_arg not in parameters["properties"]:
            raise ValueError(f"{function.__name__}: path_arg {path_arg!r} is not an argument")
        return Tool(
            function.__name__, description, parameters, function, access, kind, parallel, path_arg
        )

    return wrap


class ToolRegistry:
    """Tools by name; a second tool with a taken name is a programming error, refused at once."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.register(item)

    def register(self, item: Tool) -> None:
        if item.name in self._tools:
            raise ValueError(f"a tool named {item.name!r} is already registered")
        self._tools[item.name] = item

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(self._tools)
            raise ToolError(f"unknown tool {name!r}; available: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        return [item.schema() for item in self._tools.values()]

    def run(self, name: str, access: Any, arguments: Mapping[str, Any] | str) -> str:
        return self.get(name)(access, arguments)


# Deriving the schema ------------------------------------------------------------------------------

_ARGS = re.compile(r"^Args:\s*$", re.MULTILINE)
_ARG = re.compile(r"^    (\w+):\s*(.*)$")
_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", bool: "boolean", float: "number"}
_BOUNDS = ("minimum", "maximum")


def _split_docstring(function: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The description (the docstring before `Args:`) and each argument's words from `Args:`."""
    doc = inspect.cleandoc(function.__doc__ or "")
    found = _ARGS.search(doc)
    if found is None:
        return doc, {}
    documented: dict[str, str] = {}
    name = ""
    for line in doc[found.end() :].strip("\n").split("\n"):
        entry = _ARG.match(line)
        if entry:
            name = entry.group(1)
            documented[name] = entry.group(2).strip()
        elif line.startswith("        ") and name:
            documented[name] = f"{documented[name]} {line.strip()}"
        elif line.strip():
            raise ValueError(f"{function.__name__}: Args: must be the docstring's last section")
    return doc[: found.start()].rstrip(), documented


def _derive_parameters(
    function: Callable[..., Any], documented: dict[str, str]
) -> tuple[type, dict[str, Any]]:
    """The access type (the first parameter's) and the JSON schema of the other parameters."""
    name = function.__name__
    hints = typing.get_type_hints(function, include_extras=True)
    params = list(inspect.signature(function).parameters.values())
    if not params or params[0].name not in hints:
        raise ValueError(f"{name}: the first parameter must be annotated with its access type")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in params[1:]:
        if param.name not in hints:
            raise ValueError(f"{name}: argument {param.name!r} has no type annotation")
        spec = _schema_of(hints[param.name], f"{name}: {param.name}")
        spec.setdefault("description", documented.pop(param.name, ""))
        if not spec["description"]:
            raise ValueError(f"{name}: argument {param.name!r} has no description in Args:")
        properties[param.name] = spec
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
    if documented:
        raise ValueError(f"{name}: Args: describes {', '.join(documented)}, not an argument")
    schema = {"type": "object", "additionalProperties": False}
    return hints[params[0].name], {**schema, "properties": properties, "required": required}


def _schema_of(hint: Any, where: str) -> dict[str, Any]:
    """The JSON schema of one annotation (see the module docstring for what is understood)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        spec = _schema_of(args[0], where)
        for extra in hint.__metadata__:
            if isinstance(extra, Doc):
                spec["description"] = extra.text
            elif isinstance(extra, Range):
                low, high = ("minItems", "maxItems") if spec["type"] == "array" else _BOUNDS
                if extra.minimum is not None:
                    spec[low] = extra.minimum
                if extra.maximum is not None:
                    spec[high] = extra.maximum
        return spec
    if origin in (Union, types.UnionType):
        present = [arg for arg in args if arg is not type(None)]
        if len(present) != 1:
            raise TypeError(f"{where}: a union of several types cannot be declared to a model")
        return _schema_of(present[0], where)
    if origin in (Required, NotRequired):
        return _schema_of(args[0], where)
    if origin is Literal:
        if not all(isinstance(arg, str) for arg in args):
            raise TypeError(f"{where}: only Literal strings can be declared to a model")
        return {"type": "string", "enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _schema_of(args[0] if args else str, where)}
    if typing.is_typeddict(hint):
        fields = typing.get_type_hints(hint, include_extras=True)
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                key: _schema_of(value, f"{where}.{key}") for key, value in fields.items()
            },
            "required": [key for key, value in fields.items() if _required_field(hint, value)],
        }
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    raise TypeError(f"{where}: cannot declare {hint!r} to a model")


def _required_field(typed_dict: Any, hint: Any) -> bool:
    """Read from the field's own hint: `__required_keys__` is wrong when annotations are text."""
    origin = get_origin(hint)
    return origin is Required or (origin is not NotRequired and typed_dict.__total__)


# Checking the model's arguments -------------------------------------------------------------------


def decode_arguments(tool_name: str, arguments: Mapping[str, Any] | str) -> dict[str, Any]:
    """The arguments as a dict: the model sends JSON text; anything but an object is refused."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError as exc:
            raise ToolError(f"{tool_name}: arguments are not valid JSON: {exc}") from exc
    if not isinstance(arguments, Mapping):
        raise ToolError(f"{tool_name}: arguments must be a JSON object")
    return dict(arguments)


def check_arguments(
    tool_name: str, schema: Mapping[str, Any], args: Mapping[str, Any]
) -> dict[str, Any]:
    """Arguments checked against a JSON schema's object, with the model's usual slips forgiven
    (null for unset, "true" for true, 3.0 or "3" for 3, a lone string for a list of strings);
    anything else is a ToolError naming the argument."""
    properties: dict[str, Any] = schema.get("properties", {})
    unknown = sorted(set(args) - set(properties))
    if unknown:
        raise ToolError(
            f"{tool_name}: unexpected argument {unknown[0]!r}; expected {', '.join(properties)}"
        )
    present = {k: v for k, v in args.items() if v is not None}
    missing = [k for k in schema.get("required", []) if k not in present]
    if missing:
        raise ToolError(f"{tool_name}: missing required argument {missing[0]!r}")
    return {k: _coerce(tool_name, k, properties[k], v) for k, v in present.items()}


_EXPECTED = {
    "string": "text",
    "integer": "a whole number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
}


def _coerce(tool_name: str, name: str, spec: Mapping[str, Any], value: Any) -> Any:
    kind = spec.get("type")
    if kind == "string" and isinstance(value, str):
        allowed = spec.get("enum")
        if allowed and value not in allowed:
            raise ToolError(f"{tool_name}: {name} must be one of {', '.join(allowed)}")
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
                raise ToolError(f"{tool_name}: {name} must be between {low} and {high}")
            return value
    if kind == "array":
        items = spec.get("items", {})
        if isinstance(value, str) and items.get("type") == "string":
            value = [value]  # a lone tag for a list of tags
        if isinstance(value, list):
            allowed = items.get("enum")
            if allowed and any(item not in allowed for item in value):
                raise ToolError(f"{tool_name}: {name} may only contain {', '.join(allowed)}")
            return [_coerce(tool_name, f"{name}[{i}]", items, item) for i, item in enumerate(value)]
    if kind == "object" and isinstance(value, dict):
        return check_arguments(f"{tool_name}: {name}", spec, value)
    expected = _EXPECTED.get(kind, kind)
    raise ToolError(f"{tool_name}: {name} must be {expected}, got {value!r}")
