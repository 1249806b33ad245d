"""Memory for review tests: a project block with one convention the model can quote, and a lessons
block carrying one offline rule."""

from __future__ import annotations

CONVENTION = "Library code never calls print(); it logs through the logging module."
PROJECT = f"---\ndescription: conventions\nlimit: 6000\n---\n## Conventions\n- {CONVENTION}\n"
TODO_MESSAGE = "Open an issue instead of leaving a TODO."


def lessons(severity: str = "error") -> str:
    """The lessons block: a rule against TODO at `severity`, and one lesson line."""
    return (
        "---\ndescription: lessons\nlimit: 4000\nrules:\n- id: no-todo\n"
        f"  pattern: '\\bTODO\\b'\n  message: {TODO_MESSAGE}\n  severity: {severity}\n---\n"
        "- Run the tests before committing.\n"
    )


def report(*findings: dict[str, object]) -> list[tuple[str, dict[str, object]]]:
    """The model's answer: one `report_findings` call with these findings."""
    return [("report_findings", {"findings": list(findings)})]
