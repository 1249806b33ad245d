"""Git for everything mcode itself asks of it: where the repository is, the files git lists, status,
diffs, history, blobs and commits.

Discovery (`find_repo_root`, `toplevel`, `git_dir`, `common_dir`) reads the file system and imports
nothing heavy. The rest runs git through GitPython, imported on first use, with a repository's own
config unable to run code on a read (`command` says how, and what an approved commit still runs).
Nothing else in mcode runs git; the agent's own shell commands are the user's, under the shell's
permission rules.
"""

from mcode.vcs.command import COMMIT_TIMEOUT, READ_TIMEOUT, GitError, GitResult, run
from mcode.vcs.discovery import RepoNotFoundError, common_dir, find_repo_root, git_dir, toplevel
from mcode.vcs.repo import (
    Change,
    blob,
    changes,
    commit,
    config_value,
    current_branch,
    diff,
    diff_names,
    recent_subjects,
    staged_changes,
    status_summary,
    untracked_files,
    work_tree_files,
)

__all__ = [
    "COMMIT_TIMEOUT",
    "READ_TIMEOUT",
    "Change",
    "GitError",
    "GitResult",
    "RepoNotFoundError",
    "blob",
    "changes",
    "commit",
    "common_dir",
    "config_value",
    "current_branch",
    "diff",
    "diff_names",
    "find_repo_root",
    "git_dir",
    "recent_subjects",
    "run",
    "staged_changes",
    "status_summary",
    "toplevel",
    "untracked_files",
    "work_tree_files",
]
