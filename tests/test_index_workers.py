"""The worker processes of `mcode index` do not outlive it: after a `kill -9` mid-parse, its
workers (~230 MB each) and the fork server that started them are gone within moments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.polling import poll
from support.repos import make_repo, mcode_env

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads the process table from /proc"
)

CEILING = 60.0  # seconds a poll may take before the test fails; the design target is 2 s

MODULE = "".join(
    f"def function_{j}(value):\n    total = value * {j}\n    for i in range(3):\n"
    f"        total += i\n    return total\n\n\n"
    for j in range(60)
)


def session_members(session: int) -> dict[int, int]:
    """Living processes of a session (zombies left out), as pid -> parent pid."""
    members = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (name) state ppid pgrp session ...": the name may hold spaces and parentheses.
        state, ppid, _pgrp, sid = stat.rsplit(")", 1)[1].split()[:4]
        if int(sid) == session and state != "Z":
            members[int(entry)] = int(ppid)
    return members


def test_kill_9_mid_parse_leaves_no_worker_behind(tmp_path: Path) -> None:
    files = {f"pkg{i % 20}/mod_{i}.py": MODULE for i in range(3000)}
    repo = make_repo(tmp_path / "big", files, commit=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcode", "index", "--no-embed", "--repo", str(repo)],
        env=mcode_env(tmp_path / "home"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # everything it starts shares its session id: found after the kill
    )
    try:

        def parsing_in_workers() -> bool:
            members = session_members(proc.pid)
            # A worker is a child of the fork server, itself a child of mcode.
            return any(members.get(parent) == proc.pid for parent in members.values())

        assert poll(lambda: parsing_in_workers() or proc.poll() is not None, CEILING)
        assert proc.poll() is None, "indexing ended before its workers were seen"
        proc.kill()
        proc.wait()
        assert poll(lambda: not session_members(proc.pid), CEILING), session_members(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in session_members(proc.pid):
            os.kill(pid, signal.SIGKILL)
