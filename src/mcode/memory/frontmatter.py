"""The block file format: Markdown with a YAML front matter (`description`, `limit`, `read_only`).

```
---
description: Conventions, architecture and the commands that build and test this project.
limit: 6000
read_only: false
---
The block's text, which is what the model sees.
```

The label is the file name, not a key. Keys mcode does not know are kept and written back, so a
team can annotate blocks without mcode dropping their notes. A file without front matter is a block
with the default metadata, so `echo "…" > .agentmemory/blocks/notes.md` just works.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Letta's historical per-block default: room for real notes, small enough to keep the prompt lean.
DEFAULT_LIMIT = 5000
_KNOWN_KEYS = ("description", "limit", "read_only")
_FENCE = "---"
_CLOSERS = ("---", "...")


class FrontMatterError(ValueError):
    """The front matter cannot be used; the message says what is wrong (the caller says where)."""


def normalize_value(value: str) -> str:
    """The stored form of a block's text: `\\n` line ends, no blank lines around it.

    Leading and trailing newlines carry no meaning in a block and would otherwise count against its
    limit and make a round trip through the file change the value.
    """
    return value.replace("\r\n", "\n").replace("\r", "\n").strip("\n")


@dataclass(frozen=True, slots=True)
class BlockContent:
    """What a block is, independent of where it is stored."""

    value: str
    description: str = ""
    limit: int = DEFAULT_LIMIT
    read_only: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def chars(self) -> int:
        return len(self.value)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "value": self.value,
            "description": self.description,
            "limit": self.limit,
            "read_only": self.read_only,
        }
        if self.extra:
            data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlockContent:
        meta = {k: data[k] for k in _KNOWN_KEYS if k in data}
        meta.update(data.get("extra") or {})
        return cls(value=str(data.get("value", "")), **_check_meta(meta))


def _check_meta(meta: dict[str, Any]) -> dict[str, Any]:
    description = meta.get("description")
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise FrontMatterError(f"description must be text, got {description!r}")
    limit = meta.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise FrontMatterError(f"limit must be a whole number of characters, got {limit!r}")
    if limit <= 0:
        raise FrontMatterError(f"limit must be positive, got {limit}")
    read_only = meta.get("read_only", False)
    if read_only is None:
        read_only = False
    if not isinstance(read_only, bool):
        raise FrontMatterError(f"read_only must be true or false, got {read_only!r}")
    extra = {k: v for k, v in meta.items() if k not in _KNOWN_KEYS}
    return {"description": description, "limit": limit, "read_only": read_only, "extra": extra}


def _split(text: str) -> tuple[str | None, str]:
    """(front matter source or None, body)."""
    lines = text.split("\n")
    if lines[0].rstrip() != _FENCE:
        return None, text
    for index in range(1, len(lines)):
        if lines[index].rstrip() in _CLOSERS:
            return "\n".join(lines[1:index]), "\n".join(lines[index + 1 :])
    raise FrontMatterError("front matter starts with '---' but has no closing '---' line")


def _load_yaml(source: str) -> dict[str, Any]:
    import yaml  # here, not at the top: `mcode --help` must not pay for it

    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at front matter line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FrontMatterError(f"invalid YAML{where}: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FrontMatterError("front matter must be 'key: value' lines")
    return {str(k): v for k, v in data.items()}


def parse_block_with_header(text: str) -> tuple[BlockContent, str | None]:
    """The content and the front matter exactly as written (None when the file has none).

    Keeping the source lets a write that leaves the metadata alone keep the user's YAML comments.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    source, body = _split(text)
    meta = _load_yaml(source) if source is not None else {}
    return BlockContent(value=normalize_value(body), **_check_meta(meta)), source


def parse_block(text: str) -> BlockContent:
    """A block file's text as content; FrontMatterError when the front matter is unusable."""
    return parse_block_with_header(text)[0]


def same_metadata(a: BlockContent, b: BlockContent) -> bool:
    return (a.description, a.limit, a.read_only, a.extra) == (
        b.description,
        b.limit,
        b.read_only,
        b.extra,
    )


def render_block(content: BlockContent, header: str | None = None) -> str:
    """The file text for `content`; `parse_block(render_block(c)) == c` for normalised values.

    `header` is front matter source to reuse verbatim; the caller vouches it parses to the same
    metadata as `content`.
    """
    if header is None:
        meta: dict[str, Any] = {
            "description": content.description,
            "limit": content.limit,
            "read_only": content.read_only,
            **content.extra,
        }
        import yaml

        header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100_000)
    elif header and not header.endswith("\n"):
        header += "\n"
    body = normalize_value(content.value)
    return f"{_FENCE}\n{header}{_FENCE}\n{body}\n" if body else f"{_FENCE}\n{header}{_FENCE}\n"
