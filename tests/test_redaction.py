"""Secrets never reach a model or a file mcode keeps: the index, tool output, `.git/config`,
transcripts and Agent File exports are redacted with the one detector (`mcode.secrets`).

Every key below is made up, and spelled in pieces so that this file is not itself a leak.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from support.cli import run_in_process
from support.llm_server import ScriptedLLMServer
from support.repos import git, make_repo, mcode_env, opened_index

from mcode.agent.session import AgentSession
from mcode.config import Paths, Settings, load_settings
from mcode.context.system_prompt import render_snippet
from mcode.memory.recall import NotesStore
from mcode.memory.sessions import SessionLog
from mcode.survey.instructions import read_project_instructions
from mcode.tools import Permissions, RepoAccess, Request, ToolError, builtin_tools

AWS_ID = "AKIA" + "Z7Q2XK4M9TRW3BNP"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCY3XAMPLEKEY"
GITHUB = "gh" + "p_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
PEM_BODY = ["MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB", "aFDrBz9vFqU4yB=="]
PEM = "\n".join(
    ["-----BEGIN RSA " + "PRIVATE KEY-----", *PEM_BODY, "-----END RSA " + "PRIVATE KEY-----"]
)
SETTINGS = f'''"""Deployment settings."""

AWS_ACCESS_KEY_ID = "{AWS_ID}"
AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"
AWS_REGION = "eu-west-1"


def upload_bucket_name() -> str:
    """The bucket that receives nightly uploads."""
    return "nightly-uploads"
'''
# Files that hold nothing but credentials, by name: never indexed at all.
SECRET_FILES = {
    ".envrc": f"export GITHUB_TOKEN={GITHUB}\n",
    "deploy/prod.env": f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}\n",
    ".pgpass": "db.example.com:5432:app:app:Xy7pq2Lm\n",
    ".vault-token": "hvs.CAESIJ3c2VjcmV0dG9rZW4\n",
    "ops/credentials": f"[default]\naws_secret_access_key = {AWS_SECRET}\n",
    "kubeconfig": "users:\n- name: admin\n  user:\n    token: Zq8vX2mN4pL7rT1wY6sK3d\n",
    "infra/terraform.tfstate": '{"outputs": {"db_password": {"value": "Xy7pq2Lm"}}}\n',
}


# Index time ---------------------------------------------------------------------------------------


@pytest.fixture
def secret_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"app/settings.py": SETTINGS, **SECRET_FILES})


def test_secret_values_never_reach_the_index_and_search_never_returns_them(
    secret_repo: Path, tmp_path: Path
) -> None:
    env = mcode_env(tmp_path / "home", MCODE_EMBEDDING_MODEL="none")
    out = run_in_process(["index", "--json", "--repo", str(secret_repo)], env)
    assert out.returncode == 0, out.stderr
    assert sorted(json.loads(out.stdout)["skipped"]["secret"]["paths"]) == sorted(SECRET_FILES)

    for query in ("AWS_SECRET_ACCESS_KEY", AWS_SECRET, AWS_ID, "nightly uploads bucket"):
        out = run_in_process(["search", query, "--json", "--repo", str(secret_repo)], env)
        assert out.returncode == 0, out.stderr
        for hit in json.loads(out.stdout)["results"]:
            assert hit["path"] == "app/settings.py"
            assert AWS_SECRET not in hit["snippet"] and AWS_ID not in hit["snippet"]

    with opened_index(secret_repo, tmp_path / "home") as indexer:
        rows = [row for batch in indexer.store.scan(with_text=True) for row in batch.to_pylist()]
    stored = json.dumps(rows, default=str)
    assert "settings.py" in stored and "upload_bucket_name" in stored
    assert AWS_SECRET not in stored and AWS_ID not in stored
    module = next(r for r in rows if r["path"] == "app/settings.py" and r["start_line"] == 1)
    assert 'AWS_SECRET_ACCESS_KEY = "[REDACTED:aws-secret]"' in module["text"]
    function = next(r for r in rows if r["symbol"] == "upload_bucket_name")
    assert function["start_line"] == 8  # the file's own line numbers


# Tool output --------------------------------------------------------------------------------------


class Asker:
    """The user, answering "yes" and remembering every question."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> str:
        self.requests.append(request)
        return "yes"


TOOLS = builtin_tools()


def run(ctx: RepoAccess, tool: str, **args: Any) -> str:
    return TOOLS.run(tool, ctx, args)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"app/settings.py": SETTINGS})


@pytest.fixture
def ctx(repo: Path) -> RepoAccess:
    return RepoAccess(repo, Permissions.from_settings("auto"), ask=Asker())


