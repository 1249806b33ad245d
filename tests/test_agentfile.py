"""Agent Files: export and import between repositories and machines, Letta's files, secrets, and
the errors a user sees for a file that cannot be imported."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
from support.repos import git
from typer.testing import CliRunner, Result

from mcode.cli import agentfile_cmd, trust_cmd
from mcode.config import Paths, load_settings
from mcode.config.toml_edit import update_toml_file
from mcode.memory import BlockStore
from mcode.memory.agentfile import MAX_FILE_BYTES, TOP_LEVEL, export_agent
from mcode.secrets import blank_secrets

FIXTURE = Path(__file__).parent / "fixtures" / "letta_agent.af"
SECRET = re.compile(
    r"sk-[A-Za-z0-9_-]{16,}|ghp_\w{20,}|gho_\w{20,}|xox[a-z]-[\w-]{10,}|AKIA[A-Z0-9]{16}"
)

app = typer.Typer()
app.command("export")(agentfile_cmd.export_af)
app.command("import")(agentfile_cmd.import_af)
app.command("trust")(trust_cmd.trust)
runner = CliRunner()

CONFIG = """\
# the team's model choice
model = "anthropic/claude-sonnet-4-5"
api_base = "http://127.0.0.1:4000"   # our proxy
weak_model = "openai/gpt-4.1-mini"
fallbacks = [
    "openai/gpt-4.1",
]
embedding_model = "none"
context_window = 200000

