"""The tool framework: a schema derived from a typed function, one argument checker, a registry
that refuses duplicates — and every built-in tool declared to the model exactly as before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, TypedDict

import pytest

from mcode.tools import builtin_tools
from mcode.tools.base import Doc, Range, Tool, ToolError, ToolRegistry, tool

GOLDEN = Path(__file__).parent / "golden" / "tool_schemas.json"


class Scope:
    """An access object for the sample tools: what they may touch."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []


Tag = Annotated[str, Doc("A word to file the note under.")]


class Step(TypedDict):
    action: Annotated[Literal["add", "drop"], Doc("What to do.")]
    weight: NotRequired[Annotated[int, Range(0, 9)]]


@tool("memory", path_arg="path")
def file_note(
    scope: Scope,
    path: str,
    text: str,
    tags: list[Tag] | None = None,
    level: Literal["low", "high"] = "low",
    urgent: bool = False,
    count: Annotated[int, Range(1, 5)] = 1,
    steps: Annotated[list[Step], Range(1)] | None = None,
) -> str:
    """File a note about a file.

    A second paragraph the model reads too.

    Args:
        path: The file the note is about.
        text: What to say, which may run over
            several lines here.
        tags: Words to file it under.
        level: How loud the note is.
        urgent: Whether it is urgent.
        count: How many copies.
        steps: What to do with it.
    """
    scope.seen.append(
        {"path": path, "text": text, "tags": tags, "level": level, "urgent": urgent}
        | {"count": count, "steps": steps}
    )
    return "filed"


def test_the_schema_is_derived_from_the_signature_and_the_docstring() -> None:
    assert file_note.name == "file_note"
    assert (
        file_note.description
        == "File a note about a file.\n\nA second paragraph the model reads too."
    )
    assert (file_note.kind, file_note.parallel, file_note.path_arg) == ("memory", False, "path")
    assert file_note.access is Scope
    assert file_note.parameters == {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "path": {"type": "string", "description": "The file the note is about."},
            "text": {
                "type": "string",
                "description": "What to say, which may run over several lines here.",
            },
            "tags": {
                "type": "array",
                "items": {"type": "string", "description": "A word to file the note under."},
                "description": "Words to file it under.",
            },
            "level": {
                "type": "string",
                "enum": ["low", "high"],
                "description": "How loud the note is.",
            },
            "urgent": {"type": "boolean", "description": "Whether it is urgent."},
            "count": {
                "type": "integer",
                "minimum": 1,
                "maximum": 5,
                "description": "How many copies.",
            },
            "steps": {
                "type": "array",
                "minItems": 1,
                "description": "What to do with it.",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "action": {
                            "type": "string",
                            "enum": ["add", "drop"],
                            "description": "What to do.",
                        },
                        "weight": {"type": "integer", "minimum": 0, "maximum": 9},
                    },
                    "required": ["action"],
                },
            },
        },
        "required": ["path", "text"],
    }
    assert file_note.schema()["function"]["name"] == "file_note"


