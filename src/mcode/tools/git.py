"""The git tools: status and diff (read-only), and commit (asks like a shell command).

They run git through `mcode.vcs`: status and diff so that the repository's own git config runs
nothing; a commit the user approved as their own `git commit` would, with their configuration,
identity and the repository's hooks (the mcode review hook among them). Before it asks, a commit
passes the session's review (`RepoAccess.commit_check`, `mcode review` on what it would take): a
finding that blocks goes back to the model instead of into the history, so the model fixes it
rather than meeting the hook's refusal after the user approved. Secret files stay out of
diffs unless named, and a commit that would include one always asks the user. Secret values in
their output are redacted (`mcode.secrets`), except in the diff of a secret file the user agreed to
share.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import mcode.vcs as vcs
from mcode.secrets import is_secret_path, redact, share
from mcode.tools.access import RepoAccess
from mcode.tools.base import ToolError, tool
from mcode.tools.files import authorize_read
from mcode.tools.paths import resolve

MAX_DIFF_CHARS = 50_000
MAX_COMMIT_OUTPUT = 10_000


@contextmanager
def _git_errors() -> Iterator[None]:
    """git's failures reach the model as tool errors, in git's words."""
    try:
        yield
    except vcs.GitError as exc:
        raise ToolError(str(exc)) from None


@tool("read", parallel=True)
def git_status(ctx: RepoAccess) -> str:
    """Show the branch and which files are staged, modified or untracked (`git status --short`)."""
    with _git_errors():
        out = vcs.status_summary(ctx.root).rstrip()
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
    spec = "."
    shared = False
    if path:
        target = resolve(ctx.root, path)
        shared = authorize_read(ctx, "git_diff", target)  # naming a secret file asks the user
        spec = target.rel
    with _git_errors():
        names = vcs.diff_names(ctx.root, spec, staged=staged, rev=ref or None)
        left_out = [n for n in names if n != spec and is_secret_path(n)]
        excluded = (f":(exclude,literal){n}" for n in left_out)
        diff = vcs.diff(ctx.root, spec, *excluded, staged=staged, rev=ref or None)
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
    with _git_errors():
        changes = vcs.changes(ctx.root, *specs) if specs or all else vcs.staged_changes(ctx.root)
    if not changes:
        where = f" in {', '.join(specs)}" if specs else ""
        hint = "" if specs or all else " (nothing is staged: pass paths or all=true)"
        raise ToolError(f"nothing to commit{where}{hint}")
    files = [path for _, path in changes]
    listing = "\n".join(f"  {status} {path}" for status, path in changes)
    secrets = [f for f in files if is_secret_path(f)]
    warning = f"\nWARNING: includes secret files: {', '.join(secrets)}" if secrets else ""
    subject = message.strip().splitlines()[0]
    verdict = ctx.commit_check(specs, all) if ctx.commit_check is not None else None
    if verdict is not None and verdict.blocked:
        raise ToolError(
            "the review of this commit found problems; nothing was committed. Fix them and "
            "commit again; if a finding is wrong, tell the user, who can dismiss it with "
            f"`mcode review --dismiss ID`.\n{verdict.text}"
        )
    ctx.authorize(
        "git_commit",
        {"message": message, "files": files},
        kind="shell",
        action=f"the commit {subject!r}",
        summary=f"Commit {len(files)} file{'s' * (len(files) > 1)}: {subject!r}?",
        detail=f"{message.strip()}\n\nFiles:\n{listing}{warning}",
    )
    result = _commit(ctx, message, specs, all)
    if verdict is not None and verdict.text:
        result = f"{result}\n\nThe review's findings (none blocks a commit):\n{verdict.text}"
    return result


def _commit(ctx: RepoAccess, message: str, specs: list[str], everything: bool) -> str:
    with _git_errors():
        out = vcs.commit(ctx.root, message, *specs, add_all=everything or bool(specs))
    text = redact(out.output)  # hooks print what they like
    if len(text) > MAX_COMMIT_OUTPUT:
        text = text[:MAX_COMMIT_OUTPUT] + "\n[… output cut …]"
    if not out.ok:
        raise ToolError(
            f"git commit failed (exit code {out.code}); nothing was committed. If a hook "
            f"rejected it, fix what it reports and commit again.\n{text}"
        )
    return text
