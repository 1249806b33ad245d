"""A secret file the user agreed to share: the model sees it whole, the transcript never keeps it.

The tool that read it puts a header line above its output (`share`); `storable` is what may be
written to disk of any text that reached the model: for a shared secret file, the header alone;
for anything else, the text with secret values redacted. The header can only withhold more, so a
command that prints it to fool the transcript hides nothing but its own output.
"""

from __future__ import annotations

from mcode.secrets.content import redact

_HEADER = (
    "[The secret file {path}, shared with the user's approval; the transcript does not keep it.]"
)
_HEAD = _HEADER.split("{", 1)[0]


def share(path: str, text: str) -> str:
    """`text`, read from the secret file `path` with the user's approval, marked as such."""
    return _HEADER.format(path=path) + "\n" + text


def storable(text: str) -> str:
    """What may be kept on disk of `text`: a shared secret file's header alone, else `text`
    redacted."""
    if text.startswith(_HEAD):
        return text.split("\n", 1)[0]
    return redact(text)
