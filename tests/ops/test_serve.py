"""Tried as a new user would: `coursegate serve` on a fresh SQLite file, a tenant, a key.

Also captures every log line the server writes while it is handed an API key,
a bearer token and a secret, and shows none of them appears.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

PROJECT = Path(__file__).parent.parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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


def test_serve_from_nothing_to_an_authenticated_whoami(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "COURSEGATE_VAR_DIR": str(tmp_path / "var"),
        "COURSEGATE_DATABASE_URL": "",  # empty means unset: the embedded default file
        "COURSEGATE_LOG_LEVEL": "DEBUG",
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "coursegate", "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    secret = "whsec_ThisIsASecretThatMustNotBeLogged0"
    token = "eyJraWQiOiJ0b2tlbi1ub3QtdG8tbG9nIn0.e30.c2ln"
    try:
        started = time.monotonic()
        ready = None
        while time.monotonic() - started < 30:
            assert server.poll() is None, log_path.read_text()[-3000:]
            try:
                ready = httpx.get(f"{base}/readyz", timeout=1)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert ready is not None
        assert ready.status_code == 200, ready.text
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
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    logs = log_path.read_text()
    assert '"event": "request"' in logs  # the server did log those requests
    for leaked in (acme, globex, acme.split("_", 2)[2], token, secret):
        assert leaked not in logs
