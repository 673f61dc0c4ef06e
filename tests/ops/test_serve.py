"""Tried as a new user would: `coursegate serve` on a fresh SQLite file, a tenant, a key.

Also captures every log line the server writes while it is handed an API key,
a bearer token and a secret, and shows none of them appears.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import servers


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "coursegate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


@pytest.mark.long
def test_serve_from_nothing_to_an_authenticated_whoami(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "COURSEGATE_VAR_DIR": str(tmp_path / "var"),
        "COURSEGATE_DATABASE_URL": "",  # empty means unset: the embedded default file
        "COURSEGATE_LOG_LEVEL": "DEBUG",
    }
    secret = "whsec_ThisIsASecretThatMustNotBeLogged0"
    token = "eyJraWQiOiJ0b2tlbi1ub3QtdG8tbG9nIn0.e30.c2ln"
    with servers.running(["serve"], env, tmp_path / "serve.log", cwd=tmp_path) as server:
        base = server.url
        assert (tmp_path / "var" / "coursegate.db").exists()
        acme = json.loads(_cli(env, "tenants", "create", "acme", "--json"))["api_key"]
        globex = json.loads(_cli(env, "tenants", "create", "globex", "--json"))["api_key"]
        who = httpx.get(f"{base}/v1/whoami", headers={"Authorization": f"Bearer {acme}"})
        assert who.status_code == 200
        assert who.json()["tenant"]["id"] == "acme"
        acme_key = who.json()["api_key"]["id"]
        other = httpx.get(
            f"{base}/v1/api-keys/{acme_key}", headers={"Authorization": f"Bearer {globex}"}
        )
        assert other.status_code == 404

        # Requests carrying secrets in every place a client might put them.
        httpx.get(
            f"{base}/v1/whoami?access_token={token}", headers={"Authorization": f"Bearer {token}"}
        )
        httpx.patch(
            f"{base}/v1/tenant",
            headers={"Authorization": f"Bearer {acme}"},
            json={"secret": secret, "timezone": "UTC"},
        )
        httpx.get(f"{base}/v1/whoami", headers={"Authorization": f"Bearer {acme}x"})
        metrics = httpx.get(f"{base}/metrics").text
        assert 'route="/v1/whoami",status="200"' in metrics
        assert 'route="/v1/whoami",status="401"' in metrics
        assert "coursegate_http_request_duration_seconds_bucket" in metrics
    logs = server.output()
    assert '"event": "request"' in logs  # the server did log those requests
    for leaked in (acme, globex, acme.split("_", 2)[2], token, secret):
        assert leaked not in logs
