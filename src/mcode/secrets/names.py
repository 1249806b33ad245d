"""Which names hold a secret: a setting, a JSON field, a variable or an environment variable.

A name is a secret's when its last part says so: `password`, `DB_PASS`, `api_key`, `apiKey`,
`OPENAI_API_KEY`, `github_token`, `client_secret`, `Authorization`, `[keys]`. The last part, because
`max_tokens`, `token_type`, `password_hint` and `secret_name` hold no secret. A bare `key` is a
field's name (`{"key": "CI", "value": …}`, `sort(key=…)`), not a secret; `ssh_key` is one.
"""

from __future__ import annotations

import re

_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_PARTS = re.compile(r"[_.-]+")
SECRET_NAME = re.compile(
    r"(?:^|[_.-])(?:pass|passwd|password|passphrase|secrets?|token|auth|authorization|bearer"
    r"|credentials?|creds|keys)$|[_.-](?:key|pwd)$|(?:api|access|secret|private|session)key$"
)
# Words that make a name worth a look when its value is random, wherever they stand in it:
# `SECRET_ACCESS_KEY_ID`, `api_key_v2`, `token_value`.
_SECRET_WORDS_TEXT = """
    pass passwd password passphrase pwd secret secrets token auth credential credentials creds key
    apikey accesskey secretkey privatekey
"""
SECRET_WORDS = frozenset(_SECRET_WORDS_TEXT.split())


def snake_name(name: str) -> str:
    """`apiKey` -> `api_key`, `OPENAI_API_KEY` -> `openai_api_key`: one spelling to match."""
    return _CAMEL.sub(r"\1_\2", name.strip()).lower()


def is_secret_name(name: str) -> bool:
    """Whether a name (a setting, field, variable or environment variable) holds a secret."""
    return bool(SECRET_NAME.search(snake_name(name)))


def mentions_secret(name: str) -> bool:
    """Whether any part of a name is a secret's word (`SECRET_ACCESS_KEY_ID`, not `monkey`)."""
    return not SECRET_WORDS.isdisjoint(_PARTS.split(snake_name(name)))
