"""Which files hold secrets, judged by name before a file is opened.

Gitignore-style patterns, any depth. Such files are never indexed, are left out of grep and diffs,
and are read only when the user says so. Templates such as `.env.example` hold no secrets and stay
readable.
"""

from __future__ import annotations

from functools import cache

from pathspec import GitIgnoreSpec

SECRET_PATTERNS: tuple[str, ...] = (
    # Environment files: `.env`, `.env.production`, `prod.env`, direnv's `.envrc`.
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "!.env.example",
    "!.env.sample",
    "!.env.template",
    "!.env.dist",
    "!.env.defaults",
    "!example.env",
    "!sample.env",
    "!template.env",
    "!*.example.env",
    "!*.sample.env",
    # Keys and keystores.
    "*.pem",
    "*.key",
    "*.p12",
    "*.p8",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.keytab",
    "*.kdbx",
    "*.gpg",
    "*.ppk",
    "*.ovpn",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "!*.pub",
    # Credential files of common tools.
    "credentials",
    "credentials.json",
    "credentials.yml",
    "credentials.yaml",
    "credentials.toml",
    "credentials.csv",
    "*-credentials.json",
    "client_secret*.json",
    "service-account*.json",
    ".npmrc",
    ".pypirc",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".my.cnf",
    ".s3cfg",
    ".boto",
    ".vault-token",
    ".git-credentials",
    ".htpasswd",
    ".dockercfg",
    "**/.docker/config.json",
    "**/.aws/credentials",
    "kubeconfig",
    "kubeconfig.*",
    "*.kubeconfig",
    "**/.kube/config",
    # Terraform state holds every secret the resources were created with.
    "*.tfstate",
    "*.tfstate.backup",
    "*.tfvars",
    ".terraformrc",
    "terraform.rc",
    ".secrets",
    "secrets.yml",
    "secrets.yaml",
    "secrets.json",
    "secrets.toml",
)


@cache
def _spec() -> GitIgnoreSpec:
    return GitIgnoreSpec.from_lines(SECRET_PATTERNS)


def is_secret_path(path: str) -> bool:
    """Whether a repo-relative POSIX path names a file that probably holds credentials."""
    return bool(path) and bool(_spec().match_file(path.lstrip("/")))