[review]
strict = true
"""


def make_repo(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    return root


def cli(*args: str, home: Path | None = None, stdin: str | None = None) -> Result:
    env = {"XDG_CONFIG_HOME": str(home / "config")} if home is not None else None
    return runner.invoke(app, list(args), env=env, input=stdin)


def one_line_error(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcode: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def store_for(repo: Path) -> BlockStore:
    return BlockStore.for_paths(Paths.for_repo(repo))


def config_of(repo: Path) -> dict[str, Any]:
    return tomllib.loads((repo / ".agentmemory" / "config.toml").read_text())


def fixture_doc() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def write_doc(tmp_path: Path, doc: Any, name: str = "agent.af") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


@pytest.fixture
def source_repo(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path, "alpha")
    (repo / ".agentmemory").mkdir()
    (repo / ".agentmemory" / "config.toml").write_text(CONFIG)
    store = store_for(repo)
    store.ensure_defaults()
    store.set_value(
        "lessons",
        "- never commit the staging key sk-stagingABCDEFGHIJKLMNOPQRSTUV\n- run migrations first",
        actor="user",
        reason="test",
    )
    store.set_value("persona", "I am terse and test first.", actor="user", reason="test")
    notes = repo / ".agentmemory" / "blocks" / "notes.md"
    notes.write_text(
        "---\ndescription: Team notes.\nlimit: 900\nowner: dana\n---\nShip on Tuesdays.\n"
    )
    assert cli("trust", "--repo", str(repo)).exit_code == 0  # the user's own repository
    return repo


# Export ------------------------------------------------------------------------------------------


def test_export_writes_the_agent_file_schema_with_cross_referenced_ids(
    source_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    sent = [
        {
            "role": "user",
            "content": "why does the parser fail?",
            "created_at": "2025-01-02T03:04:05Z",
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "grep", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "parser.py:12: raise"},
    ]
    monkeypatch.setattr(agentfile_cmd, "recent_messages", lambda paths, limit: sent[-limit:])
    out = tmp_path / "alpha.af"

    result = cli("export", str(out), "--repo", str(source_repo), "--messages", "2")

    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert list(doc) == list(TOP_LEVEL)
    agent = doc["agents"][0]
    assert agent["id"] == "agent-0" and agent["agent_type"] == "mcode" and agent["name"] == "alpha"
    blocks = {b["id"]: b for b in doc["blocks"]}
    assert sorted(blocks[i]["label"] for i in agent["block_ids"]) == [
        "human",
        "lessons",
        "notes",
        "persona",
        "project",
    ]
    tools = {t["id"]: t for t in doc["tools"]}
    assert {tools[i]["name"] for i in agent["tool_ids"]} >= {
        "memory_replace",
        "conversation_search",
    }
    assert all(t["tool_type"] == "letta_core" and t["source_code"] is None for t in tools.values())
    assert all(t["json_schema"]["name"] == t["name"] for t in tools.values())
    assert agent["llm_config"]["model"] == "claude-sonnet-4-5"
    assert agent["llm_config"]["model_endpoint_type"] == "anthropic"
    assert agent["llm_config"]["context_window"] == 200000
    # Recent messages: the last two, typed content parts, ids listed as in context.
    messages = agent["messages"]
    assert (
        [m["id"] for m in messages] == agent["in_context_message_ids"] == ["message-0", "message-1"]
    )
    assert messages[0]["tool_calls"][0]["function"]["name"] == "grep"
    assert messages[1]["content"] == [{"type": "text", "text": "parser.py:12: raise"}]
    assert messages[1]["tool_call_id"] == "c1"


def test_export_blanks_every_secret(source_repo: Path, tmp_path: Path):
    out = tmp_path / "alpha.af"
    assert cli("export", str(out), "--repo", str(source_repo)).exit_code == 0
    text = out.read_text()
    assert not SECRET.search(text)
    lessons = next(b for b in json.loads(text)["blocks"] if b["label"] == "lessons")
    assert "[REDACTED:" in lessons["value"] and "run migrations first" in lessons["value"]


def test_export_to_stdout(source_repo: Path):
    result = cli("export", "-", "--repo", str(source_repo), "--messages", "0")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["agents"][0]["messages"] == []


def test_export_keeps_only_the_most_recent_messages(source_repo: Path):
    settings = load_settings(Paths.for_repo(source_repo))
    sent = [{"role": "user", "content": f"message {n}"} for n in range(10)]
    doc = export_agent(
        store_for(source_repo), settings, name="alpha", messages=sent, max_messages=3
    )
    texts = [m["content"][0]["text"] for m in doc["agents"][0]["messages"]]
    assert texts == ["message 7", "message 8", "message 9"]


# Round trip --------------------------------------------------------------------------------------


def test_export_then_import_on_another_machine_round_trips_blocks_and_config(
    source_repo: Path, tmp_path: Path
):
    out = tmp_path / "alpha.af"
    assert cli("export", str(out), "--repo", str(source_repo)).exit_code == 0
    target = make_repo(tmp_path, "beta")
    other_machine = tmp_path / "machine-b"

    result = cli("import", str(out), "--repo", str(target), home=other_machine)

    assert result.exit_code == 0, result.output
    config = config_of(target)
    assert config["model"] == "anthropic/claude-sonnet-4-5"
    assert config["api_base"] == "http://127.0.0.1:4000"
    assert config["weak_model"] == "openai/gpt-4.1-mini"
    assert config["fallbacks"] == ["openai/gpt-4.1"]
    assert config["embedding_model"] == "none"
    mine = {b.label: b for b in store_for(source_repo).blocks()}
    user_b = other_machine / "config" / "mcode" / "blocks"
    assert (user_b / "persona.md").exists()  # user blocks land in that machine's user scope
    assert (target / ".agentmemory" / "blocks" / "notes.md").exists()
    theirs = BlockStore.for_paths(
        Paths.for_repo(target, env={"XDG_CONFIG_HOME": str(user_b.parent.parent)})
    )
    got = {b.label: b for b in theirs.blocks()}
    assert set(got) == set(mine)
    for label, block in mine.items():
        expected = block.value if label != "lessons" else None
        if expected is not None:
            assert got[label].value == expected, label
        assert (got[label].limit, got[label].description) == (block.limit, block.description)
        assert got[label].scope == block.scope
    assert got["notes"].content.extra == {"owner": "dana"}
    assert "[REDACTED:openai-key]" in got["lessons"].value
    assert [e.actor for e in theirs.log("notes")] == ["import"]


def test_importing_the_same_file_twice_changes_nothing(source_repo: Path, tmp_path: Path):
    out = tmp_path / "alpha.af"
    assert cli("export", str(out), "--repo", str(source_repo)).exit_code == 0
    target = make_repo(tmp_path, "beta")
    assert cli("import", str(out), "--repo", str(target)).exit_code == 0
    config_before = (target / ".agentmemory" / "config.toml").read_text()

    again = cli("import", str(out), "--repo", str(target), "--json")

    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert {b["status"] for b in data["blocks"]} == {"unchanged"} and data["config"] == {}
    assert (target / ".agentmemory" / "config.toml").read_text() == config_before


# Letta's files -----------------------------------------------------------------------------------


def test_a_letta_agent_file_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    received: list[dict[str, Any]] = []
    monkeypatch.setattr(agentfile_cmd, "message_sink", lambda paths: received.extend)
    repo = make_repo(tmp_path, "gamma")

    result = cli("import", str(FIXTURE), "--repo", str(repo))

    assert result.exit_code == 0, result.output
    store = store_for(repo)
    human = store.get("human")
    assert human.scope == "user" and "Prefers small pull requests" in human.value
    assert "AKIA" not in human.value  # a key inside a block's text is blanked on the way in
    style = store.get("coding_style")  # "Coding Style" made a valid label
    assert (
        style.scope == "project"
        and style.limit == 5000
        and style.content.extra == {"source": "CONTRIBUTING.md"}
    )
    assert store.get("policies").read_only
    config = config_of(repo)
    assert config["model"] == "openai/gpt-4o-mini"
    assert config["embedding_model"] == "openai/text-embedding-3-small"
    assert "api_base" not in config  # the provider's public endpoint is not pinned
    assert "run_tests" in result.stderr  # custom tool code is reported, not imported
    assert "model, embedding_model in .agentmemory/config.toml apply only once you trust" in (
        result.stderr
    )
    # Messages: the system prompt dropped, typed parts flattened, tool calls kept, secrets blanked.
    assert [m["role"] for m in received] == ["user", "assistant", "tool", "assistant", "user"]
    assert received[1]["tool_calls"][0]["function"]["name"] == "run_tests"
    assert received[2]["tool_call_id"] == "call_7QmZk2" and "12 passed" in received[2]["content"]
    assert "xoxb" not in received[4]["content"] and "[REDACTED:" in received[4]["content"]
    assert not SECRET.search(json.dumps(received))


def test_a_letta_file_survives_an_import_export_cycle_without_secrets(tmp_path: Path):
    assert FIXTURE.read_text().count("ghp_") == 2  # the fixture does carry secrets
    repo = make_repo(tmp_path, "gamma")
    assert cli("import", str(FIXTURE), "--repo", str(repo)).exit_code == 0
    (repo / ".agentmemory" / "config.toml").write_text(
        (repo / ".agentmemory" / "config.toml").read_text() + "context_window = 128000\n"
    )
    assert cli("trust", "--repo", str(repo)).exit_code == 0
    out = tmp_path / "again.af"
    assert cli("export", str(out), "--repo", str(repo)).exit_code == 0
    text = out.read_text()
    assert not SECRET.search(text)
    doc = json.loads(text)
    assert doc["agents"][0]["llm_config"]["handle"] == "openai/gpt-4o-mini"
    assert {b["label"] for b in doc["blocks"]} >= {"persona", "human", "coding_style", "policies"}


def test_a_double_encoded_file_imports(tmp_path: Path):
    path = write_doc(tmp_path, json.dumps(FIXTURE.read_text()))
    repo = make_repo(tmp_path, "delta")
    result = cli("import", str(path), "--repo", str(repo))
    assert result.exit_code == 0, result.output
    assert store_for(repo).get("coding_style").value.startswith("- Type hints")


def test_model_and_embedding_flags_override_the_file(tmp_path: Path):
    repo = make_repo(tmp_path, "delta")
    (repo / ".agentmemory").mkdir()
    (repo / ".agentmemory" / "config.toml").write_text('api_base = "http://localhost:11434"\n')
    result = cli(
        "import",
        str(FIXTURE),
        "--repo",
        str(repo),
        "--model",
        "ollama_chat/qwen2.5-coder:14b",
        "--embedding",
        "local",
    )
    assert result.exit_code == 0, result.output
    config = config_of(repo)
    assert config == {
        "api_base": "http://localhost:11434",
        "model": "ollama_chat/qwen2.5-coder:14b",
        "embedding_model": "local",
    }


# Conflicts ---------------------------------------------------------------------------------------


def test_blocks_edited_here_are_not_replaced_without_force(tmp_path: Path):
    repo = make_repo(tmp_path, "eps")
    store = store_for(repo)
    store.ensure_defaults()  # untouched defaults are not anyone's work: replaced freely
    store.set_value("coding_style", "Tabs.", actor="user", reason="mine", scope="project")

    refused = cli("import", str(FIXTURE), "--repo", str(repo))

    one_line_error(refused, 1, "coding_style (project)", "--force")
    assert store.get("coding_style").value == "Tabs."
    assert store.find("policies") is None  # nothing at all was written
    assert not (repo / ".agentmemory" / "config.toml").exists()

    forced = cli("import", str(FIXTURE), "--repo", str(repo), "--force")
    assert forced.exit_code == 0, forced.output
    assert store.get("coding_style").value.startswith("- Type hints")
    assert "I am a careful coding assistant" in store.get("persona").value


def test_a_read_only_block_that_differs_is_refused_even_with_force(tmp_path: Path):
    repo = make_repo(tmp_path, "eps")
    path = repo / ".agentmemory" / "blocks" / "policies.md"
    path.parent.mkdir(parents=True)
    path.write_text("---\nread_only: true\n---\nPush to main freely.\n")
    result = cli("import", str(FIXTURE), "--repo", str(repo), "--force")
    one_line_error(result, 1, "read-only", "policies")
    assert path.read_text().endswith("Push to main freely.\n")


def test_a_broken_config_stops_the_import_before_any_block_is_written(tmp_path: Path):
    repo = make_repo(tmp_path, "eps")
    (repo / ".agentmemory").mkdir()
    (repo / ".agentmemory" / "config.toml").write_text("model = [unclosed\n")
    result = cli("import", str(FIXTURE), "--repo", str(repo))
    one_line_error(result, 2, "config.toml", "invalid TOML")
    assert not (repo / ".agentmemory" / "blocks").exists()


# Bad files ---------------------------------------------------------------------------------------


def _broken(change) -> dict[str, Any]:
    doc = fixture_doc()
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ("{not json", "is not JSON"),
        ('"still not json"', "is not JSON"),
        ({"agents": []}, "holds no agents"),
        ([1, 2], "expected a JSON object"),
        (
            _broken(lambda d: d["blocks"][2].update(value="x" * 5001)),
            "holds 5001 characters, over its limit of 5000",
        ),
        (
            _broken(lambda d: d["agents"][0]["block_ids"].append("block-9")),
            "unknown block 'block-9'",
        ),
        (_broken(lambda d: d["agents"][0]["tool_ids"].append("tool-7")), "unknown tool 'tool-7'"),
        (
            _broken(lambda d: d["agents"][0]["in_context_message_ids"].append("message-42")),
            "unknown message 'message-42'",
        ),
    ],
)
def test_a_file_that_cannot_be_imported_is_a_one_line_usage_error(
    tmp_path: Path, doc: Any, fragment: str
):
    path = write_doc(tmp_path, doc)
    repo = make_repo(tmp_path, "zeta")
    result = cli("import", str(path), "--repo", str(repo))
    one_line_error(result, 2, fragment)
    assert not (repo / ".agentmemory").exists()


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"inner": [value]}
    return value


def _message(change) -> dict[str, Any]:
    return _broken(lambda d: change(d["agents"][0]["messages"][2]))


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested more than 64 levels deep"),
        (
            json.dumps(_broken(lambda d: d["blocks"][0].update(metadata=_nested(40)))).encode(),
            "nested more than 64 levels deep",
        ),
        (b"\xff\xfe{\x00}\x00", "is not UTF-8 text"),
        (json.dumps(json.dumps(json.dumps(fixture_doc()))).encode(), "expected a JSON object"),
        (b'{"agents": [{"name": "\\ud800"}]}', "not valid Unicode"),
        (b'{"agents": [{"name": ' + b"9" * 5000 + b"}]}", "a number of 5000 digits"),
        (json.dumps(_message(lambda m: m.update(id=["message-2"]))).encode(), "].id is not text"),
        (json.dumps(_message(lambda m: m.update(role=7))).encode(), "].role is not text"),
        (json.dumps(_message(lambda m: m.update(content=3))).encode(), "].content is not text"),
        (
            json.dumps(_message(lambda m: m.update(tool_calls="run_tests"))).encode(),
            "].tool_calls is not a list",
        ),
        (
            json.dumps(_message(lambda m: m.update(tool_calls=[{"id": "call-1"}]))).encode(),
            "names no function",
        ),
        (
            json.dumps(_broken(lambda d: d["blocks"][0].update(read_only="false"))).encode(),
            "read_only that is not true or false",
        ),
        (
            json.dumps(_broken(lambda d: d["blocks"].append(dict(d["blocks"][0])))).encode(),
            "more than one block has the id 'block-0'",
        ),
        (
            json.dumps(_broken(lambda d: d["agents"][0]["block_ids"].append("agent-0"))).encode(),
            "unknown block 'agent-0'",
        ),
        (
            json.dumps(
                _broken(lambda d: d["agents"][0]["block_ids"].append("b" * 100_000))
            ).encode(),
            "unknown block 'bbbb",
        ),
    ],
    ids=[
        "deeply-nested",
        "nested-in-metadata",
        "not-utf8",
        "json-in-json-in-json",
        "lone-surrogate",
        "endless-number",
        "message-id-type",
        "message-role-type",
        "message-content-type",
        "tool-calls-type",
        "tool-call-shape",
        "read-only-type",
        "duplicate-id",
        "cyclic-id",
        "dangling-huge-id",
    ],
)
def test_a_malformed_file_ends_with_one_short_line_and_exit_2(
    tmp_path: Path, raw: bytes, fragment: str
):
    path = tmp_path / "agent.af"
    path.write_bytes(raw)
    repo = make_repo(tmp_path, "zeta")
    result = cli("import", str(path), "--repo", str(repo))
    one_line_error(result, 2, fragment)
    assert len(result.stderr) < 400
    assert not (repo / ".agentmemory").exists()


def test_an_absurdly_large_file_is_refused_without_reading_it_all(tmp_path: Path):
    path = tmp_path / "huge.af"
    with path.open("wb") as fh:
        fh.write(b'{"agents": [], "pad": "')
        fh.truncate(MAX_FILE_BYTES * 4)  # sparse: costs no disk
    repo = make_repo(tmp_path, "zeta")
    one_line_error(cli("import", str(path), "--repo", str(repo)), 2, "larger than 32 MiB")
    assert not (repo / ".agentmemory").exists()


def test_a_message_with_an_empty_role_is_the_user_s(tmp_path: Path):
    path = write_doc(tmp_path, _message(lambda m: m.update(role="")))
    repo = make_repo(tmp_path, "zeta")
    result = cli("import", str(path), "--repo", str(repo), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["messages"] == 5


def test_messages_in_roles_a_session_does_not_keep_are_left_out_with_a_note(tmp_path: Path):
    path = write_doc(tmp_path, _message(lambda m: m.update(role="approval")))
    repo = make_repo(tmp_path, "zeta")
    result = cli("import", str(path), "--repo", str(repo), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["messages"] == 4  # user, tool, assistant, user: the system prompt is mcode's own
    assert "'approval' messages not imported (1)" in " ".join(report["notes"])


def test_a_missing_file_is_a_usage_error(tmp_path: Path):
    repo = make_repo(tmp_path, "zeta")
    one_line_error(cli("import", str(tmp_path / "nope.af"), "--repo", str(repo)), 2, "no such file")


# Pieces ------------------------------------------------------------------------------------------


def test_blank_secrets_by_key_name_and_by_shape():
    data = {
        "llm_config": {"api_key": "abc", "max_tokens": 4096, "model": "gpt-4o"},
        "headers": {"Authorization": "Bearer abcdefghijklmnopqrstuvwxyz"},
        "env": [{"key": "OPENAI_API_KEY", "value": "plain"}, {"key": "CI", "value": "true"}],
        "apiKey": "x",
        "note": "use ghp_abcdefghijklmnopqrstuvwxyz0123 here",
        "endpoint": "https://user:hunter2@example.com/v1",
        "whole": "AKIAIOSFODNN7EXAMPLE",
    }
    out = blank_secrets(data)
    assert out["llm_config"] == {"api_key": "", "max_tokens": 4096, "model": "gpt-4o"}
    assert out["headers"]["Authorization"] == ""
    assert out["env"] == [{"key": "OPENAI_API_KEY", "value": ""}, {"key": "CI", "value": "true"}]
    assert out["apiKey"] == ""
    assert out["note"] == "use [REDACTED:github-token] here"
    assert "hunter2" not in out["endpoint"] and "example.com" in out["endpoint"]
    assert out["whole"] == ""


def test_config_keys_are_replaced_in_place_and_the_rest_of_the_file_is_kept(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    changed = update_toml_file(
        path,
        {
            "model": "openai/gpt-4.1",
            "fallbacks": ["a/b", "c/d"],
            "api_base": None,
            "weak_model": "openai/gpt-4.1-mini",
            "max_file_bytes": 5,
        },
    )
    assert changed == {
        "model": "openai/gpt-4.1",
        "fallbacks": ["a/b", "c/d"],
        "api_base": None,
        "max_file_bytes": 5,
    }
    text = path.read_text()
    assert text.startswith("# the team's model choice\n")
    data = tomllib.loads(text)
    assert data["model"] == "openai/gpt-4.1" and data["fallbacks"] == ["a/b", "c/d"]
    assert "api_base" not in data and data["max_file_bytes"] == 5
    assert data["review"] == {"strict": True} and "max_file_bytes" not in data["review"]


def test_sessions_travel_through_export_and_import(tmp_path: Path):
    from mcode.memory.sessions import SessionLog

    home = tmp_path / "home"
    source = make_repo(tmp_path, "source")
    log = SessionLog(Paths.for_repo(source).sessions)
    session = log.new_session(model="openai/gpt-4o-mini")
    log.append(session.id, {"role": "user", "content": "rename the cart module"})
    log.append(
        session.id, {"role": "assistant", "content": "Renamed shop/cart.py to shop/basket.py."}
    )
    exported = tmp_path / "out.af"
    assert cli("export", str(exported), "--repo", str(source), home=home).exit_code == 0
    agent = json.loads(exported.read_text())["agents"][0]
    assert [m["content"][0]["text"] for m in agent["messages"]] == [
        "rename the cart module",
        "Renamed shop/cart.py to shop/basket.py.",
    ]

    target = make_repo(tmp_path, "target")
    result = cli("import", str(exported), "--repo", str(target), home=home)
    assert result.exit_code == 0, result.output
    imported = SessionLog(Paths.for_repo(target).sessions)
    (info,) = imported.sessions()
    assert [m.content for m in imported.load(info.id)] == [
        "rename the cart module",
        "Renamed shop/cart.py to shop/basket.py.",
    ]