def test_reads_searches_and_commands_show_code_with_its_secret_values_redacted(
    repo: Path, ctx: RepoAccess
) -> None:
    read = run(ctx, "read_file", path="app/settings.py")
    assert '     3→AWS_ACCESS_KEY_ID = "[REDACTED:aws-access-key]"' in read
    assert '     4→AWS_SECRET_ACCESS_KEY = "[REDACTED:aws-secret]"' in read
    assert '     5→AWS_REGION = "eu-west-1"' in read

    found = run(ctx, "grep", pattern="AWS_SECRET")
    assert 'app/settings.py:4:AWS_SECRET_ACCESS_KEY = "[REDACTED:aws-secret]"' in found
    # Matching runs on the redacted text: a pattern cannot probe the key a character at a time.
    assert run(ctx, "grep", pattern=AWS_SECRET[:6]).startswith("No matches")

    shown = run(ctx, "run_shell", command="cat app/settings.py; env | grep -c PATH")
    assert "[REDACTED:aws-secret]" in shown and "def upload_bucket_name" in shown

    (repo / "app/settings.py").write_text(SETTINGS + f'GITHUB_TOKEN = "{GITHUB}"\n')
    diff = run(ctx, "git_diff")
    assert '+GITHUB_TOKEN = "[REDACTED:github-token]"' in diff

    outputs = read + found + shown + diff
    assert AWS_SECRET not in outputs and AWS_ID not in outputs and GITHUB not in outputs


def test_a_page_that_starts_inside_a_private_key_shows_none_of_it(
    repo: Path, ctx: RepoAccess
) -> None:
    body = [("MIIEowIBAAKCAQEA" + str(i) * 48)[:64] for i in range(10)]
    key = ["-----BEGIN RSA " + "PRIVATE KEY-----", *body, "-----END RSA " + "PRIVATE KEY-----"]
    (repo / "docs").mkdir()
    (repo / "docs/deploy.md").write_text("\n".join(["# Deploy", "", "```", *key, "```", ""]))
    page = run(ctx, "read_file", path="docs/deploy.md", offset=8, limit=4)
    assert page.splitlines()[:4] == ["     8→", "     9→", "    10→", "    11→"]
    assert run(ctx, "read_file", path="docs/deploy.md", offset=5, limit=1).startswith(
        "     5→[REDACTED:private-key]"
    )


def test_git_config_credentials_are_redacted_when_read(repo: Path, ctx: RepoAccess) -> None:
    git(repo, "remote", "add", "origin", f"https://deploy:{GITHUB}@github.com/acme/app.git")
    header = "eDphYmNkZWYxMjM0NTY3ODkw"
    git(repo, "config", "http.extraheader", f"AUTHORIZATION: basic {header}")
    for shown in (
        run(ctx, "read_file", path=".git/config"),
        run(ctx, "run_shell", command="git remote -v && git config --list"),
        run(ctx, "grep", pattern="url|extraheader", path=".git/config"),
    ):
        assert GITHUB not in shown and header not in shown
        assert "deploy:[REDACTED:github-token]@github.com/acme/app.git" in shown
        assert "AUTHORIZATION: basic [REDACTED:secret]" in shown


class StaleIndex:
    """A searcher over an index built before redaction: its snippets still hold the key."""

    def search(self, query: str, k: int, level: str) -> list[SimpleNamespace]:
        snippet = SETTINGS.split("\n", 2)[2]
        hit = {"path": "app/settings.py", "start_line": 3, "end_line": 5, "symbol": "", "kind": ""}
        hit["summary"] = ""
        return [SimpleNamespace(**hit, snippet=snippet)]


def test_code_search_snippets_and_retrieved_code_are_redacted_even_from_an_old_index(
    repo: Path,
) -> None:
    ctx = RepoAccess(repo, Permissions.from_settings("auto"), searcher=StaleIndex())
    result = run(ctx, "code_search", query="aws settings")
    assert "[REDACTED:aws-secret]" in result and AWS_SECRET not in result
    rendered = render_snippet(StaleIndex().search("aws", 1, "symbol")[0])
    assert "[REDACTED:aws-secret]" in rendered and AWS_SECRET not in rendered


def test_project_instructions_reach_the_prompt_redacted(repo: Path) -> None:
    (repo / "AGENTS.md").write_text(f"# Agents\n\nDeploy with `GITHUB_TOKEN={GITHUB}`.\n")
    (text,) = [f.text for f in read_project_instructions(repo)]
    assert "GITHUB_TOKEN=[REDACTED:github-token]" in text and GITHUB not in text


def test_an_approved_secret_file_reaches_the_model_whole(repo: Path) -> None:
    (repo / ".env").write_text(f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}\n")
    user = Asker()
    shown = run(
        RepoAccess(repo, Permissions.from_settings("auto"), ask=user), "read_file", path=".env"
    )
    assert [r.kind for r in user.requests] == ["secret"]
    assert f"     1→AWS_SECRET_ACCESS_KEY={AWS_SECRET}" in shown
    assert shown.startswith("[The secret file .env, shared with the user's approval")


def test_an_edit_never_writes_a_marker_over_the_secret_it_stands_for(
    repo: Path, ctx: RepoAccess
) -> None:
    shown = run(ctx, "read_file", path="app/settings.py")
    redacted = "\n".join(line.split("→", 1)[1] for line in shown.splitlines())
    with pytest.raises(ToolError, match=r"adds a \[REDACTED:…\] marker; nothing was written"):
        run(ctx, "create_file", path="app/settings.py", content=redacted, overwrite=True)
    with pytest.raises(ToolError, match=r"marker; nothing was written"):
        run(
            ctx,
            "edit_file",
            path="app/settings.py",
            old_string='AWS_REGION = "eu-west-1"',
            new_string='AWS_REGION = "eu-west-2"\nBACKUP_KEY = "[REDACTED:aws-secret]"',
        )
    assert (repo / "app/settings.py").read_text() == SETTINGS
    run(ctx, "edit_file", path="app/settings.py", old_string="eu-west-1", new_string="eu-west-2")
    assert AWS_SECRET in (repo / "app/settings.py").read_text()  # edits around it keep it


