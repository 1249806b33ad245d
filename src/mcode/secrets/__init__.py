"""The one place that knows what a secret looks like: by a file's name, a setting's name, or text.

- `is_secret_path(path)`: a file that holds credentials by its name (`.env`, `id_rsa`, `.pgpass`,
  `terraform.tfstate`…); never indexed, read only when the user agrees.
- `is_secret_name(name)`: a setting, field or variable that holds a secret (`api_key`, `apiKey`,
  `GITHUB_TOKEN`, `password`; not `max_tokens`).
- `find_secrets(text)` / `redact(text)`: secret values in any text (keys and tokens by their shape,
  literals assigned to secret names, PEM private keys, URL passwords); `redact` replaces each with
  `[REDACTED:kind]` and keeps everything else, line breaks included, so that line numbers and the
  code around a secret stay right. Redacting twice changes nothing more.
- `redact_data(data)` / `blank_secrets(data)`: the same for JSON-like data; `blank_secrets`, for
  Agent File exports, also empties values under secret names and strings that are only a secret.
- `share(path, text)` / `storable(text)`: a secret file the user agreed to share reaches the model
  whole, under a header; `storable` is what may be kept on disk of any text the model saw (the
  header alone for a shared file, the redacted text for anything else).

Nothing here imports the rest of mcode, so every layer may use it.
"""

from mcode.secrets.content import REDACTED, Secret, find_secrets, marker, redact
from mcode.secrets.names import is_secret_name, mentions_secret
from mcode.secrets.paths import is_secret_path
from mcode.secrets.shared import share, storable
from mcode.secrets.structured import blank_secrets, redact_data

__all__ = [
    "REDACTED",
    "Secret",
    "blank_secrets",
    "find_secrets",
    "is_secret_name",
    "is_secret_path",
    "marker",
    "mentions_secret",
    "redact",
    "redact_data",
    "share",
    "storable",
]
