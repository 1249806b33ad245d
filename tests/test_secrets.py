"""The secret detector: files by name, settings by name, and values in any text by content.

Every key below is made up, and spelled in pieces so that this file is not itself a leak.
"""

from __future__ import annotations

import time

import pytest

from mcode.secrets import find_secrets, is_secret_name, is_secret_path, redact

AWS_ID = "AKIA" + "Z7Q2XK4M9TRW3BNP"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCY3XAMPLEKEY"
GITHUB = "gh" + "p_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
GITHUB_PAT = "github" + "_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789ABCDEFGHIJKLMN"
GITLAB = "gl" + "pat-x2Yz8Qw4Er6Ty1Ui3Op5"
SLACK = "xo" + "xb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUv"
STRIPE = "sk" + "_live_4eC39HqLyjWDarjtT1zdp7dc"
OPENAI = "sk" + "-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
OPENAI_OLD = "sk" + "-" + "Ab1" * 16
ANTHROPIC = "sk" + "-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
GOOGLE = "AI" + "zaSyD4X9-AbCdEfGhIjKlMnOpQrStUvWxYz01"
JWT = (
    "ey"
    + "JhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
PEM_BODY = ["MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB", "aFDrBz9vFqU4yB=="]
PEM = "\n".join(
    ["-----BEGIN RSA " + "PRIVATE KEY-----", *PEM_BODY, "-----END RSA " + "PRIVATE KEY-----"]
)


# Files by name ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "deploy/prod.env",
        ".env.production",
        ".envrc",
        "home/.pgpass",
        ".vault-token",
        "credentials",
        "ops/.aws/credentials",
        "kubeconfig",
        "home/.kube/config",
        "infra/terraform.tfstate",
        "infra/terraform.tfstate.backup",
        "prod.tfvars",
        "id_ed25519",
        "certs/server.key",
        ".netrc",
        ".git-credentials",
    ],
)
def test_files_that_hold_credentials_are_secret_by_name(path: str) -> None:
    assert is_secret_path(path)


@pytest.mark.parametrize(
    "path",
    [".env.example", "example.env", "id_ed25519.pub", "settings.py", "credentials.py", "env.py"],
)
def test_templates_public_keys_and_code_are_not_secret_by_name(path: str) -> None:
    assert not is_secret_path(path)


# Settings by name ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["api_key", "apiKey", "OPENAI_API_KEY", "github_token", "password", "DB_PASS", "client_secret",
     "Authorization", "keys", "ssh_key", "x-api-key", "aws_secret_access_key"],
)  # fmt: skip
def test_names_that_hold_secrets(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["max_tokens", "token_type", "password_hint", "secret_name", "key", "monkey", "author"]
)
def test_names_that_do_not(name: str) -> None:
    assert not is_secret_name(name)


# Values by content --------------------------------------------------------------------------------


def kinds(text: str) -> list[str]:
    return [s.kind for s in find_secrets(text)]


@pytest.mark.parametrize(
    ("line", "secret", "kind"),
    [
        (f'AWS_ACCESS_KEY_ID = "{AWS_ID}"', AWS_ID, "aws-access-key"),
        (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, "aws-secret"),
        (f'"SecretAccessKey": "{AWS_SECRET}",', AWS_SECRET, "secret"),
        (f"export GH={GITHUB}", GITHUB, "github-token"),
        (f"token: {GITHUB_PAT}", GITHUB_PAT, "github-token"),
        (f"CI_JOB = '{GITLAB}'", GITLAB, "gitlab-token"),
        (f"slack_client = WebClient('{SLACK}')", SLACK, "slack-token"),
        (f"stripe.api_key = '{STRIPE}'", STRIPE, "stripe-key"),
        (f"client = OpenAI(api_key='{OPENAI}')", OPENAI, "openai-key"),
        (f"key: {OPENAI_OLD}", OPENAI_OLD, "openai-key"),
        (f"ANTHROPIC_API_KEY={ANTHROPIC}", ANTHROPIC, "anthropic-key"),
        (f"const maps = loadMaps('{GOOGLE}');", GOOGLE, "google-key"),
        (f"Cookie: session={JWT}", JWT, "jwt"),
        ("url = https://deploy:s3cr3t-T0ken@github.com/o/r.git", "s3cr3t-T0ken", "url-password"),
        ("DATABASE_URL=postgres://app:Xy7pq2Lm@db:5432/app", "Xy7pq2Lm", "url-password"),
        ('password = "hunter2"', "hunter2", "password"),
        ("db_password: correct-horse-battery", "correct-horse-battery", "password"),
        ("PASSWD=hunter22", "hunter22", "password"),
        ('[db]\npassword = "Tr0ub4dor&3"', "Tr0ub4dor&3", "password"),
        ('connect(host, password="n0t-a-w0rd", user="app")', "n0t-a-w0rd", "password"),
        ('password: str = "pa55word!"', "pa55word!", "password"),
        ("$config['db_pass'] => 'm4ngo-tango';", "m4ngo-tango", "password"),
        ('"apiKey": "Zq8vX2mN4pL7rT1wY6sK3d",', "Zq8vX2mN4pL7rT1wY6sK3d", "secret"),
        ("SECRET_KEY = 'django-insecure-7f$k2@x9qz'", "django-insecure-7f$k2@x9qz", "secret"),
        ("export API_TOKEN='q9W8e7R6t5Y4u3I2'", "q9W8e7R6t5Y4u3I2", "secret"),
        ('-H "Authorization: Bearer abcDEF123456ghiJKL789"', "abcDEF123456ghiJKL789", "secret"),
        ("  extraheader = AUTHORIZATION: basic eDphYmNkZWYxMjM0NTY=", "eDphYmNkZWYxMjM0NTY=", "secret"),
        ('SIGNING_KEY_V2 = "Zq8vX2mN4pL7rT1wY6sK3dPq"', "Zq8vX2mN4pL7rT1wY6sK3dPq", "secret"),
    ],
)  # fmt: skip
def test_each_format_is_found_and_only_its_value_redacted(
    line: str, secret: str, kind: str
) -> None:
    found = find_secrets(line)
    assert [line[s.start : s.end] for s in found] == [secret]
    assert [s.kind for s in found] == [kind]
    assert redact(line) == line.replace(secret, f"[REDACTED:{kind}]")


