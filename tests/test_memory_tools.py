"""The agent's memory tools: Letta's semantics, refusals that leave blocks intact, schemas, the
registry, and the archival and recall tools against small in-memory fakes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mcode.memory import BlockStore, Scope
from mcode.tools import MemoryAccess, ToolError, ToolRegistry, builtin_tools, tool

MEMORY_TOOLS = [t for t in builtin_tools() if t.access is MemoryAccess]
TOOLS = ToolRegistry(MEMORY_TOOLS)


class FakeArchival:
    def __init__(self) -> None:
        self.passages: list[dict[str, Any]] = []

    def insert(self, content: str, tags: list[str]) -> str:
        passage_id = f"passage-{len(self.passages)}"
        self.passages.append({"id": passage_id, "content": content, "tags": tags})
        return passage_id

    def search(self, query: str, tags: list[str] | None, k: int) -> list[dict[str, Any]]:
        hits = [
            p
            for p in self.passages
            if query.lower() in p["content"].lower() and (not tags or set(tags) & set(p["tags"]))
        ]
        return hits[:k]


class FakeRecall:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.messages = [
            {"role": "user", "content": "please use poetry", "created_at": "2025-05-01T09:00:00Z"},
            {"role": "assistant", "content": "switched to poetry", "created_at": "2025-05-01"},
        ]

    def search(self, query, roles, limit, start_date, end_date):  # type: ignore[no-untyped-def]
        self.calls.append(
            {"query": query, "roles": roles, "limit": limit, "start": start_date, "end": end_date}
        )
        hits = [m for m in self.messages if query in m["content"]]
        return [m for m in hits if not roles or m["role"] in roles][:limit]


@pytest.fixture
def store(tmp_path: Path) -> BlockStore:
    store = BlockStore(
        Scope.under("project", tmp_path / "repo" / ".agentmemory"),
        Scope.under("user", tmp_path / "config"),
    )
    store.set_value(
        "project", "Build: make\nTest: make test\nLint: ruff", actor="user", reason="setup"
    )
    return store


@pytest.fixture
def context(store: BlockStore) -> MemoryAccess:
    return MemoryAccess(blocks=store, archival=FakeArchival(), recall=FakeRecall())


def call(context: MemoryAccess, name: str, **arguments: Any) -> str:
    return TOOLS.run(name, context, arguments)


def block_file(store: BlockStore, label: str) -> Path:
    return store.project.block_path(label)


# memory_replace -----------------------------------------------------------------------------------


def test_replace_changes_the_one_occurrence_and_records_the_agent(
    store: BlockStore, context: MemoryAccess
):
    result = call(
        context, "memory_replace", label="project", old="make test", new="pytest", reason="moved"
    )
    assert "project" in result and "/5000 chars" in result
    assert store.get("project").value == "Build: make\nTest: pytest\nLint: ruff"
    entry = store.log("project")[-1]
    assert (entry.actor, entry.op, entry.reason) == ("agent", "replace", "moved")


def test_replace_with_empty_new_deletes_the_passage(store: BlockStore, context: MemoryAccess):
    call(context, "memory_replace", label="project", old="\nLint: ruff", new="")
    assert store.get("project").value == "Build: make\nTest: make test"


@pytest.mark.parametrize(
    ("old", "message"),
    [
        ("Deploy: never", "not found"),
        ("make", "occurs 2 times"),
        ("2→Test: make test", "line-number prefixes"),
        ("Line 2: Test: make test", "line-number prefixes"),
        ("", "must not be empty"),
    ],
)
def test_replace_refusals_leave_the_block_unchanged(
    store: BlockStore, context: MemoryAccess, old: str, message: str
):
    before = block_file(store, "project").read_bytes()
    with pytest.raises(ToolError, match=message):
        call(context, "memory_replace", label="project", old=old, new="x")
    assert block_file(store, "project").read_bytes() == before
    assert len(store.log("project")) == 1


def test_replace_ambiguity_names_the_lines(context: MemoryAccess):
    with pytest.raises(ToolError, match=r"lines 1, 2"):
        call(context, "memory_replace", label="project", old="make", new="x")


def test_replace_in_a_missing_block_names_the_existing_ones(context: MemoryAccess):
    with pytest.raises(ToolError, match=r"no memory block 'nope'.*project"):
        call(context, "memory_replace", label="nope", old="a", new="b")


# memory_insert ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (-1, "Build: make\nTest: make test\nLint: ruff\nNEW"),
        (0, "NEW\nBuild: make\nTest: make test\nLint: ruff"),
        (1, "Build: make\nNEW\nTest: make test\nLint: ruff"),
        (3, "Build: make\nTest: make test\nLint: ruff\nNEW"),
    ],
)
def test_insert_at_a_line(store: BlockStore, context: MemoryAccess, line: int, expected: str):
    call(context, "memory_insert", label="project", text="NEW", line=line)
    assert store.get("project").value == expected


def test_insert_defaults_to_the_end_and_into_an_empty_block(
    store: BlockStore, context: MemoryAccess
):
    store.set_value("lessons", "", actor="init", reason="setup")
    call(context, "memory_insert", label="lessons", text="- never skip the tests")
    call(context, "memory_insert", label="lessons", text="- read the lessons first")
    assert store.get("lessons").value == "- never skip the tests\n- read the lessons first"


def test_insert_out_of_range_is_refused(store: BlockStore, context: MemoryAccess):
    before = block_file(store, "project").read_bytes()
    with pytest.raises(ToolError, match=r"out of range.*0 to 3"):
        call(context, "memory_insert", label="project", text="x", line=7)
    with pytest.raises(ToolError, match="line-number prefixes"):
        call(context, "memory_insert", label="project", text="4→ x")
    assert block_file(store, "project").read_bytes() == before


# memory_rethink -----------------------------------------------------------------------------------


def test_rethink_rewrites_the_whole_block(store: BlockStore, context: MemoryAccess):
    result = call(context, "memory_rethink", label="project", new_value="Build and test: tox")
    assert result.startswith("Rewrote memory block `project`")
    assert store.get("project").value == "Build and test: tox"


def test_rethink_creates_a_new_block_with_its_description(store: BlockStore, context: MemoryAccess):
    result = call(
        context,
        "memory_rethink",
        label="api_notes",
        new_value="The REST API is versioned under /v2.",
        description="Facts about the public API",
    )
    assert result.startswith("Created memory block `api_notes`")
    block = store.get("api_notes")
    assert (block.scope, block.description) == ("project", "Facts about the public API")


def test_writes_past_the_limit_are_refused_with_the_sizes(store: BlockStore, context: MemoryAccess):
    store.set_value("tiny", "12345", actor="user", reason="setup", limit=10)
    before = block_file(store, "tiny").read_bytes()
    with pytest.raises(ToolError, match="would be 16 chars, limit is 10"):
        call(context, "memory_rethink", label="tiny", new_value="x" * 16)
    with pytest.raises(ToolError, match="would be 12 chars, limit is 10"):
        call(context, "memory_insert", label="tiny", text="123456")
    with pytest.raises(ToolError, match="would be 11 chars, limit is 10"):
        call(context, "memory_replace", label="tiny", old="5", new="5678901")
    assert block_file(store, "tiny").read_bytes() == before


def test_read_only_blocks_refuse_every_memory_tool(store: BlockStore, context: MemoryAccess):
    path = block_file(store, "policy")
    path.write_text("---\nread_only: true\n---\nNever push to main.\n")
    before = path.read_bytes()
    for name, args in [
        ("memory_replace", {"old": "main", "new": "prod"}),
        ("memory_insert", {"text": "Except on Fridays."}),
        ("memory_rethink", {"new_value": "Anything goes."}),
    ]:
        with pytest.raises(ToolError, match="read-only"):
            call(context, name, label="policy", **args)
    assert path.read_bytes() == before


def test_a_block_deleted_by_hand_is_reported_missing_to_the_model(
    store: BlockStore, context: MemoryAccess
):
    block_file(store, "project").unlink()
    with pytest.raises(ToolError, match="no memory block 'project'"):
        call(context, "memory_insert", label="project", text="x")


def test_a_corrupt_block_is_reported_and_not_overwritten(store: BlockStore, context: MemoryAccess):
    path = block_file(store, "project")
    path.write_text("---\nlimit: [\n---\nbody\n")
    with pytest.raises(ToolError, match=r"project\.md: invalid YAML"):
        call(context, "memory_rethink", label="project", new_value="fresh start")
    assert path.read_text() == "---\nlimit: [\n---\nbody\n"


# Arguments, schemas and the registry --------------------------------------------------------------


def test_arguments_may_come_as_the_models_json_string(store: BlockStore, context: MemoryAccess):
    arguments = json.dumps(
        {"label": "project", "text": "Docs: mkdocs", "line": 1.0, "reason": None}
    )
    TOOLS.run("memory_insert", context, arguments)
    assert store.get("project").value.split("\n")[1] == "Docs: mkdocs"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"label": "project"}, "missing required argument 'text'"),
        ({"label": "project", "text": "x", "position": 2}, "unexpected argument 'position'"),
        ({"label": "project", "text": "x", "line": "two"}, "line must be a whole number"),
        ({"label": "project", "text": "x", "line": -5}, "between -1"),
        ({"label": "project", "text": 5}, "text must be text"),
        ("{not json", "not valid JSON"),
        ({"label": "Bad Label", "text": "x"}, "invalid memory block label"),
    ],
)
def test_bad_arguments_are_explained(context: MemoryAccess, arguments: Any, message: str):
    with pytest.raises(ToolError, match=message):
        TOOLS.run("memory_insert", context, arguments)


def test_every_tool_has_an_openai_schema_and_a_description():
    assert TOOLS.names() == [
        "memory_replace",
        "memory_insert",
        "memory_rethink",
        "review_rule_add",
        "archival_memory_insert",
        "archival_memory_search",
        "conversation_search",
    ]
    for schema in TOOLS.schemas():
        assert schema["type"] == "function"
        function = schema["function"]
        assert len(function["description"]) > 40
        parameters = function["parameters"]
        assert parameters["type"] == "object"
        assert set(parameters["required"]) <= set(parameters["properties"])
        for spec in parameters["properties"].values():
            assert spec["type"] in {"string", "integer", "array"} and spec["description"]
        json.dumps(schema)  # serialisable as sent to the model
    replace = next(t for t in TOOLS if t.name == "memory_replace")
    assert replace.parameters["required"] == ["label", "old", "new"]


def test_registry_refuses_duplicate_names_and_reports_unknown_tools(context: MemoryAccess):
    registry = ToolRegistry(MEMORY_TOOLS)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(MEMORY_TOOLS[0])

    @tool("memory")
    def echo(memory: MemoryAccess) -> str:
        """Echo the text back."""
        return "ok"

    registry.register(echo)
    assert "echo" in registry and len(registry) == len(MEMORY_TOOLS) + 1
    with pytest.raises(ToolError, match="unknown tool 'nope'"):
        registry.run("nope", context, {})
    assert "echo" not in builtin_tools()  # each call gives a fresh registry


# Archival and recall ------------------------------------------------------------------------------


def test_archival_insert_and_search(context: MemoryAccess):
    result = call(
        context,
        "archival_memory_insert",
        content="  The cache is invalidated on deploy.  ",
        tags=["ops", " ops", ""],
    )
    assert result == "Stored in archival memory (id passage-0)."
    assert context.archival.passages[0]["tags"] == ["ops"]  # type: ignore[union-attr]
    call(context, "archival_memory_insert", content="Cache keys are per tenant.", tags="design")

    found = call(context, "archival_memory_search", query="cache", tags=["ops"])
    assert found.startswith("Showing 1 results")
    assert "invalidated on deploy" in found and "per tenant" not in found
    assert call(context, "archival_memory_search", query="kubernetes") == "No results found."
    assert "Showing 2 results" in call(context, "archival_memory_search", query="cache", k=5)


def test_archival_refusals(store: BlockStore, context: MemoryAccess):
    with pytest.raises(ToolError, match="must not be empty"):
        call(context, "archival_memory_insert", content="   ")
    with pytest.raises(ToolError, match="between 1 and 50"):
        call(context, "archival_memory_search", query="x", k=0)
    without = MemoryAccess(blocks=store)
    with pytest.raises(ToolError, match="archival memory is not available"):
        call(without, "archival_memory_search", query="x")
    with pytest.raises(ToolError, match="conversation history is not available"):
        call(without, "conversation_search", query="x")


def test_conversation_search_passes_roles_limit_and_whole_day_dates(context: MemoryAccess):
    result = call(
        context,
        "conversation_search",
        query="poetry",
        roles=["user"],
        limit=3,
        start_date="2025-05-01",
        end_date="2025-05-01",
    )
    assert "Showing 1 results" in result and "please use poetry" in result
    recall_call = context.recall.calls[-1]  # type: ignore[union-attr]
    assert recall_call["roles"] == ["user"] and recall_call["limit"] == 3
    assert recall_call["start"] == datetime(2025, 5, 1, tzinfo=UTC)
    assert recall_call["end"] == datetime(2025, 5, 1, 23, 59, 59, 999_999, tzinfo=UTC)

    call(context, "conversation_search", query="poetry", start_date="2025-05-01T10:00+02:00")
    assert context.recall.calls[-1]["start"].utcoffset().total_seconds() == 7200  # type: ignore[union-attr]
    assert context.recall.calls[-1]["limit"] == 5  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"start_date": "last tuesday"}, "not a date"),
        ({"start_date": "2025-06-02", "end_date": "2025-06-01"}, "after end_date"),
        ({"roles": ["user", "system"]}, "may only contain user, assistant, tool"),
        ({"limit": 500}, "between 1 and 50"),
    ],
)
def test_conversation_search_refusals(context: MemoryAccess, arguments: dict, message: str):
    with pytest.raises(ToolError, match=message):
        call(context, "conversation_search", query="poetry", **arguments)
