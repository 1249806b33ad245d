"""`mcode review`: a code review of a change against the project's memory, for people, hooks and CI.

A change (`source.Target`: staged, since a base, a range, or the work tree) is read from git as
files and hunks (`diff`). The memory blocks' rules run on its added lines without a model (`rules`,
in a child process: a stranger's pattern cannot hang a commit); then each file goes to the model with
the `project` and `lessons` blocks and the code the index knows around each hunk (`context`,
`model`), its answer checked (`findings`) and cached by change, memory and model (`cache`).
Dismissed findings stay dismissed and teach the lessons block (`dismissals`). `output` renders a
report as text, JSON, SARIF 2.1.0 or GitHub annotations; `hook` installs the review as a git
pre-commit hook; `commit_check` gives the agent's own commits the same review.

    report = review(settings, Target.staged(), ReviewOptions())
    report.outcome   # "clean", "findings", "skipped" or "error"
"""

from mcode.review.findings import Finding, at_least
from mcode.review.run import ReviewOptions, ReviewReport, review
from mcode.review.source import ChangeError, Target

__all__ = [
    "ChangeError",
    "Finding",
    "ReviewOptions",
    "ReviewReport",
    "Target",
    "at_least",
    "review",
]
