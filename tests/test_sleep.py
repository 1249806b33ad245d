"""The sleep-time pass: module summaries that follow the index, within a budget, resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from support.cli import run_in_process
from support.llm_server import ScriptedLLMServer
from support.polling import poll
from support.repos import git, make_repo, mcode_env, opened_index, write_files

from mcode.config import ConfigError, Paths, Settings, load_settings
from mcode.fsio import read_json_lines
from mcode.memory import BlockStore
from mcode.memory.sessions import SessionLog
from mcode.sleep import PassOptions, run_pass, sleep_status
from mcode.sleep.trigger import QuietTrigger
from mcode.store.summaries import SummaryStore

MODEL = "openai/mock-model"
STORE = '''"""Keeps the shop's stock: what is on the shelves and what was sold."""


class Stock:
    """Counts per item; a count never goes below zero."""

    def take(self, item: str) -> int:
        """Remove one of `item`; refuses when none is left."""
        return 0


def restock(stock: Stock, item: str) -> None:
    """Put one `item` back on the shelf."""
'''
TILL = '''"""The till: sells items out of the stock."""

from shop.store import Stock, restock


def sell(stock: Stock, item: str) -> None:
    stock.take(item)
    restock(stock, item)
'''
FILES = {"shop/store.py": STORE, "shop/till.py": TILL, "README.md": "# Shop\n\nA tiny shop.\n"}


class Repo:
    def __init__(self, root: Path, state: Path) -> None:
        self.root = root
        self.state = state
        paths = Paths(repo=root, user_config=state / "config", cache=state / "cache")
        self.settings = Settings(paths=paths, embedding_model="none")

    def index(self) -> None:
        with opened_index(self.root, self.state) as indexer:
            indexer.update()

    def write(self, files: dict[str, str]) -> None:
        write_files(self.root, files)
        self.index()

    def sleep(self, settings: Settings | None = None, **options: object) -> dict:
        report = run_pass(settings or self.settings, PassOptions(**options))  # type: ignore[arg-type]
        return report.as_json()

    def summary(self, path: str, level: str = "file"):
        return SummaryStore(self.settings.paths.summaries).get(level, path)

    def with_model(self, server: ScriptedLLMServer, **caps: int) -> Settings:
        return replace(
            self.settings,
            sleep_model=MODEL,
            api_base=server.url,
            api_keys={"OPENAI_API_KEY": "sk-test"},
            **caps,
        )


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    made = Repo(make_repo(tmp_path / "shop", FILES), tmp_path / "state")
    made.index()
    return made


def test_structural_summaries_of_files_and_directories(repo: Repo) -> None:
    report = repo.sleep()
    assert sorted(f["path"] for f in report["files"]) == sorted(FILES)
    assert report["tokens"] == 0 and report["generators"] == {"structural": 3}

    store = repo.summary("shop/store.py")
    assert store is not None
    first, *rest = store.text.splitlines()
    assert (
        first == "shop/store.py — Keeps the shop's stock: what is on the shelves and what was sold."
    )
    assert "- class Stock: Counts per item; a count never goes below zero. [take]" in rest
    assert "- function restock: Put one `item` back on the shelf." in rest
    assert "Used by: shop/till.py" in rest
    till = repo.summary("shop/till.py")
    assert "Depends on: shop/store.py" in till.text
    assert "Imports: shop.store" in till.text

    shop = repo.summary("shop", "dir")
    assert shop.text.splitlines()[:3] == [
        "shop/ — 2 files, 0 directories",
        "Files:",
        "- store.py: Keeps the shop's stock: what is on the shelves and what was sold.",
    ]
    root = repo.summary(".", "dir")
    assert "- shop/: 2 files, 0 directories" in root.text
    assert "- README.md: Shop" in root.text


def test_a_comment_only_edit_resummarises_nothing_and_a_real_one_resummarises_up_the_tree(
    repo: Repo,
) -> None:
    repo.sleep()
    before = repo.summary("shop/store.py")
    repo.write({"shop/store.py": STORE.replace("return 0", "return 0  # for now\n\n\n")})
    report = repo.sleep()
    assert report["files"] == [] and report["dirs"] == 0 and report["touched"] == 1
    assert repo.summary("shop/store.py").time == before.time

    repo.write(
        {"shop/store.py": STORE + "\n\ndef audit(stock: Stock) -> list[str]:\n    return []\n"}
    )
    report = repo.sleep()
    assert [(f["path"], f["reason"]) for f in report["files"]] == [("shop/store.py", "changed")]
    assert report["dirs"] == 2  # shop/ and the repository's own
    assert "def audit(stock: Stock) -> list[str]" in repo.summary("shop/store.py").text
    assert repo.sleep()["files"] == []


def test_renames_and_deletes_take_their_summaries_along(repo: Repo) -> None:
    repo.sleep()
    git(repo.root, "mv", "shop/till.py", "shop/register.py")
    (repo.root / "README.md").unlink()
    repo.index()
    report = repo.sleep()
    assert [f["path"] for f in report["files"]] == ["shop/register.py"]
    assert report["deleted"] == 2
    assert repo.summary("shop/till.py") is None and repo.summary("README.md") is None
    assert (
        "- register.py: The till: sells items out of the stock." in repo.summary("shop", "dir").text
    )

    (repo.root / "shop" / "register.py").unlink()
    (repo.root / "shop" / "store.py").unlink()
    repo.write({"main.py": "print('hi')\n"})
    repo.sleep()
    assert repo.summary("shop", "dir") is None
    assert "shop/" not in repo.summary(".", "dir").text


def test_a_model_summary_supersedes_the_structural_one_within_the_pass_cap(
    repo: Repo, llm_server: ScriptedLLMServer
) -> None:
    repo.sleep()
    for name in ("one", "two", "three"):
        llm_server.reply_text(f"summary {name}\n- it works", usage=(300, 50))
    # Each request is estimated at well over 400 tokens: two fit a cap of 1,300, not three.
    settings = repo.with_model(llm_server, sleep_pass_tokens=1_300)
    report = repo.sleep(settings)
    assert len(llm_server.requests) == 2
    assert report["tokens"] == 700 and report["generators"] == {f"model:{MODEL}": 2}
    assert "pass token budget is spent" in report["note"]
    models = [p for p in FILES if repo.summary(p).generator == f"model:{MODEL}"]
    assert len(models) == 2
    assert repo.summary(models[0]).text.startswith(f"{models[0]} — summary")
    request = llm_server.requests[0]["messages"]
    assert "Facts the index already knows" in request[1]["content"]

    logged = [e for e in read_json_lines(repo.settings.paths.sleep_log) if e["event"] == "summary"]
    assert sorted(e["path"] for e in logged) == sorted(models)
    assert sum(e["tokens"] for e in logged) == 700

    # Without the model, the pass leaves model summaries of unchanged files alone.
    assert repo.sleep()["files"] == []
    assert repo.summary(models[0]).generator == f"model:{MODEL}"


def test_a_model_summary_outlives_its_file_leaving_the_index_but_not_the_disk(
    repo: Repo, llm_server: ScriptedLLMServer
) -> None:
    repo.sleep()
    llm_server.reply_text("what the till does")
    repo.sleep(repo.with_model(llm_server, sleep_pass_tokens=1_000), paths=("shop/till.py",))
    assert repo.summary("shop/till.py").generator == f"model:{MODEL}"
    repo.write({".mcodeignore": "shop/\n"})  # as an index being rebuilt would lack them too
    report = repo.sleep()
    assert report["deleted"] >= 1
    assert repo.summary("shop/store.py") is None  # structural: free to make again
    assert repo.summary("shop/till.py").text.endswith("what the till does")
    (repo.root / "shop" / "till.py").unlink()
    repo.sleep()
    assert repo.summary("shop/till.py") is None


def test_the_daily_budget_counts_what_earlier_passes_spent(
    repo: Repo, llm_server: ScriptedLLMServer
) -> None:
    repo.sleep()
    llm_server.reply_text("first", usage=(900, 100))
    settings = repo.with_model(llm_server, sleep_budget_tokens_per_day=1_500)
    repo.sleep(settings)
    assert (
        len(llm_server.requests) == 1
    )  # 1,000 spent: no estimate (at least the 400 of a reply, and the instructions) fits in 500 more
    repo.sleep(settings)
    assert len(llm_server.requests) == 1
    status = sleep_status(settings)
    assert status["spent_today"] == 1_000 and status["model_queue"] == 2


def test_a_failing_model_leaves_structural_summaries_and_is_asked_once(
    repo: Repo, llm_server: ScriptedLLMServer
) -> None:
    llm_server.reply_error(401, "bad key")
    report = repo.sleep(repo.with_model(llm_server))
    assert len(llm_server.requests) == 1
    assert report["generators"] == {"structural": 3}
    assert "the model failed" in report["note"]


def test_status_names_the_queue_and_the_oldest_change(repo: Repo) -> None:
    repo.sleep()
    assert sleep_status(repo.settings)["queue"] == 0
    repo.write({"shop/till.py": TILL + "\n\ndef refund():\n    pass\n"})
    os.utime(repo.root / "shop" / "till.py", (1_700_000_000, 1_700_000_000))
    repo.write({"shop/store.py": STORE + "\n\ndef count():\n    pass\n"})
    status = sleep_status(repo.settings)
    assert status["queued"] == ["shop/store.py", "shop/till.py"]
    assert status["oldest_dirty"] == {"path": "shop/till.py", "changed": "2023-11-14T22:13:20Z"}
    assert status["last_pass"]["files"] == 3


def test_status_flags_memory_lines_naming_what_the_code_no_longer_has(repo: Repo) -> None:
    block = repo.root / ".agentmemory" / "blocks" / "project.md"
    block.parent.mkdir(parents=True, exist_ok=True)
    written = (
        "---\ndescription: conventions\nlimit: 4000\n---\n"
        "- Stock counts live in `Stock.take()` (shop/store.py).\n"
        "- Sales go through `sell` in till.py; see https://example.com/docs/guide.py\n"
        "- Use `os.path` rarely and return `None` on failure.\n"
    )
    block.write_text(written)
    uses_os_path = "import os\n\ndef sell(stock):\n    return os.path.sep\n"
    repo.write({"shop/till.py": TILL + "\n" + uses_os_path})
    assert sleep_status(repo.settings)["stale_memory"] == []

    (repo.root / "shop" / "store.py").unlink()
    repo.write({"shop/till.py": uses_os_path})
    stale = sleep_status(repo.settings)["stale_memory"]
    assert stale == [
        {
            "label": "project",
            "line": 1,
            "text": "- Stock counts live in `Stock.take()` (shop/store.py).",
            "missing": ("shop/store.py", "Stock.take()"),
        }
    ]
    assert block.read_text() == written  # flagged, never edited


def test_dry_run_writes_nothing_and_paths_narrow_the_pass(repo: Repo) -> None:
    report = repo.sleep(dry_run=True)
    assert sorted(f["path"] for f in report["files"]) == sorted(FILES)
    assert repo.summary("shop/store.py") is None
    assert not repo.settings.paths.sleep_log.exists()
    report = repo.sleep(paths=("shop",))
    assert sorted(f["path"] for f in report["files"]) == ["shop/store.py", "shop/till.py"]
    assert repo.summary("README.md") is None


def test_sleep_and_summary_commands(repo: Repo, tmp_path: Path) -> None:
    env = mcode_env(tmp_path / "home", MCODE_EMBEDDING_MODEL="none")
    env["XDG_CONFIG_HOME"] = str(repo.state / "config")
    env["XDG_CACHE_HOME"] = str(repo.state / "cache")
    dry = run_in_process(["sleep", "--dry-run", "--json"], env, cwd=repo.root)
    assert dry.returncode == 0, dry.stderr
    assert len(json.loads(dry.stdout)["files"]) == 3

    done = run_in_process(["sleep"], env, cwd=repo.root)
    assert done.returncode == 0, done.stderr
    assert "summarised 3 files and 2 directories" in done.stdout

    shown = run_in_process(["summary", "store.py", "--json"], env, cwd=repo.root / "shop")
    data = json.loads(shown.stdout)
    assert data["path"] == "shop/store.py" and data["generator"] == "structural"
    assert data["current"] is True and data["level"] == "file"
    text = run_in_process(["summary", "shop"], env, cwd=repo.root)
    assert text.stdout.startswith("shop/ — 2 files, 0 directories")

    status = run_in_process(["sleep", "--status"], env, cwd=repo.root)
    assert "0 of 200,000 tokens spent" in status.stdout
    assert "queue: empty" in status.stdout

    missing = run_in_process(["summary", "nowhere.py"], env, cwd=repo.root)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "mcode: nowhere.py is not in the index (see `mcode index --json` for what is skipped)"
    )
    both = run_in_process(["sleep", "--status", "--dry-run"], env, cwd=repo.root)
    assert both.returncode == 2


def test_a_repository_can_lower_the_caps_but_its_sleep_model_and_raised_caps_wait_for_trust(
    tmp_path: Path,
) -> None:
    paths = Paths(repo=tmp_path / "r", user_config=tmp_path / "config", cache=tmp_path / "cache")
    paths.memory.mkdir(parents=True)
    paths.project_config.write_text(
        'sleep_model = "anthropic/claude-haiku-4-5"\n'
        "sleep_budget_tokens_per_day = 10000000\n"
        "sleep_pass_tokens = 1000\n"
        "sleep_quiet_seconds = 5\n"
    )
    settings = load_settings(paths, env={})
    assert settings.sleep_model == "" and settings.sleep_budget_tokens_per_day == 200_000
    assert settings.sleep_pass_tokens == 1000 and settings.sleep_quiet_seconds == 5.0
    assert set(settings.trust.ignored) == {"sleep_model", "sleep_budget_tokens_per_day"}
    paths.project_config.write_text('sleep_pass_tokens = "lots"\n')
    with pytest.raises(ConfigError, match="sleep_pass_tokens must be a whole number"):
        load_settings(paths, env={})


def test_the_trigger_waits_for_quiet_and_for_the_turn_to_end() -> None:
    runs: list[int] = []
    busy = threading.Event()
    trigger = QuietTrigger(lambda: runs.append(1), 0.2, busy=busy.is_set).start()
    try:
        busy.set()
        for _ in range(3):
            trigger.mark()
        assert not poll(lambda: bool(runs), 0.6)  # quiet long enough, but a turn is under way
        busy.clear()
        assert poll(lambda: len(runs) == 1, 10)
        assert not poll(lambda: len(runs) > 1, 0.4)  # three marks, one pass
    finally:
        trigger.stop()


def test_an_edit_during_a_pass_stops_it_and_it_runs_again() -> None:
    started, release = threading.Event(), threading.Event()
    seen: list[bool] = []

    def action() -> None:
        started.set()
        release.wait(10)
        seen.append(trigger.edited())

    trigger = QuietTrigger(action, 0.05).start()
    try:
        trigger.mark()
        assert started.wait(10)
        trigger.mark()
        release.set()
        assert poll(lambda: len(seen) == 2, 10)
        assert seen == [True, False]
    finally:
        release.set()
        trigger.stop()


def test_kill_9_mid_pass_loses_nothing_and_the_next_pass_resumes(
    tmp_path: Path, llm_server: ScriptedLLMServer
) -> None:
    files = {
        f"pkg/m{i}.py": f'"""Module {i}."""\n\ndef f{i}():\n    return {i}\n' for i in range(8)
    }
    made = Repo(make_repo(tmp_path / "many", files), tmp_path / "state")
    made.index()
    for i in range(10):  # one more than needed: the call in flight at the kill is asked again
        slow = 0.3 if i < 5 else 0.0  # the killed pass's answers take a while, not the resumed
        llm_server.reply_text(f"model summary {i}", usage=(100, 10), chunk_delay=slow)
    env = mcode_env(
        tmp_path / "home",
        MCODE_EMBEDDING_MODEL="none",
        MCODE_SLEEP_MODEL=MODEL,
        MCODE_API_BASE=llm_server.url,
        OPENAI_API_KEY="sk-test",
        XDG_CONFIG_HOME=str(made.state / "config"),
        XDG_CACHE_HOME=str(made.state / "cache"),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "mcode", "sleep"],
        cwd=made.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = made.settings.paths.sleep_log
    try:
        assert poll(lambda: len(read_json_lines(log)) >= 3, 120)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    paid = {e["path"] for e in read_json_lines(log) if e["event"] == "summary"}
    requests = len(llm_server.requests)
    assert 3 <= len(paid) < 8

    report = made.sleep(made.with_model(llm_server))
    redone = len(llm_server.requests) - requests
    stored = SummaryStore(made.settings.paths.summaries).states()
    models = {s.path for s in stored.values() if s.generator == f"model:{MODEL}"}
    assert models == set(files)
    # Every summary the killed pass logged is kept (at most the one in flight is asked again).
    assert redone <= 8 - len(paid) + 1
    assert report["dirs"] >= 1


def test_mcode_watch_summarises_once_files_are_quiet(repo: Repo, tmp_path: Path) -> None:
    env = mcode_env(
        tmp_path / "home", MCODE_EMBEDDING_MODEL="none", MCODE_SLEEP_QUIET_SECONDS="0.3"
    )
    env["XDG_CONFIG_HOME"] = str(repo.state / "config")
    env["XDG_CACHE_HOME"] = str(repo.state / "cache")

    def summary_text(path: str) -> str:
        found = repo.summary(path) if repo.settings.paths.summaries.exists() else None
        return found.text if found is not None else ""

    proc = subprocess.Popen(
        [sys.executable, "-m", "mcode", "watch", "--repo", str(repo.root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert poll(lambda: "class Stock" in summary_text("shop/store.py"), 120)
        (repo.root / "shop" / "till.py").write_text(TILL + "\n\ndef refund_all():\n    pass\n")
        assert poll(lambda: "refund_all" in summary_text("shop/till.py"), 120)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0


PERSON_LINE = "- Run the tests with `make check`."


def conversation(repo: Repo, turns: int) -> None:
    """A session whose user said things for `turns` turns, as the REPL writes it."""
    log = SessionLog(repo.settings.paths.sessions)
    session = log.new_session(model=MODEL)
    for i in range(turns):
        log.append(session.id, {"role": "user", "content": f"we always use tabs, turn {i}"})
        log.append(session.id, {"role": "assistant", "content": "Noted."})


def memory_blocks(repo: Repo) -> BlockStore:
    blocks = BlockStore.for_paths(repo.settings.paths)
    blocks.set_value("project", PERSON_LINE, actor="user", reason="the team's command")
    blocks.set_value("lessons", "", actor="user", reason="start")
    return blocks


def model_summaries(repo: Repo, server: ScriptedLLMServer) -> None:
    """Every module summarised by the model already, so that only memory is left to ask about."""
    for path in FILES:
        server.reply_text(f"{path} summary")
    report = repo.sleep(repo.with_model(server))
    assert report["generators"] == {f"model:{MODEL}": 3}
    server.requests.clear()


def test_consolidation_edits_memory_through_the_tools_and_only_proposes_for_a_persons_line(
    repo: Repo, llm_server: ScriptedLLMServer
) -> None:
    blocks = memory_blocks(repo)
    conversation(repo, 4)
    model_summaries(repo, llm_server)  # 4 turns: not due yet
    settings = repo.with_model(llm_server)

    conversation(repo, 5)
    llm_server.reply_tool_calls(
        [
            ("memory_insert", {"label": "project", "text": "- Indent with tabs (2025-05-01)."}),
            ("memory_replace", {"label": "project", "old": PERSON_LINE, "new": "- `make test`"}),
            ("memory_insert", {"label": "lessons", "text": "x" * 6000}),
        ],
        usage=(900, 60),
    )
    memory = repo.sleep(settings)["memory"]
    assert memory["applied"] == ["insert project"]
    assert memory["proposals"] == [
        {"label": "project", "old": PERSON_LINE, "new": "- `make test`", "reason": ""}
    ]
    assert len(memory["refused"]) == 1 and "limit" in memory["refused"][0]
    assert memory["tokens"] == 960
    prompt = llm_server.requests[0]["messages"][0]["content"]
    assert f"(person) {PERSON_LINE}" in prompt and "turn 0" in prompt

    project = blocks.get("project").value
    assert project == PERSON_LINE + "\n- Indent with tabs (2025-05-01)."
    entry = blocks.log("project")[-1]
    assert entry.actor == "sleep" and entry.op == "insert"
    blocks.revert("project", entry.id, actor="user")
    assert blocks.get("project").value == PERSON_LINE
    events = [e["event"] for e in read_json_lines(repo.settings.paths.sleep_log)]
    assert "proposal" in events and "consolidate" in events
    assert sleep_status(settings)["proposals"][0]["new"] == "- `make test`"

    # The same session is not read again until five more user turns.
    assert repo.sleep(settings)["memory"]["skipped"] == "not due"
    assert len(llm_server.requests) == 1


def test_consolidation_may_merge_its_own_lines_and_respects_read_only_blocks(
    repo: Repo, llm_server: ScriptedLLMServer
) -> None:
    blocks = memory_blocks(repo)
    blocks.append("lessons", "- Check the index first.", actor="sleep", reason="earlier pass")
    blocks.append("lessons", "- Look at the index before grep.", actor="agent", reason="turn")
    project = repo.settings.paths.memory / "blocks" / "project.md"
    project.write_text(project.read_text().replace("read_only: false", "read_only: true"))
    model_summaries(repo, llm_server)
    conversation(repo, 5)
    merged = "- Check the index first.\n- Look at the index before grep."
    llm_server.reply_tool_calls(
        [
            (
                "memory_replace",
                {"label": "lessons", "old": merged, "new": "- Search the index first."},
            ),
            ("memory_insert", {"label": "project", "text": "- Tabs."}),
            ("memory_insert", {"label": "human", "text": "- The user likes tabs."}),
        ]
    )
    memory = repo.sleep(repo.with_model(llm_server))["memory"]
    assert memory["applied"] == ["replace lessons"] and memory["proposals"] == []
    assert "read-only" in memory["refused"][0]
    assert memory["refused"][1] == "memory_insert human: this pass edits only project and lessons"
    assert blocks.get("lessons").value == "- Search the index first."


def test_consolidation_may_not_empty_a_block(repo: Repo, llm_server: ScriptedLLMServer) -> None:
    blocks = memory_blocks(repo)
    blocks.append("lessons", "- Check the index first.", actor="sleep", reason="earlier pass")
    model_summaries(repo, llm_server)
    conversation(repo, 5)
    wipe = {"label": "lessons", "old": "- Check the index first.", "new": ""}
    llm_server.reply_tool_calls([("memory_replace", wipe)])
    memory = repo.sleep(repo.with_model(llm_server))["memory"]
    assert memory["refused"] == ["memory_replace lessons: an edit may not empty a block"]
    assert blocks.get("lessons").value == "- Check the index first."
