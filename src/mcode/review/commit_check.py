"""The review the agent's own commits pass: the same `mcode review`, its findings back to the model.

The git tool sits below this package, so a session is handed `commit_check(settings)` and installs
it on its `RepoAccess`; `git_commit` calls it with what the commit would take (some paths, every
change, or what is staged) before asking the user. Findings at or above `fail_on` block the commit
and go back to the model as text, like the hook's would; lesser ones ride along with the commit's
result. A review that cannot run (git fails, a bug) never blocks: the repository's hooks still
stand behind it. The hook that then runs in the commit finds the same change in the cache.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcode.config import Settings
from mcode.review.findings import at_least
from mcode.review.output import to_text
from mcode.review.run import ReviewOptions, review
from mcode.review.source import Target
from mcode.tools import CommitCheck, CommitVerdict


def commit_check(settings: Settings, fail_on: str = "error") -> CommitCheck:
    def check(paths: Sequence[str], everything: bool) -> CommitVerdict:
        uncommitted = Target("worktree", paths=tuple(paths))
        target = uncommitted if paths or everything else Target.staged()
        try:
            report = review(settings, target, ReviewOptions())
        except Exception as exc:  # the review is a help here; the hooks still guard the commit
            return CommitVerdict(False, f"(the review could not run: {exc})")
        if not report.findings:
            return CommitVerdict(False)
        blocked = any(at_least(f.severity, fail_on) for f in report.findings)
        return CommitVerdict(blocked, to_text(report))

    return check
