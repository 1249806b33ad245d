"""The one place that knows what a secret looks like: by a file's name, a setting's name, or text.

- `is_secret_path(path)`: a file that holds credentials by its name (`.env`, `id_rsa`, `.pgpass`,
  `terraform.tfstate`…); never indexed, read only when the user agrees.
- `is_secret_name(name)`: a setting, field or variable that holds a secret (`api_key`, `apiKey`,
  `GITHUB_TOKEN`, `password`; not `max_tokens`).
- `find_secrets(text)` / `redact(text)`: secret values in any text (keys and tokens by their shape,
  literals assigned to secret names, PEM private keys, URL passwords); `redact` replaces each with
  `[REDACTED:kind]` and keeps everything else, line breaks included, so that line numbers and the
  code around a secret stay right. Redacting twice changes nothing more.

Nothing here imports the rest of mcode, so every layer may use it.
"""

from mcode.secrets.content import REDACTED, Secret, find_secrets, marker, redact
from mcode.secrets.names import is_secret_name, mentions_secret
from mcode.secrets.paths import is_secret_path

__all__ = [
    "REDACTED",
    "Secret",
    "find_secrets",
    "is_secret_name",
    "is_secret_path",
    "marker",
    "mentions_secret",
    "redact",
]