def test_a_pem_private_key_keeps_its_markers_and_its_lines() -> None:
    text = f"key = '''\n{PEM}\n'''\nprint(key)\n"
    redacted = redact(text)
    assert redacted.splitlines() == [
        "key = '''",
        "-----BEGIN RSA PRIVATE KEY-----",
        "[REDACTED:private-key]",
        "",
        "-----END RSA PRIVATE KEY-----",
        "'''",
        "print(key)",
    ]
    escaped = '{"private_key": "' + PEM.replace("\n", "\\n") + '\\n"}'
    assert all(part not in redact(escaped) for part in PEM_BODY)
    cut_short = PEM.rsplit("\n", 1)[0]  # a page of a file that ends inside the key
    assert all(part not in redact(cut_short) for part in PEM_BODY)


@pytest.mark.parametrize(
    "line",
    [
        "password = getpass()",
        "token = tokens[0]",
        'key = "name"',
        "for token in tokens:",
        "login(user, password=password)",
        'password = os.environ["PASSWORD"]',
        "api_key = settings.api_key",
        "RC2_KEY = rc2_key_st",
        'token = "${GITHUB_TOKEN}"',
        'password = "<your password>"',
        'password = "changeme"',
        'api_key_env = "OPENAI_API_KEY"',
        'prompt = "Enter your password: "',
        'if password == "":',
        "password: str",
        "token: Optional[str] = None",
        'expected_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"',
        'fixture_key_digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"',
        'request_id = "123e4567-e89b-12d3-a456-426614174000"',
        'auth_header = "Proxy-Authorization"',
        "keyUsage = critical,keyEncipherment,digitalSignature",
        "url = https://user:password@example.com/",
        "git@github.com:owner/repo.git",
        'max_tokens = 4096',
        "import secrets; token = secrets.token_hex(16)",
        "    pass",
        "Authorization: Bearer <token>",
    ],
)  # fmt: skip
def test_ordinary_code_is_left_alone(line: str) -> None:
    assert find_secrets(line) == []
    assert redact(line) == line


def test_redacting_keeps_every_line_and_the_code_around_the_secrets() -> None:
    text = (
        "import boto3\n"
        f'AWS_ACCESS_KEY_ID = "{AWS_ID}"  # from the console\n'
        f"AWS_SECRET_ACCESS_KEY = '{AWS_SECRET}'\n"
        "\n"
        "def client():\n"
        "    return boto3.client('s3')\n"
    )
    redacted = redact(text)
    assert AWS_ID not in redacted and AWS_SECRET not in redacted
    assert redacted.splitlines() == [
        "import boto3",
        'AWS_ACCESS_KEY_ID = "[REDACTED:aws-access-key]"  # from the console',
        "AWS_SECRET_ACCESS_KEY = '[REDACTED:aws-secret]'",
        "",
        "def client():",
        "    return boto3.client('s3')",
    ]
    assert redact(redacted) == redacted  # a second pass finds nothing more


def test_offsets_are_the_texts_even_after_characters_whose_lower_case_is_longer() -> None:
    text = f"İİİ = 1\npassword = 'hunter2'  # İ\ntoken = '{GITHUB}'\n"
    assert redact(text) == (
        "İİİ = 1\npassword = '[REDACTED:password]'  # İ\ntoken = '[REDACTED:github-token]'\n"
    )


def test_no_text_no_secrets() -> None:
    assert find_secrets("") == [] and redact("") == ""
    assert kinds("just prose about keys, tokens and passwords") == []


@pytest.mark.parametrize(
    "text",
    [
        "key" * 300_000,
        "eyJ" * 300_000,
        "sk-" * 300_000,
        "xoxb-" * 200_000,
        "password=" * 100_000,
        "password: a" + " " * 1_000_000 + "b",
        "-----BEGIN PRIVATE " + "KEY-----" + " " * 1_000_000 + "!",
        ("-----BEGIN PRIVATE " + "KEY-----\n") * 30_000,
        "://a:" + "b" * 1_000_000,
    ],
    ids=["key", "jwt", "sk", "slack", "assignments", "spaces", "pem", "pems", "url"],
)
def test_a_hostile_file_cannot_stall_the_scan(text: str) -> None:
    """Every pattern is bounded: a megabyte built to make regexes backtrack costs well under a
    second, where unbounded ones took minutes (the ceiling is generous for a busy machine)."""
    started = time.monotonic()
    find_secrets(text)
    assert time.monotonic() - started < 20
