"""The CLI works on the database directly, with the server's settings.

Commands run in this process (tests/cli.py); the refusals to start run as real
processes, since what they guard is a process starting.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from coursegate.config import Settings
from tests.cli import run_cli


def test_tenants_create_json_prints_one_line(settings: Settings) -> None:
    result = run_cli(
        settings, "tenants", "create", "acme", "--timezone", "America/Denver", "--json"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert payload["tenant"] == "acme"
    assert payload["api_key"].startswith("cg_")
    assert set(payload) == {"tenant", "api_key"}
    assert payload["api_key"] not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tenants", "create", "Bad Slug", "--json"], "VALIDATION_ERROR"),
        (["tenants", "create", "zed", "--timezone", "Nowhere/Land"], "VALIDATION_ERROR"),
        (["tenants", "create", "zed", "--contact-email", "nope"], "VALIDATION_ERROR"),
        (["keys", "create", "--tenant", "nobody"], "NOT_FOUND"),
        (["keys", "revoke", "not-a-uuid", "--tenant", "acme"], "NOT_FOUND"),
    ],
)
def test_bad_cli_input_fails_clearly(settings: Settings, args: list[str], message: str) -> None:
    assert run_cli(settings, "tenants", "create", "acme", "--json").returncode == 0
    result = run_cli(settings, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stdout == ""


def test_duplicate_tenant_is_refused(settings: Settings) -> None:
    assert run_cli(settings, "tenants", "create", "acme").returncode == 0
    again = run_cli(settings, "tenants", "create", "acme", "--json")
    assert again.returncode == 1
    assert "ALREADY_EXISTS" in again.stderr


def test_keys_of_one_tenant_cannot_be_revoked_as_another(settings: Settings) -> None:
    assert run_cli(settings, "tenants", "create", "acme").returncode == 0
    assert run_cli(settings, "tenants", "create", "globex").returncode == 0
    created = json.loads(run_cli(settings, "keys", "create", "--tenant", "acme", "--json").stdout)
    wrong = run_cli(settings, "keys", "revoke", created["id"], "--tenant", "globex")
    assert wrong.returncode == 1
    assert "NOT_FOUND" in wrong.stderr
    right = run_cli(settings, "keys", "revoke", created["id"], "--tenant", "acme")
    assert right.returncode == 0, right.stderr


def test_production_without_a_master_key_refuses_to_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coursegate", "db", "upgrade"],
        env={
            "PATH": "/usr/bin:/bin",
            "COURSEGATE_ENV": "production",
            "COURSEGATE_SECRET_KEY": "",
            "COURSEGATE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "COURSEGATE_SECRET_KEY is required" in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_malformed_master_key_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coursegate", "db", "upgrade"],
        env={
            "PATH": "/usr/bin:/bin",
            "COURSEGATE_SECRET_KEY": "not-a-fernet-key",
            "COURSEGATE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "not a Fernet key" in result.stderr
    assert "not-a-fernet-key" not in result.stderr


def test_embedded_mode_keeps_one_generated_master_key(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var", _env_file=None)
    first = settings.master_key()
    assert settings.master_key() == first
    assert (tmp_path / "var" / "master.key").stat().st_mode & 0o777 == 0o600
