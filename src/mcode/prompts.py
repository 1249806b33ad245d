"""Finding the prompt templates: Markdown files under the top-level `prompts/`, loaded at run time.

They live outside the package so that they read, diff and review as documents. A source checkout
(the editable install) finds them beside `src/`; a wheel installs them under `<prefix>/share/mcode/`.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path


class PromptNotFoundError(Exception):
    """A template mcode needs is missing from every place it looks."""


@cache
def prompts_dir() -> Path:
    candidates = [
        Path(__file__).resolve().parents[2] / "prompts",  # src/mcode/prompts.py -> the checkout
        Path(sys.prefix) / "share" / "mcode" / "prompts",  # a wheel's data files
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def prompt_path(name: str) -> Path:
    """The path of a template, `name` relative to `prompts/` (for example "blocks/project.md")."""
    return prompts_dir() / name


def load_prompt(name: str) -> str:
    path = prompt_path(name)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PromptNotFoundError(f"prompt template {name} is missing ({path})") from exc
