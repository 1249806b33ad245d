"""Download the text of the bug reports `eval_search.py bugs` uses, once, from the GitHub API.

The reports are people's words on public issues: this repository ships only where they are
(`tools/data/bugs.json`: repository, issue number, fix commit, changed files), and this script keeps
their title and the reporter's description (the issue body, cut to `--max-chars`) beside the
evaluation's corpora, in `~/.cache/mcode-eval/bug-texts.json`. It needs the network; the evaluation
itself then runs offline. Set GITHUB_TOKEN for the higher rate limit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "bugs.json"
TEXTS = Path.home() / ".cache" / "mcode-eval" / "bug-texts.json"


def fetch_issue(repo: str, number: int, token: str | None) -> dict:
    request = urllib.request.Request(
        f"https://api.github.com/repos/{repo}/issues/{number}",
        headers={"Accept": "application/vnd.github+json", "User-Agent": "mcode-eval"},
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA), help="the reports (default: %(default)s)")
    parser.add_argument("--out", default=str(TEXTS), help="where to keep the texts (%(default)s)")
    parser.add_argument("--max-chars", type=int, default=1500, help="of each description")
    args = parser.parse_args()
    out = Path(args.out).expanduser()
    texts = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    token = os.environ.get("GITHUB_TOKEN")
    reports = json.loads(Path(args.data).read_text(encoding="utf-8"))["reports"]
    for report in reports:
        key = f"{report['repo']}#{report['issue']}"
        if key in texts:
            continue
        try:
            issue = fetch_issue(report["repo"], report["issue"], token)
        except (urllib.error.URLError, TimeoutError) as exc:
            print(f"{key}: {exc}", file=sys.stderr)
            continue
        body = (issue.get("body") or "").replace("\r\n", "\n")
        texts[key] = {"title": issue.get("title", ""), "body": body[: args.max_chars]}
        time.sleep(0.5 if token else 1.5)  # within the API's rate limits
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(texts, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    have = sum(f"{r['repo']}#{r['issue']}" in texts for r in reports)
    print(f"{have} of {len(reports)} reports in {out}")
    return 0 if have == len(reports) else 1


if __name__ == "__main__":
    sys.exit(main())
