"""The default blocks and where their starting text comes from.

Seam: the templates live in the repository's top-level `prompts/blocks/`, outside the package, and
are found relative to this file (which works for the editable install). When `mcode.prompts` exists
it should own locating `prompts/` for every caller; only `template_text` here needs to change.
"""

from __future__ import annotations

from pathlib import Path

# label -> the scope it is created in. The user's persona and preferences follow them to every repo;
# the project's conventions and lessons belong to the repo and its team.
DEFAULT_BLOCKS: dict[str, str] = {
    "persona": "user",
    "human": "user",
    "project": "project",
    "lessons": "project",
}


def prompts_dir() -> Path:
    """The top-level `prompts/` of the source tree: src/mcode/memory/defaults.py -> parents[3]."""
    return Path(__file__).resolve().parents[3] / "prompts"


def template_text(label: str) -> str | None:
    """The default block file text for `label`, or None when there is no template for it."""
    if label not in DEFAULT_BLOCKS:
        return None
    try:
        return (prompts_dir() / "blocks" / f"{label}.md").read_text(encoding="utf-8")
    except OSError:
        return None
