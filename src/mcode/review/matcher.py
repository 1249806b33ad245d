"""The child process that runs review rules' patterns, so that the parent can stop one that never ends.

Python's `re` cannot be given a time limit, and a pattern from a stranger's repository can backtrack
for hours on a crafted line. The parent (`mcode.review.rules`) starts this file with the standard
library alone (`python -I -S`), writes one JSON job on stdin, `{"files": [path, ...], "lines":
[[file index, text], ...], "rules": [{"pattern", "globs"}, ...]}`, and reads one JSON line per rule,
in order, as each finishes: `{"hits": [line index, ...]}`. It kills the process when a rule takes
too long, and knows which rule it was from the lines it has.

Globs are gitignore-style: without a `/` (other than a trailing one) they match a file's name at any
depth; with one, the path from the repository root; `**` crosses directories, `*` and `?` do not.
They are turned into patterns here, under the same time limit.
"""

from __future__ import annotations

import json
import re
import sys


def glob_pattern(glob: str) -> re.Pattern[str]:
    anchored = "/" in glob.rstrip("/")
    glob = glob.lstrip("/")
    out = []
    index = 0
    while index < len(glob):
        if glob.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif glob.startswith("**", index):
            out.append(".*")
            index += 2
        elif glob[index] == "*":
            out.append("[^/]*")
            index += 1
        elif glob[index] == "?":
            out.append("[^/]")
            index += 1
        else:
            out.append(re.escape(glob[index]))
            index += 1
    body = "".join(out)
    if glob.endswith("/"):
        body += ".*"  # a directory: everything under it
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"{prefix}{body}")


def main() -> None:
    job = json.load(sys.stdin)
    files, lines = job["files"], job["lines"]
    for rule in job["rules"]:
        pattern = re.compile(rule["pattern"])
        globs = [glob_pattern(g) for g in rule["globs"]]
        wanted = [not globs or any(g.fullmatch(path) for g in globs) for path in files]
        hits = [i for i, (f, text) in enumerate(lines) if wanted[f] and pattern.search(text)]
        sys.stdout.write(json.dumps({"hits": hits}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