# The agent: the first request, and the transcript -----------------------------------------------


def session_settings(repo: Path, server: ScriptedLLMServer) -> Settings:
    env = {"MCODE_MODEL": "openai/mock-model", "MCODE_API_BASE": server.url}
    env |= {"OPENAI_API_KEY": "sk-test", "MCODE_EMBEDDING_MODEL": "none"}
    return load_settings(Paths.for_repo(repo), env=env)


def test_the_first_request_retrieves_the_code_without_its_keys(
    repo: Path, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    with opened_index(repo, tmp_path / "state") as indexer:  # lexical only, as the session reads
        indexer.update()
    settings = session_settings(repo, llm_server)
    llm_server.reply_text("They are in app/settings.py.")
    with AgentSession.open(settings, permission_mode="auto") as session:
        session.run_turn("Where are AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set?")

    system = llm_server.requests[0]["messages"][0]["content"]
    retrieved = system.split("<retrieved_code>", 1)[1].split("</retrieved_code>", 1)[0]
    assert "app/settings.py" in retrieved and "[REDACTED:aws-secret]" in retrieved
    assert AWS_SECRET not in json.dumps(llm_server.requests[0])
    assert AWS_ID not in json.dumps(llm_server.requests[0])


def test_the_transcript_keeps_no_secret_value_and_no_approved_secret_file(
    repo: Path, llm_server: ScriptedLLMServer
) -> None:
    pgpass = "db.example.com:5432:app:app:Xy7pq2Lm"  # no detector knows this is a password
    (repo / ".pgpass").write_text(pgpass + "\n")
    settings = session_settings(repo, llm_server)
    reads = [("read_file", {"path": ".pgpass"}), ("read_file", {"path": "app/settings.py"})]
    llm_server.reply_tool_calls(reads)
    llm_server.reply_tool_calls(
        [("create_file", {"path": "deploy.sh", "content": f"T={GITHUB}\n"})]
    )
    llm_server.reply_text(f"Done; deploy.sh exports your token {GITHUB}.")
    user = Asker()
    with AgentSession.open(settings, permission_mode="auto", ask=user) as session:
        session.run_turn(f"Check the database settings; my token is {GITHUB}")
        session_id = session.session_id

    assert [r.kind for r in user.requests] == ["secret"]
    results = [m["content"] for m in llm_server.requests[1]["messages"] if m["role"] == "tool"]
    assert pgpass in results[0]  # shared with the model, as the user agreed
    assert "[REDACTED:aws-secret]" in results[1] and AWS_SECRET not in results[1]

    stored = "".join(p.read_text() for p in settings.paths.sessions.glob("*.jsonl"))
    resumed = json.dumps(SessionLog(settings.paths.sessions).resume(session_id)[1])
    for kept in (stored, resumed):
        assert "[The secret file .pgpass, shared with the user's approval" in kept
        assert "Xy7pq2Lm" not in kept and pgpass not in kept
        assert AWS_SECRET not in kept and AWS_ID not in kept and GITHUB not in kept
        assert "[REDACTED:github-token]" in kept and "[REDACTED:aws-secret]" in kept


def test_an_archival_note_is_committed_without_the_secret_it_mentions(tmp_path: Path) -> None:
    memory = tmp_path / ".agentmemory"
    notes = NotesStore(memory / "notes.jsonl", memory / "index" / "recall", None)
    notes.insert(f"CI deploys with GITHUB_TOKEN={GITHUB}; rotate it yearly", ["ci"])
    journal = (memory / "notes.jsonl").read_text()
    assert GITHUB not in journal and "GITHUB_TOKEN=[REDACTED:github-token]; rotate" in journal


# Agent File export --------------------------------------------------------------------------------


def test_an_export_blanks_private_keys_aws_secret_keys_and_passwords(
    repo: Path, tmp_path: Path
) -> None:
    notes = "\n".join(
        [
            "Deploy notes:",
            PEM,
            f"aws_secret_access_key = {AWS_SECRET}",
            "staging:",
            "  password: hunter22-staging",
            "Rotate them monthly.",
        ]
    )
    env = mcode_env(tmp_path / "home")
    saved = run_in_process(["memory", "set", "project", notes, "--repo", str(repo)], env)
    assert saved.returncode == 0, saved.stderr
    out = run_in_process(["export", str(tmp_path / "a.af"), "--repo", str(repo)], env)
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "a.af").read_text()
    assert "Rotate them monthly." in text and "-----BEGIN RSA PRIVATE KEY-----" in text
    assert all(part not in text for part in PEM_BODY)
    assert AWS_SECRET not in text and "hunter22-staging" not in text