def test_arguments_arrive_as_json_text_with_the_models_usual_slips_forgiven() -> None:
    scope = Scope()
    arguments = {
        "path": "a.py",
        "text": "hi",
        "tags": "solo",  # a lone string for a list of strings
        "level": None,  # null for unset
        "urgent": "true",
        "count": 3.0,
        "steps": [{"action": "add", "weight": "2"}],
    }
    assert file_note(scope, json.dumps(arguments)) == "filed"
    assert scope.seen == [
        {"path": "a.py", "text": "hi", "tags": ["solo"], "level": "low", "urgent": True}
        | {"count": 3, "steps": [{"action": "add", "weight": 2}]}
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("{not json", "arguments are not valid JSON"),
        ("[1, 2]", "arguments must be a JSON object"),
        ({"path": "a.py"}, "missing required argument 'text'"),
        ({"path": "a.py", "text": "x", "colour": "red"}, "unexpected argument 'colour'"),
        ({"path": "a.py", "text": 5}, "text must be text"),
        ({"path": "a.py", "text": "x", "count": 9}, "count must be between 1 and 5"),
        ({"path": "a.py", "text": "x", "count": "many"}, "count must be a whole number"),
        ({"path": "a.py", "text": "x", "urgent": "maybe"}, "urgent must be true or false"),
        ({"path": "a.py", "text": "x", "level": "loud"}, "level must be one of low, high"),
        ({"path": "a.py", "text": "x", "steps": [{"action": "keep"}]}, r"steps\[0\]: action"),
        ({"path": "a.py", "text": "x", "steps": [{}]}, "missing required argument 'action'"),
        ({"path": "a.py", "text": "x", "tags": [1]}, r"tags\[0\] must be text"),
    ],
)
def test_bad_arguments_are_refused_with_what_to_fix(arguments: Any, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        file_note(Scope(), arguments)


def test_a_list_of_choices_names_them() -> None:
    @tool("search")
    def pick(scope: Scope, roles: list[Literal["user", "tool"]]) -> str:
        """Pick roles.

        Args:
            roles: Which roles.
        """
        return ",".join(roles)

    assert pick(Scope(), {"roles": ["tool"]}) == "tool"
    with pytest.raises(ToolError, match="roles may only contain user, tool"):
        pick(Scope(), {"roles": ["user", "system"]})


def test_an_os_error_in_a_tool_is_told_to_the_model() -> None:
    @tool("edit")
    def save(scope: Scope) -> str:
        """Save everything."""
        raise PermissionError(13, "Permission denied", "locked.txt")

    with pytest.raises(ToolError, match=r"save failed: Permission denied \(locked.txt\)"):
        save(Scope(), {})


def test_a_declaration_the_model_could_not_read_is_refused_at_once() -> None:
    def undocumented(scope: Scope, text: str) -> str:
        """No Args section."""
        return text

    def misdocumented(scope: Scope) -> str:
        """Misdocumented.

        Args:
            text: Not an argument.
        """
        return ""

    def untyped(scope, text: str) -> str:  # type: ignore[no-untyped-def]
        """Untyped access."""
        return text

    def union(scope: Scope, value: int | str) -> str:
        """A union.

        Args:
            value: Either.
        """
        return str(value)

    with pytest.raises(ValueError, match="argument 'text' has no description"):
        tool("read")(undocumented)
    with pytest.raises(ValueError, match="describes text, not an argument"):
        tool("read")(misdocumented)
    with pytest.raises(ValueError, match="first parameter must be annotated"):
        tool("read")(untyped)
    with pytest.raises(TypeError, match="a union of several types"):
        tool("read")(union)
    with pytest.raises(ValueError, match="path_arg 'file' is not an argument"):
        tool("read", path_arg="file")(_plain)
    with pytest.raises(ValueError, match="unknown tool kind 'write'"):
        tool("write")  # type: ignore[arg-type]


def _plain(scope: Scope) -> str:
    """Nothing to declare."""
    return ""


def test_the_registry_refuses_duplicate_names_and_reports_unknown_tools() -> None:
    registry = ToolRegistry([file_note])
    with pytest.raises(ValueError, match="already registered"):
        registry.register(file_note)
    with pytest.raises(ToolError, match="unknown tool 'nope'; available: file_note"):
        registry.run("nope", Scope(), {})
    assert registry.names() == ["file_note"] and len(registry) == 1 and "file_note" in registry
    assert isinstance(registry.get("file_note"), Tool)


def test_every_builtin_tool_is_declared_to_the_model_as_before() -> None:
    """The schemas the model reads, pinned: a change here is a change in what the model sees."""
    declared = {t.name: t.schema() for t in builtin_tools()}
    assert declared == json.loads(GOLDEN.read_text())


def test_every_builtin_tool_states_what_permissions_the_loop_and_the_session_ask_of_it() -> None:
    facts = {t.name: (t.kind, t.parallel, t.path_arg) for t in builtin_tools()}
    assert facts == {
        "read_file": ("read", True, "path"),
        "list_files": ("read", True, None),
        "grep": ("read", True, None),
        "code_search": ("read", True, None),
        "git_status": ("read", True, None),
        "git_diff": ("read", True, None),
        "create_file": ("edit", False, "path"),
        "edit_file": ("edit", False, "path"),
        "multi_edit": ("edit", False, "path"),
        "run_shell": ("shell", False, None),
        "git_commit": ("shell", False, None),
        "memory_replace": ("memory", False, None),
        "memory_insert": ("memory", False, None),
        "memory_rethink": ("memory", False, None),
        "review_rule_add": ("memory", False, None),
        "archival_memory_insert": ("memory", False, None),
        "archival_memory_search": ("search", True, None),
        "conversation_search": ("search", True, None),
    }
