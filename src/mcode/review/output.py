"""A review report for people and for machines: text, JSON, SARIF 2.1.0 and GitHub annotations.

Text groups findings by file, each with its line, severity, message, the memory it relies on and the
flagged line, and ends with what the run cost (tokens, seconds, calls, cache hits). JSON is the
report itself. SARIF is what code-scanning dashboards read (one run, the rules that fired as
`tool.driver.rules`, a result per finding with its region and a fingerprint). The GitHub format is
one workflow command per finding (`::error file=…,line=…::message`), which Actions turns into
annotations on the pull request.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby
from typing import Any

from mcode import __version__
from mcode.review.findings import Finding
from mcode.review.run import ReviewReport

FORMATS = ("text", "json", "sarif", "github")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_GITHUB_LEVEL = {"error": "error", "warning": "warning", "note": "notice"}
_COLOURS = {"error": "red", "warning": "yellow", "note": "cyan"}
_NO_FINDINGS = {
    "skipped": "no findings (model review skipped)",
    "error": "no findings (model review failed)",
}

Style = Callable[..., str]


def _plain(text: str, **_: Any) -> str:
    return text


def to_json(report: ReviewReport) -> dict[str, Any]:
    return {
        "outcome": report.outcome,
        "target": report.target,
        "findings": [f.to_dict() for f in report.findings],
        "model": {"name": report.model, "status": report.model_status},
        "notes": report.notes,
        "files": report.files,
        "hunks": report.hunks,
        "rules": report.rules,
        "rules_seconds": round(report.rule_seconds, 3),
        "tokens": report.tokens,
        "cost_usd": round(report.cost_usd, 6),
        "seconds": round(report.seconds, 3),
        "calls": report.calls,
        "cached": report.cached,
        "dismissed": report.dismissed,
        "not_shown": report.cut,
        "outside_the_change": report.dropped,
    }


def to_text(report: ReviewReport, style: Style = _plain) -> str:
    lines: list[str] = []
    for path, group in groupby(report.findings, key=lambda f: f.path):
        lines.append(style(path, bold=True))
        for finding in sorted(group, key=lambda f: f.line):
            lines += _finding_lines(finding, style)
        lines.append("")
    lines.append(summary(report))
    return "\n".join(lines)


def _finding_lines(finding: Finding, style: Style) -> list[str]:
    severity = style(f"{finding.severity:<7}", fg=_COLOURS[finding.severity], bold=True)
    out = [f"  {finding.line:>5} {severity} {finding.message}  [{finding.id}]"]
    if finding.snippet:
        out.append(style(f"        | {finding.snippet}", dim=True))
    if finding.basis:
        label = "rule" if finding.rule else "memory"
        out.append(f"        {label}: {finding.basis}")
    if finding.suggestion:
        out.append(f"        suggestion: {finding.suggestion.strip()}")
    return out


def summary(report: ReviewReport) -> str:
    """The last line: the outcome, then what the run cost."""
    counts = {s: sum(f.severity == s for f in report.findings) for s in _COLOURS}
    if report.findings:
        parts = ", ".join(f"{n} {s}{'s' * (n != 1)}" for s, n in counts.items() if n)
        head = f"{len(report.findings)} finding{'s' * (len(report.findings) != 1)} ({parts})"
    else:
        head = _NO_FINDINGS.get(report.outcome, "clean")
    extra = []
    if report.cut:
        extra.append(f"{report.cut} more not shown")
    if report.dismissed:
        extra.append(f"{report.dismissed} dismissed")
    model = report.model or "no model"
    if report.model_status == "off":
        model = "offline rules only"
    elif report.cached:
        model += f", {report.cached} answer{'s' * (report.cached != 1)} from the cache"
    cost = [f"{report.tokens:,} tokens", f"{report.seconds:.1f} s", model]
    return " · ".join([head, *extra, *cost])


def to_sarif(report: ReviewReport) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for finding in report.findings:
        rule_id = finding.rule or "memory"
        rules.setdefault(
            rule_id,
            {
                "id": rule_id,
                "shortDescription": {
                    "text": finding.message if finding.rule else "A convention in memory"
                },
            },
        )
        result: dict[str, Any] = {
            "ruleId": rule_id,
            "level": finding.severity,
            "message": {"text": _sarif_message(finding)},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": finding.path, "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": finding.line},
                    }
                }
            ],
            "partialFingerprints": {"mcodeFindingId/v1": finding.id},
        }
        if finding.snippet:
            region = result["locations"][0]["physicalLocation"]["region"]
            region["snippet"] = {"text": finding.snippet}
        results.append(result)
    driver = {
        "name": "mcode-review",
        "version": __version__,
        "rules": list(rules.values()),
    }
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }


def _sarif_message(finding: Finding) -> str:
    text = finding.message
    if finding.basis and not finding.rule:
        text += f' (memory: "{finding.basis}")'
    return text


def to_github(report: ReviewReport) -> str:
    lines = []
    for finding in report.findings:
        level = _GITHUB_LEVEL[finding.severity]
        title = _property(f"mcode review: {finding.rule or 'memory'}")
        where = f"file={_property(finding.path)},line={finding.line},title={title}"
        lines.append(f"::{level} {where}::{_data(_sarif_message(finding))}")
    lines.append(summary(report))
    return "\n".join(lines)


def _data(text: str) -> str:
    """A workflow command's message, escaped as the runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
