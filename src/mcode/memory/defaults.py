"""The default blocks and where their starting text comes from.

The templates live in the top-level `prompts/blocks/`, found through `mcode.prompts`.
"""

from __future__ import annotations

from mcode.prompts import PromptNotFoundError, load_prompt

# label -> the scope it is created in. The user's persona and preferences follow them to every repo;
# the project's conventions and lessons belong to the repo and its team.
DEFAULT_BLOCKS: dict[str, str] = {
    "persona": "user",
    "human": "user",
    "project": "project",
    "lessons": "project",
}


def template_text(label: str) -> str | None:
    """The default block file text for `label`, or None when there is no template for it."""
    if label not in DEFAULT_BLOCKS:
        return None
    try:
        return load_prompt(f"blocks/{label}.md")
    except PromptNotFoundError:
        return None
