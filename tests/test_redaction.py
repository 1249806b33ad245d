"""Secrets never reach a model or a file mcode keeps: the index, tool output, `.git/config`,
transcripts and Agent File exports are redacted with the one detector (`mcode.secrets`).

Every key below is made up, and spelled in pieces so that this file is not itself a leak.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.repos import make_repo, mcode_env, opened_index, run_mcode

AWS_ID = "AKIA" + "Z7Q2XK4M9TRW3BNP"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCY3XAMPLEKEY"
GITHUB = "gh" + "p_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
SETTINGS = f'''"""Deployment settings."""

AWS_ACCESS_KEY_ID = "{AWS_ID}"
AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"
AWS_REGION = "eu-west-1"


def upload_bucket_name() -> str:
    """The bucket that receives nightly uploads."""
    return "nightly-uploads"
'''
# Files that hold nothing but credentials, by name: never indexed at all.
SECRET_FILES = {
    ".envrc": f"export GITHUB_TOKEN={GITHUB}\n",
    "deploy/prod.env": f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}\n",
    ".pgpass": "db.example.com:5432:app:app:Xy7pq2Lm\n",
    ".vault-token": "hvs.CAESIJ3c2VjcmV0dG9rZW4\n",
    "ops/credentials": f"[default]\naws_secret_access_key = {AWS_SECRET}\n",
    "kubeconfig": "users:\n- name: admin\n  user:\n    token: Zq8vX2mN4pL7rT1wY6sK3d\n",
    "infra/terraform.tfstate": '{"outputs": {"db_password": {"value": "Xy7pq2Lm"}}}\n',
}


# Index time ---------------------------------------------------------------------------------------


@pytest.fixture
def secret_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"app/settings.py": SETTINGS, **SECRET_FILES})


def test_secret_values_never_reach_the_index_and_search_never_returns_them(
    secret_repo: Path, tmp_path: Path
) -> None:
    env = mcode_env(tmp_path / "home", MCODE_EMBEDDING_MODEL="none")
    out = run_mcode(["index", "--json", "--repo", str(secret_repo)], env)
    assert out.returncode == 0, out.stderr
    assert sorted(json.loads(out.stdout)["skipped"]["secret"]["paths"]) == sorted(SECRET_FILES)

    for query in ("AWS_SECRET_ACCESS_KEY", AWS_SECRET, AWS_ID, "nightly uploads bucket"):
        out = run_mcode(["search", query, "--json", "--repo", str(secret_repo)], env)
        assert out.returncode == 0, out.stderr
        for hit in json.loads(out.stdout)["results"]:
            assert hit["path"] == "app/settings.py"
            assert AWS_SECRET not in hit["snippet"] and AWS_ID not in hit["snippet"]

    with opened_index(secret_repo, tmp_path / "home") as indexer:
        rows = [row for batch in indexer.store.scan(with_text=True) for row in batch.to_pylist()]
    stored = json.dumps(rows, default=str)
    assert "settings.py" in stored and "upload_bucket_name" in stored
    assert AWS_SECRET not in stored and AWS_ID not in stored
    module = next(r for r in rows if r["path"] == "app/settings.py" and r["start_line"] == 1)
    assert 'AWS_SECRET_ACCESS_KEY = "[REDACTED:aws-secret]"' in module["text"]
    function = next(r for r in rows if r["symbol"] == "upload_bucket_name")
    assert function["start_line"] == 8  # the file's own line numbers
