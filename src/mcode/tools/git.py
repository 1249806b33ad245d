"""The git tools: status and diff (read-only), and commit (asks like a shell command).

They run the git CLI, so the user's own configuration, hooks (the mcode review hook among them) and
identity apply. Secret files stay out of diffs unless named, and a commit that would include one
always asks the user. Secret values in their output are redacted (`mcode.secrets`), except in the
diff of a secret file the user agreed to share.
"""

from __future__ import annotations

import os
import subprocess

from mcode.secrets import is_secret_path, redact, share
from mcode.tools.access import RepoAccess
from mcode.tools.base import ToolError, tool
from mcode.tools.files import authorize_read
from mcode.tools.paths import resolve

GIT_TIMEOUT = 60
COMMIT_TIMEOUT = 600  # commit hooks may run tests or a review
MAX_DIFF_CHARS = 50_000
MAX_COMMIT_OUTPUT = 10_000
_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "GIT_EDITOR": "true", "LC_ALL": "C"}


def git(
    ctx: RepoAccess, *args: str, timeout: float = GIT_TIMEOUT, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run git at the repository root; a failure (with `check`) is a ToolError with git's words."""
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=ctx.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env={**os.environ, **_ENV},
            check=False,
        )
    except FileNotFoundError:
        raise ToolError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"git {args[0]} took longer than {timeout:g} s and was stopped") from None
    if check and out.returncode != 0:
        message = (out.stderr or out.stdout).strip()
        if "not a git repository" in message:
            raise ToolError(f"{ctx.root} is not a git repository")
        raise ToolError(f"git {args[0]} failed: {message}")
    return out


def _changed(ctx: RepoAccess, *pathspec: str) -> list[tuple[str, str]]:
    """(status, path) for every change git would commit with `add -A`, untracked files included."""
    out = git(ctx, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *pathspec)
    entries = out.stdout.split("\0")
    found = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        if status[0] in "RC":
            index += 1  # the rename's source follows
        found.append((status, path))
    return found


def _staged(ctx: RepoAccess) -> list[tuple[str, str]]:
    out = git(ctx, "diff", "--cached", "--name-status", "-z")
    parts = [p for p in out.stdout.split("\0") if p]
    found = []
    index = 0
    while index < len(parts):
        status = parts[index]
        step = 3 if status[:1] in "RC" else 2
        found.append((status[:1] + " ", parts[index + step - 1]))
        index += step
    return found


@tool("read", parallel=True)
def git_status(ctx: RepoAccess) -> str:
    """Show the branch and which files are staged, modified or untracked (`git status --short`)."""
    out = git(ctx, "status", "--short", "--branch", "--untracked-files=all").stdout.rstrip()
    lines = out.splitlines()
    if len(lines) <= 1:
        branch = lines[0][3:] if lines else "?"
        return f"Working tree clean on {branch}."
    return out


@tool("read", parallel=True)
def git_diff(
    ctx: RepoAccess, staged: bool = False, path: str | None = None, ref: str | None = None
) -> str:
    """Show changes as a unified diff: unstaged by default, staged with staged=true, or against a
    commit with ref. Untracked files do not appear; git_status lists them.

    Args:
        staged: Show the staged changes (what a commit would take) instead of the unstaged ones.
        path: Only this file or directory.
        ref: Compare against this commit instead, e.g. HEAD or main.
    """
    args = ["diff", "--no-color", "--no-ext-diff"]
    if staged:
        args.append("--cached")
    if ref:
        if ref.startswith("-"):
            raise ToolError(f"ref {ref!r} looks like an option; give a commit, branch or tag")
        args.append(ref)
    spec = "."
    shared = False
    if path:
        target = resolve(ctx.root, path)
        shared = authorize_read(ctx, "git_diff", target)  # naming a secret file asks the user
        spec = target.rel
    names = git(ctx, *args, "--name-only", "--relative", "-z", "--", spec).stdout.split("\0")
    left_out = [n for n in names if n and n != spec and is_secret_path(n)]
    args += ["--", spec, *(f":(exclude,literal){n}" for n in left_out)]
    diff = git(ctx, *args).stdout
    if not shared:
        diff = redact(diff)
    notes = []
    if left_out:
        notes.append(f"[Left out secret files: {', '.join(left_out)}; pass one as path to see it.]")
    if not diff.strip():
        what = "staged changes" if staged else "differences"
        hint = "" if staged else " (staged changes need staged=true; git_status lists untracked)"
        return "\n".join([f"No {what}{hint}.", *notes])
    if len(diff) > MAX_DIFF_CHARS:
        cut = len(diff) - MAX_DIFF_CHARS
        diff = diff[:MAX_DIFF_CHARS]
        notes.append(f"[Diff cut: {cut} more characters. Pass path to see one file at a time.]")
    text = "\n".join([diff.rstrip("\n"), *notes])
    return share(spec, text) if shared else text


@tool("shell")
def git_commit(
    ctx: RepoAccess, message: str, paths: list[str] | None = None, all: bool = False
) -> str:
    """Commit changes: the given paths, or everything with all=true, or else what is staged.

    Check git_status and git_diff first, and write a message that says why, not only what. The
    repository's commit hooks run and may reject the commit; then fix what they report.

    Args:
        message: The commit message.
        paths: Commit exactly these files or directories (their current content, new files
            included), leaving other changes alone.
        all: Commit every change, untracked files included (git add -A).
    """
    if not message.strip():
        raise ToolError("message must not be empty")
    if paths and all:
        raise ToolError("give either paths or all=true, not both")
    specs = [resolve(ctx.root, p).rel for p in paths or []]
    changes = _changed(ctx, *specs) if specs or all else _staged(ctx)
    if not changes:
        where = f" in {', '.join(specs)}" if specs else ""
        hint = "" if specs or all else " (nothing is staged: pass paths or all=true)"
        raise ToolError(f"nothing to commit{where}{hint}")
    files = [path for _, path in changes]
    listing = "\n".join(f"  {status} {path}" for status, path in changes)
    secrets = [f for f in files if is_secret_path(f)]
    warning = f"\nWARNING: includes secret files: {', '.join(secrets)}" if secrets else ""
    subject = message.strip().splitlines()[0]
    ctx.authorize(
        "git_commit",
        {"message": message, "files": files},
        kind="shell",
        action=f"the commit {subject!r}",
        summary=f"Commit {len(files)} file{'s' * (len(files) > 1)}: {subject!r}?",
        detail=f"{message.strip()}\n\nFiles:\n{listing}{warning}",
    )
    return _commit(ctx, message, specs, all)


def _commit(ctx: RepoAccess, message: str, specs: list[str], everything: bool) -> str:
    if everything:
        git(ctx, "add", "-A")
    elif specs:
        git(ctx, "add", "-A", "--", *specs)
    args = ["commit", "-m", message]
    if specs:
        args += ["--", *specs]
    out = git(ctx, *args, timeout=COMMIT_TIMEOUT, check=False)
    text = redact((out.stdout + out.stderr).strip())  # hooks print what they like
    if len(text) > MAX_COMMIT_OUTPUT:
        text = text[:MAX_COMMIT_OUTPUT] + "\n[… output cut …]"
    if out.returncode != 0:
        raise ToolError(
            f"git commit failed (exit code {out.returncode}); nothing was committed. If a hook "
            f"rejected it, fix what it reports and commit again.\n{text}"
        )
    return text
