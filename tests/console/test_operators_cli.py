"""`coursegate operators create|list|disable|reset-password` (SPEC §9): passwords shown once,
hashed with Argon2id, refusals as the API's codes."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from coursegate.config import Settings
from coursegate.db import Database
from coursegate.models import Operator
from coursegate.operators import passwords
from tests.cli import run_cli


def _tenants(settings: Settings) -> None:
    for slug in ("acme", "globex"):
        assert run_cli(settings, "tenants", "create", slug).returncode == 0


async def test_create_prints_the_password_once_and_stores_only_its_hash(
    settings: Settings, database: Database
) -> None:
    _tenants(settings)
    result = run_cli(
        settings,
        "operators",
        "create",
        "Ann@Acme.test",
        "--tenant",
        "acme",
        "--role",
        "admin",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    payload = json.loads(line)
    assert set(payload) == {"email", "role", "password"}
    assert payload["email"] == "ann@acme.test"
    assert payload["role"] == "admin"
    assert len(payload["password"]) >= 20
    async with database.transaction() as session:
        row = await session.scalar(select(Operator).where(Operator.tenant_id == "acme"))
    assert row is not None
    assert payload["password"] not in row.password_hash
    assert row.password_hash.startswith("$argon2id$")
    assert await passwords.verify(row.password_hash, payload["password"])
    assert not await passwords.verify(row.password_hash, payload["password"] + "x")


def test_list_disable_and_reset_password(settings: Settings) -> None:
    _tenants(settings)
    for email, role in (("ann@acme.test", "admin"), ("bob@acme.test", "viewer")):
        args = ("operators", "create", email, "--tenant", "acme", "--role", role)
        assert run_cli(settings, *args).returncode == 0
    listed = json.loads(run_cli(settings, "operators", "list", "--tenant", "acme", "--json").stdout)
    assert [(o["email"], o["role"], o["disabled_at"]) for o in listed["data"]] == [
        ("ann@acme.test", "admin", None),
        ("bob@acme.test", "viewer", None),
    ]
    assert json.loads(
        run_cli(settings, "operators", "list", "--tenant", "globex", "--json").stdout
    ) == {"data": []}
    disabled = run_cli(
        settings, "operators", "disable", "bob@acme.test", "--tenant", "acme", "--json"
    )
    assert disabled.returncode == 0, disabled.stderr
    assert json.loads(disabled.stdout)["disabled_at"] is not None
    text = run_cli(settings, "operators", "list", "--tenant", "acme").stdout
    assert "bob@acme.test\tviewer\tdisabled" in text
    reset = run_cli(
        settings, "operators", "reset-password", "ann@acme.test", "--tenant", "acme", "--json"
    )
    assert reset.returncode == 0, reset.stderr
    assert set(json.loads(reset.stdout)) == {"email", "role", "password"}


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (
            ["operators", "create", "x@acme.test", "--tenant", "acme", "--role", "root"],
            "VALIDATION_ERROR",
        ),
        (
            ["operators", "create", "not-an-email", "--tenant", "acme", "--role", "viewer"],
            "VALIDATION_ERROR",
        ),
        (
            ["operators", "create", "x@acme.test", "--tenant", "nobody", "--role", "viewer"],
            "NOT_FOUND",
        ),
        (
            ["operators", "create", "ann@acme.test", "--tenant", "acme", "--role", "viewer"],
            "ALREADY_EXISTS",
        ),
        (["operators", "disable", "ann@acme.test", "--tenant", "globex"], "NOT_FOUND"),
        (["operators", "reset-password", "ann@acme.test", "--tenant", "globex"], "NOT_FOUND"),
        (["operators", "disable", "ann@acme.test", "--tenant", "acme"], "LAST_ADMIN"),
        (["operators", "list", "--tenant", "nobody"], "NOT_FOUND"),
    ],
    ids=[
        "bad-role",
        "bad-email",
        "unknown-tenant",
        "duplicate",
        "disable-cross-tenant",
        "reset-cross-tenant",
        "last-admin",
        "list-unknown-tenant",
    ],
)
def test_refusals_are_clear_and_change_nothing(
    settings: Settings, args: list[str], code: str
) -> None:
    _tenants(settings)
    create = ("operators", "create", "ann@acme.test", "--tenant", "acme", "--role", "admin")
    assert run_cli(settings, *create).returncode == 0
    result = run_cli(settings, *args)
    assert result.returncode == 1
    assert code in result.stderr
    assert result.stdout == ""
    listed = json.loads(run_cli(settings, "operators", "list", "--tenant", "acme", "--json").stdout)
    assert [(o["email"], o["role"], o["disabled_at"]) for o in listed["data"]] == [
        ("ann@acme.test", "admin", None)
    ]
