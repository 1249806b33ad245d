"""`mcode hook install|uninstall`: the review as git's own pre-commit hook, without the framework.

The hook is a small shell script in the repository's hooks directory that runs `mcode review` with
the Python mcode was installed with (falling back to `mcode` on PATH). It never clobbers a hook that
is already there: that one is moved aside to `pre-commit.before-mcode` and run first, with the same
arguments, and stops the commit on its own as before; uninstalling puts it back. `SKIP=mcode-review`
skips the review as the pre-commit framework would (the earlier hook still runs).

When `core.hooksPath` is set, git runs the hooks from there, not from `.git/hooks`; installing into
a directory the user manages some other way (husky, a shared hooks repository) would be a surprise,
so mcode says so and leaves it to them.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import mcode.vcs as vcs
from mcode.fsio import atomic_write_text, remove_file

HOOK = "pre-commit"
PREVIOUS = "pre-commit.before-mcode"
MARKER = "# mcode-review hook"
_SCRIPT = """\
#!/bin/sh
{marker}: installed by `mcode hook install`; `mcode hook uninstall` removes it.
hooks=$(dirname "$0")
if [ -x "$hooks/{previous}" ]; then
    "$hooks/{previous}" "$@" || exit $?
fi
case ",$(printf '%s' "${{SKIP:-}}" | tr -d ' ')," in
    *,mcode-review,*) echo "mcode-review: skipped (SKIP)" >&2; exit 0 ;;
esac
if [ -x {python} ]; then
    exec {python} -m mcode review
fi
exec mcode review
"""


class HookError(Exception):
    """The hook cannot be installed or removed; the message says why and what to do."""


def hooks_dir(root: Path) -> Path:
    configured = _configured_hooks_path(root)
    if configured:
        raise HookError(
            f"core.hooksPath is set to {configured}: git runs the hooks there, not mcode's; "
            "add `mcode review` to that pre-commit hook yourself, or use the pre-commit framework"
        )
    common = vcs.common_dir(root)
    if common is None:
        raise HookError(f"{root} is not a git repository")
    return common / "hooks"


def _configured_hooks_path(root: Path) -> str | None:
    """core.hooksPath as the user's and the repository's config set it (mcode's own reads pass
    it on the command line, which does not count)."""
    try:
        result = vcs.run(root, "config", "--show-scope", "--get-all", "core.hooksPath", check=False)
    except vcs.GitError:
        return None
    values = [
        value
        for scope, _, value in (line.partition("\t") for line in result.text.splitlines())
        if scope != "command" and value
    ]
    return values[-1] if values else None


def is_ours(path: Path) -> bool:
    """A file mcode wrote; a link never is (writing it would write wherever it points)."""
    if path.is_symlink():
        return False
    try:
        return MARKER in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def install(root: Path, python: str = sys.executable) -> str:
    """Install the hook; what was done, as one line."""
    directory = hooks_dir(root)
    hook, previous = directory / HOOK, directory / PREVIOUS
    note = ""
    if os.path.lexists(hook) and not is_ours(hook):
        if os.path.lexists(previous):
            raise HookError(
                f"{hook} and {previous} both exist: mcode will not move one over the other; "
                "merge them by hand, then run `mcode hook install` again"
            )
        os.rename(hook, previous)
        note = f"; the hook that was there runs first, now as {PREVIOUS}"
    updated = os.path.lexists(hook)
    script = _SCRIPT.format(marker=MARKER, previous=PREVIOUS, python=shlex.quote(python))
    atomic_write_text(hook, script)
    hook.chmod(0o755)
    return f"{'updated' if updated else 'installed'} the mcode review hook in {hook}{note}"


def uninstall(root: Path) -> str:
    """Remove the hook, putting back the one it moved aside; what was done, as one line."""
    directory = hooks_dir(root)
    hook, previous = directory / HOOK, directory / PREVIOUS
    if not os.path.lexists(hook):
        raise HookError(f"no pre-commit hook in {directory}: nothing to uninstall")
    if not is_ours(hook):
        raise HookError(f"{hook} is not mcode's hook; left as it is")
    remove_file(hook)
    if os.path.lexists(previous):
        os.rename(previous, hook)
        return f"removed the mcode review hook; {HOOK} is the earlier hook again"
    return f"removed the mcode review hook from {directory}"
