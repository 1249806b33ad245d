"""`mcode` run in this process, for tests whose subject is what a command does rather than the
process that runs it (that is `repos.run_mcode`'s job: signals, kill -9, terminals, start-up imports).

Same entry point (`mcode.cli.main`), arguments, environment, working directory, standard input and
exit code as the process, and the same answer type; what it saves is the interpreter's start and
its imports, about a second per command (several with litellm), paid once per test session here.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from click.testing import CliRunner

from mcode.cli import main


class _Main:
    """What `CliRunner.invoke` calls: mcode's own `main`, which reads its arguments from argv."""

    name = "mcode"

    def main(self, args: Sequence[str], prog_name: str, **_: Any) -> None:
        with mock.patch.object(sys, "argv", [prog_name, *args]):
            main()


def run_in_process(
    args: list[str], env: dict[str, str], cwd: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`run_mcode(args, env, cwd, stdin)`, in this process. The command sees exactly `env` (what
    it does not name is unset meanwhile), and output written to the file descriptors directly (by
    native libraries, child processes) is captured too, as a pipe would take it."""
    unset: dict[str, str | None] = {name: None for name in os.environ if name not in env}
    runner = CliRunner(capture="fd")
    with contextlib.chdir(cwd or Path.cwd()):
        result = runner.invoke(_Main(), args, input=stdin, env={**unset, **env})  # type: ignore[arg-type]
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # What the interpreter prints for an uncaught exception before it exits 1.
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["mcode", *args], result.exit_code, result.stdout, stderr)
