"""Which files hold secrets, so that their contents reach the model only when the user says so.

The judgement is by name alone (gitignore-style patterns, any depth), because it must be made
before a file is opened. Templates such as `.env.example` hold no secrets and stay readable.
"""

from __future__ import annotations

from functools import cache

from pathspec import GitIgnoreSpec

SECRET_PATTERNS: tuple[str, ...] = (
    ".env",
    ".env.*",
    "!.env.example",
    "!.env.sample",
    "!.env.template",
    "!.env.dist",
    "!.env.defaults",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "*.gpg",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "!*.pub",
    "credentials.json",
    "client_secret*.json",
    "service-account*.json",
    ".npmrc",
    ".pypirc",
    ".netrc",
    ".git-credentials",
    ".htpasswd",
    ".dockercfg",
    ".docker/config.json",
    ".aws/credentials",
    "*.tfvars",
    "secrets.yml",
    "secrets.yaml",
    "secrets.json",
)


@cache
def _spec() -> GitIgnoreSpec:
    return GitIgnoreSpec.from_lines(SECRET_PATTERNS)


def is_secret(path: str) -> bool:
    """Whether a repo-relative POSIX path names a file that probably holds credentials."""
    return bool(path) and bool(_spec().match_file(path.lstrip("/")))
