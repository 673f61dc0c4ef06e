"""POST/GET /v1/providers and their keys: referenced and generated secrets, rotation (SPEC §2, §7)."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.kit.signing import hmac_authorization_header, standard_webhook_headers
from tests.conftest import bearer
from tests.setup.helpers import create_program

T0_TEXT = "2026-06-10T12:00:00.000Z"
ENV_NAME = "COURSEGATE_TEST_SETUP_EDOVO_SECRET"


def details_of(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "VALIDATION_ERROR"
    return [(d["field"], d["constraint"]) for d in body["details"]]


def provider_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "edovo",
        "program_id": "co",
        "scheme": "hmac-authorization",
        "keys": [{"key_id": "k1"}],
    }
    body.update(overrides)
    return body


async def create_provider(client: httpx.AsyncClient, key: str, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/providers", headers=bearer(key), json=provider_body(**overrides)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def get_provider(
    client: httpx.AsyncClient, key: str, provider_id: str = "edovo"
) -> httpx.Response:
    return await client.get(f"/v1/providers/{provider_id}", headers=bearer(key))


async def provider_ids(client: httpx.AsyncClient, key: str) -> list[str]:
    response = await client.get("/v1/providers", headers=bearer(key), params={"limit": "500"})
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["data"]]


async def key_rows(database: Database, provider_id: str = "edovo") -> list[dict[str, Any]]:
    async with database.transaction() as session:
        result = await session.execute(
            text(
                "SELECT tenant_id, key_id, secret_ref, secret_encrypted FROM provider_keys"
                " WHERE provider_id = :provider ORDER BY tenant_id, key_id"
            ),
            {"provider": provider_id},
        )
        return [dict(row) for row in result.mappings()]


def completion_for_nobody() -> bytes:
    """A valid report about a person the program does not know: 422 once the signature holds."""
    return json.dumps(
        {
            "person_id": "nobody-999",
            "state_code": "US_CO",
            "course_id": "fin-lit-101",
            "course_name": "Financial Literacy",
            "content_hours": 1.5,
            "completed_at": "2026-06-10T10:00:00Z",
        }
    ).encode()


async def send_hmac(
    client: httpx.AsyncClient, clock: FrozenClock, path: str, key_id: str, secret: str
) -> httpx.Response:
    body = completion_for_nobody()
    timestamp = int(clock.now().timestamp())
    header = hmac_authorization_header(key_id, secret, "POST", path, timestamp, body)
    return await client.post(
        path, content=body, headers={"Authorization": header, "Content-Type": "application/json"}
    )


async def send_standard(
    client: httpx.AsyncClient, clock: FrozenClock, path: str, secret: str, msg_id: str
) -> httpx.Response:
    body = completion_for_nobody()
    headers = standard_webhook_headers(msg_id, [secret], body, clock.now())
    return await client.post(
        path, content=body, headers={**headers, "Content-Type": "application/json"}
    )


# --- create ---------------------------------------------------------------------------


async def test_create_with_a_generated_hmac_secret(client: httpx.AsyncClient, acme: str) -> None:
    await create_program(client, acme)
    response = await client.post("/v1/providers", headers=bearer(acme), json=provider_body())
    assert response.status_code == 201, response.text
    body = response.json()
    secret = body["keys"][0].pop("secret")
    assert body == {
        "id": "edovo",
        "program_id": "co",
        "scheme": "hmac-authorization",
        "inbound_path": "/v1/inbound/acme/edovo/completions",
        "keys": [
            {
                "key_id": "k1",
                "secret_ref": None,
                "generated": True,
                "created_at": T0_TEXT,
                "retired_at": None,
            }
        ],
        "created_at": T0_TEXT,
    }
    assert isinstance(secret, str)
    assert len(secret) >= 32
    assert not secret.startswith("whsec_")


async def test_create_with_a_generated_standard_webhooks_secret(
    client: httpx.AsyncClient, acme: str
) -> None:
    await create_program(client, acme)
    body = await create_provider(
        client, acme, scheme="standard-webhooks", keys=[{"key_id": "k1"}, {"key_id": "k2"}]
    )
    assert body["scheme"] == "standard-webhooks"
    secrets = [k["secret"] for k in body["keys"]]
    assert [k["key_id"] for k in body["keys"]] == ["k1", "k2"]
    assert all(k["generated"] is True for k in body["keys"])
    for secret in secrets:
        assert secret.startswith("whsec_")
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        assert 24 <= len(key) <= 64
    assert secrets[0] != secrets[1]


async def test_generated_secrets_are_shown_once(client: httpx.AsyncClient, acme: str) -> None:
    await create_program(client, acme)
    created = await create_provider(client, acme)
    secret = created["keys"][0]["secret"]
    added = await client.post(
        "/v1/providers/edovo/keys", headers=bearer(acme), json={"key_id": "k2"}
    )
    assert added.status_code == 201
    second = added.json()["secret"]

    fetched = await get_provider(client, acme)
    assert fetched.status_code == 200
    assert [set(k) for k in fetched.json()["keys"]] == [
        {"key_id", "secret_ref", "generated", "created_at", "retired_at"}
    ] * 2
    listed = await client.get("/v1/providers", headers=bearer(acme))
    retired = await client.delete("/v1/providers/edovo/keys/k1", headers=bearer(acme))
    for response in (fetched, listed, retired):
        assert response.status_code == 200
        assert secret not in response.text
        assert second not in response.text
        assert '"secret"' not in response.text
    assert [k["key_id"] for k in listed.json()["data"][0]["keys"]] == ["k1", "k2"]


async def test_the_generated_secret_is_stored_encrypted(
    client: httpx.AsyncClient, acme: str, database: Database, app: FastAPI
) -> None:
    await create_program(client, acme)
    created = await create_provider(client, acme)
    secret = created["keys"][0]["secret"]
    rows = await key_rows(database)
    assert len(rows) == 1
    row = rows[0]
    assert row["secret_ref"] is None
    assert row["secret_encrypted"]
    assert secret not in row["secret_encrypted"]
    # Not just encoded: only the master key turns it back into the secret.
    assert base64.urlsafe_b64encode(secret.encode()).decode() not in row["secret_encrypted"]
    assert app.state.secret_box.decrypt(row["secret_encrypted"]) == secret


async def test_an_env_reference_is_kept_as_a_reference(
    client: httpx.AsyncClient, acme: str, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_NAME, "the-real-secret-value-1234567890")
    await create_program(client, acme)
    response = await client.post(
        "/v1/providers",
        headers=bearer(acme),
        json=provider_body(keys=[{"key_id": "k1", "secret_ref": f"env:{ENV_NAME}"}]),
    )
    assert response.status_code == 201, response.text
    key = response.json()["keys"][0]
    assert key["secret_ref"] == f"env:{ENV_NAME}"
    assert key["generated"] is False
    assert key["secret"] is None
    assert "the-real-secret-value" not in response.text
    fetched = await get_provider(client, acme)
    assert fetched.json()["keys"][0]["secret_ref"] == f"env:{ENV_NAME}"
    assert "the-real-secret-value" not in fetched.text
    rows = await key_rows(database)
    assert rows[0]["secret_ref"] == f"env:{ENV_NAME}"
    assert rows[0]["secret_encrypted"] is None


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
async def test_an_env_reference_that_does_not_resolve_is_refused(
    client: httpx.AsyncClient,
    acme: str,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    value: str | None,
) -> None:
    if value is None:
        monkeypatch.delenv(ENV_NAME, raising=False)
    else:
        monkeypatch.setenv(ENV_NAME, value)
    await create_program(client, acme)
    response = await client.post(
        "/v1/providers",
        headers=bearer(acme),
        json=provider_body(keys=[{"key_id": "k1", "secret_ref": f"env:{ENV_NAME}"}]),
    )
    assert details_of(response) == [("keys.0.secret_ref", "invalid")]
    # The provider row written before the key failed was rolled back with it.
    assert (await get_provider(client, acme)).status_code == 404
    assert await provider_ids(client, acme) == []
    assert await key_rows(database) == []


async def test_the_failing_key_is_named_by_its_index(
    client: httpx.AsyncClient, acme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_NAME, raising=False)
    await create_program(client, acme)
    response = await client.post(
        "/v1/providers",
        headers=bearer(acme),
        json=provider_body(
            keys=[{"key_id": "k1"}, {"key_id": "k2", "secret_ref": f"env:{ENV_NAME}"}]
        ),
    )
    assert details_of(response) == [("keys.1.secret_ref", "invalid")]
    assert await provider_ids(client, acme) == []


async def test_a_file_reference_to_an_absolute_path(
    client: httpx.AsyncClient, acme: str, tmp_path: Path
) -> None:
    secret_file = tmp_path / "edovo-k1"
    secret_file.write_text("file-secret-value-0987654321\n")
    await create_program(client, acme)
    ref = f"file:{secret_file}"
    created = await create_provider(client, acme, keys=[{"key_id": "k1", "secret_ref": ref}])
    assert created["keys"][0]["secret_ref"] == ref
    assert created["keys"][0]["secret"] is None
    assert created["keys"][0]["generated"] is False
    assert "file-secret-value" not in json.dumps(created)


async def test_a_file_reference_that_cannot_be_read_is_refused(
    client: httpx.AsyncClient, acme: str, tmp_path: Path
) -> None:
    await create_program(client, acme)
    missing = tmp_path / "does-not-exist"
    empty = tmp_path / "empty"
    empty.write_text("")
    for path in (missing, empty, tmp_path):
        response = await client.post(
            "/v1/providers",
            headers=bearer(acme),
            json=provider_body(keys=[{"key_id": "k1", "secret_ref": f"file:{path}"}]),
        )
        assert details_of(response) == [("keys.0.secret_ref", "invalid")]
    assert await provider_ids(client, acme) == []


@pytest.mark.parametrize(
    "ref",
    [
        "file:relative/path",
        "file:secret.txt",
        "file:",
        "env:",
        "env:1BAD",
        "env:WITH-DASH",
        "vault:kv/edovo",
        "hunter2-pasted-secret",
        "",
    ],
)
async def test_malformed_references_are_refused_without_echoing_them(
    client: httpx.AsyncClient, acme: str, ref: str
) -> None:
    await create_program(client, acme)
    response = await client.post(
        "/v1/providers",
        headers=bearer(acme),
        json=provider_body(keys=[{"key_id": "k1", "secret_ref": ref}]),
    )
    assert details_of(response) == [("keys.0.secret_ref", "invalid")]
    if len(ref) > 6:
        assert ref not in response.text
    assert await provider_ids(client, acme) == []


async def test_a_missing_program_is_refused(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    await create_program(client, globex, "co")  # another tenant's program does not count
    response = await client.post("/v1/providers", headers=bearer(acme), json=provider_body())
    assert details_of(response) == [("program_id", "invalid")]
    assert await provider_ids(client, acme) == []


async def test_duplicate_key_ids_in_one_request_are_refused(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    await create_program(client, acme)
    response = await client.post(
        "/v1/providers",
        headers=bearer(acme),
        json=provider_body(keys=[{"key_id": "k1"}, {"key_id": "k2"}, {"key_id": "k1"}]),
    )
    assert details_of(response) == [("keys", "invalid")]
    assert await provider_ids(client, acme) == []
    assert await key_rows(database) == []


async def test_a_duplicate_provider_id_is_409_and_keeps_the_original(
    client: httpx.AsyncClient, acme: str
) -> None:
    await create_program(client, acme)
    await create_program(client, acme, "other")
    await create_provider(client, acme)
    before = (await get_provider(client, acme)).json()
    again = await client.post(
        "/v1/providers",
        headers=bearer(acme),
        json=provider_body(program_id="other", scheme="standard-webhooks", keys=[{"key_id": "k9"}]),
    )
    assert again.status_code == 409
    assert again.json()["error"] == "ALREADY_EXISTS"
    assert "secret" not in again.text
    assert (await get_provider(client, acme)).json() == before


async def test_two_tenants_may_use_the_same_provider_id(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    await create_program(client, acme)
    await create_program(client, globex)
    a = await create_provider(client, acme)
    g = await create_provider(client, globex)
    assert a["inbound_path"] == "/v1/inbound/acme/edovo/completions"
    assert g["inbound_path"] == "/v1/inbound/globex/edovo/completions"
    assert a["keys"][0]["secret"] != g["keys"][0]["secret"]


@pytest.mark.parametrize(
    ("overrides", "field", "constraint"),
    [
        ({"scheme": "hmac"}, "scheme", "invalid"),
        ({"scheme": "HMAC-AUTHORIZATION"}, "scheme", "invalid"),
        ({"scheme": "standard_webhooks"}, "scheme", "invalid"),
        ({"scheme": ""}, "scheme", "invalid"),
        ({"scheme": 1}, "scheme", "invalid"),
        ({"id": "Edovo"}, "id", "invalid"),
        ({"id": "e" * 64}, "id", "invalid"),
        ({"program_id": "Not A Slug"}, "program_id", "invalid"),
        ({"keys": []}, "keys", "invalid"),
        ({"keys": [{"key_id": f"k{i}"} for i in range(11)]}, "keys", "too_long"),
        ({"keys": [{}]}, "keys.0.key_id", "required"),
        ({"keys": [{"key_id": "K 1"}]}, "keys.0.key_id", "invalid"),
        ({"keys": [{"key_id": "k1", "secret": "x"}]}, "keys.0.secret", "unknown_field"),
        ({"keys": [{"key_id": "k1", "secret_ref": 5}]}, "keys.0.secret_ref", "invalid_type"),
        ({"keys": "k1"}, "keys", "invalid_type"),
        ({"extra": True}, "extra", "unknown_field"),
    ],
)
async def test_bad_fields_are_refused(
    client: httpx.AsyncClient,
    acme: str,
    database: Database,
    overrides: dict[str, Any],
    field: str,
    constraint: str,
) -> None:
    await create_program(client, acme)
    response = await client.post(
        "/v1/providers", headers=bearer(acme), json=provider_body(**overrides)
    )
    assert details_of(response) == [(field, constraint)]
    assert await provider_ids(client, acme) == []
    assert await key_rows(database) == []


async def test_missing_fields_are_each_required(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.post("/v1/providers", headers=bearer(acme), json={})
    assert sorted(details_of(response)) == [
        ("id", "required"),
        ("keys", "required"),
        ("program_id", "required"),
        ("scheme", "required"),
    ]


async def test_malformed_json_and_oversized_bodies(client: httpx.AsyncClient, acme: str) -> None:
    await create_program(client, acme)
    headers = {**bearer(acme), "Content-Type": "application/json"}
    broken = await client.post("/v1/providers", headers=headers, content=b'{"id": "edovo"')
    assert broken.status_code == 400
    assert broken.json()["error"] == "INVALID_JSON"
    big = json.dumps({**provider_body(), "pad": "x" * (64 * 1024)})
    too_large = await client.post("/v1/providers", headers=headers, content=big)
    assert too_large.status_code == 413
    assert too_large.json() == {"error": "PAYLOAD_TOO_LARGE"}
    assert await provider_ids(client, acme) == []


async def test_unauthenticated_calls_are_401_and_change_nothing(
    client: httpx.AsyncClient, acme: str
) -> None:
    await create_program(client, acme)
    await create_provider(client, acme)
    before = (await get_provider(client, acme)).json()
    calls = [
        client.post("/v1/providers", json=provider_body(id="other")),
        client.get("/v1/providers"),
        client.get("/v1/providers/edovo"),
        client.post("/v1/providers/edovo/keys", json={"key_id": "k2"}),
        client.delete("/v1/providers/edovo/keys/k1"),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 401
        assert response.json() == {"error": "UNAUTHORIZED"}
    assert (await get_provider(client, acme)).json() == before
    assert await provider_ids(client, acme) == ["edovo"]


# --- reads ----------------------------------------------------------------------------


async def test_the_list_paginates_by_id(client: httpx.AsyncClient, acme: str, globex: str) -> None:
    await create_program(client, acme)
    await create_program(client, globex)
    for provider_id in ["p-c", "p-a", "p-b"]:
        await create_provider(client, acme, id=provider_id)
    await create_provider(client, globex, id="p-aa")
    first = await client.get("/v1/providers", headers=bearer(acme), params={"limit": "2"})
    page = first.json()
    assert [p["id"] for p in page["data"]] == ["p-a", "p-b"]
    assert page["data"][0]["inbound_path"] == "/v1/inbound/acme/p-a/completions"
    assert page["next_cursor"]
    second = await client.get(
        "/v1/providers",
        headers=bearer(acme),
        params={"limit": "2", "cursor": page["next_cursor"]},
    )
    assert [p["id"] for p in second.json()["data"]] == ["p-c"]
    assert second.json()["next_cursor"] is None


@pytest.mark.parametrize("provider_id", ["nope", "Edovo"])
async def test_an_unknown_provider_is_404(
    client: httpx.AsyncClient, acme: str, provider_id: str
) -> None:
    await create_program(client, acme)
    await create_provider(client, acme)
    response = await get_provider(client, acme, provider_id)
    assert response.status_code == 404
    assert response.json() == {"error": "NOT_FOUND"}


# --- keys: add and retire -------------------------------------------------------------


async def test_adding_a_key(client: httpx.AsyncClient, acme: str) -> None:
    await create_program(client, acme)
    await create_provider(client, acme)
    response = await client.post(
        "/v1/providers/edovo/keys", headers=bearer(acme), json={"key_id": "k2"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    secret = body.pop("secret")
    assert isinstance(secret, str)
    assert len(secret) >= 32
    assert body == {
        "key_id": "k2",
        "secret_ref": None,
        "generated": True,
        "created_at": T0_TEXT,
        "retired_at": None,
    }
    fetched = (await get_provider(client, acme)).json()
    assert [k["key_id"] for k in fetched["keys"]] == ["k1", "k2"]


async def test_adding_a_referenced_key(
    client: httpx.AsyncClient, acme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_program(client, acme)
    await create_provider(client, acme, scheme="standard-webhooks")
    monkeypatch.delenv(ENV_NAME, raising=False)
    refused = await client.post(
        "/v1/providers/edovo/keys",
        headers=bearer(acme),
        json={"key_id": "k2", "secret_ref": f"env:{ENV_NAME}"},
    )
    assert details_of(refused) == [("secret_ref", "invalid")]
    assert [k["key_id"] for k in (await get_provider(client, acme)).json()["keys"]] == ["k1"]

    # A value that is not a Standard Webhooks secret could never verify: refused at once.
    monkeypatch.setenv(ENV_NAME, "a-plain-password")
    not_whsec = await client.post(
        "/v1/providers/edovo/keys",
        headers=bearer(acme),
        json={"key_id": "k2", "secret_ref": f"env:{ENV_NAME}"},
    )
    assert details_of(not_whsec) == [("secret_ref", "invalid")]
    assert "a-plain-password" not in not_whsec.text

    monkeypatch.setenv(ENV_NAME, "whsec_" + base64.b64encode(b"k" * 32).decode())
    added = await client.post(
        "/v1/providers/edovo/keys",
        headers=bearer(acme),
        json={"key_id": "k2", "secret_ref": f"env:{ENV_NAME}"},
    )
    assert added.status_code == 201, added.text
    assert added.json()["secret"] is None
    assert added.json()["generated"] is False


@pytest.mark.parametrize(
    ("body", "field", "constraint"),
    [
        ({}, "key_id", "required"),
        ({"key_id": "K2"}, "key_id", "invalid"),
        ({"key_id": "k2", "secret_ref": "file:rel"}, "secret_ref", "invalid"),
        ({"key_id": "k2", "secret": "mine"}, "secret", "unknown_field"),
    ],
)
async def test_adding_a_bad_key_is_refused(
    client: httpx.AsyncClient,
    acme: str,
    body: dict[str, Any],
    field: str,
    constraint: str,
) -> None:
    await create_program(client, acme)
    await create_provider(client, acme)
    response = await client.post("/v1/providers/edovo/keys", headers=bearer(acme), json=body)
    assert details_of(response) == [(field, constraint)]
    assert [k["key_id"] for k in (await get_provider(client, acme)).json()["keys"]] == ["k1"]


async def test_key_ids_are_never_reused(client: httpx.AsyncClient, acme: str) -> None:
    await create_program(client, acme)
    await create_provider(client, acme)
    live = await client.post(
        "/v1/providers/edovo/keys", headers=bearer(acme), json={"key_id": "k1"}
    )
    assert live.status_code == 409
    assert live.json()["error"] == "ALREADY_EXISTS"
    assert "secret" not in live.text

    retired = await client.delete("/v1/providers/edovo/keys/k1", headers=bearer(acme))
    assert retired.status_code == 200
    again = await client.post(
        "/v1/providers/edovo/keys", headers=bearer(acme), json={"key_id": "k1"}
    )
    assert again.status_code == 409
    assert again.json()["error"] == "ALREADY_EXISTS"
    keys = (await get_provider(client, acme)).json()["keys"]
    assert [(k["key_id"], k["retired_at"]) for k in keys] == [("k1", T0_TEXT)]


async def test_adding_a_key_to_an_unknown_provider_is_404(
    client: httpx.AsyncClient, acme: str
) -> None:
    response = await client.post(
        "/v1/providers/nope/keys", headers=bearer(acme), json={"key_id": "k1"}
    )
    assert response.status_code == 404
    assert response.json() == {"error": "NOT_FOUND"}


async def test_retiring_a_key_is_idempotent_and_keeps_the_first_time(
    client: httpx.AsyncClient, acme: str, clock: FrozenClock
) -> None:
    await create_program(client, acme)
    await create_provider(client, acme, keys=[{"key_id": "k1"}, {"key_id": "k2"}])
    response = await client.delete("/v1/providers/edovo/keys/k1", headers=bearer(acme))
    assert response.status_code == 200
    assert response.json() == {
        "key_id": "k1",
        "secret_ref": None,
        "generated": True,
        "created_at": T0_TEXT,
        "retired_at": T0_TEXT,
    }
    clock.advance(timedelta(hours=1))
    again = await client.delete("/v1/providers/edovo/keys/k1", headers=bearer(acme))
    assert again.status_code == 200
    assert again.json()["retired_at"] == T0_TEXT
    keys = (await get_provider(client, acme)).json()["keys"]
    assert [(k["key_id"], k["retired_at"]) for k in keys] == [("k1", T0_TEXT), ("k2", None)]


@pytest.mark.parametrize(
    ("provider_id", "key_id"), [("edovo", "k9"), ("edovo", "K1"), ("nope", "k1")]
)
async def test_retiring_an_unknown_key_is_404(
    client: httpx.AsyncClient, acme: str, provider_id: str, key_id: str
) -> None:
    await create_program(client, acme)
    await create_provider(client, acme)
    response = await client.delete(
        f"/v1/providers/{provider_id}/keys/{key_id}", headers=bearer(acme)
    )
    assert response.status_code == 404
    assert response.json() == {"error": "NOT_FOUND"}
    keys = (await get_provider(client, acme)).json()["keys"]
    assert [(k["key_id"], k["retired_at"]) for k in keys] == [("k1", None)]


async def test_another_tenants_provider_is_404_and_unchanged(
    client: httpx.AsyncClient, acme: str, globex: str, clock: FrozenClock
) -> None:
    await create_program(client, acme)
    created = await create_provider(client, acme)
    before = (await get_provider(client, acme)).json()

    fetched = await get_provider(client, globex)
    assert fetched.status_code == 404
    assert fetched.json() == {"error": "NOT_FOUND"}
    added = await client.post(
        "/v1/providers/edovo/keys", headers=bearer(globex), json={"key_id": "k2"}
    )
    assert added.status_code == 404
    assert added.json() == {"error": "NOT_FOUND"}
    clock.advance(timedelta(minutes=5))
    retired = await client.delete("/v1/providers/edovo/keys/k1", headers=bearer(globex))
    assert retired.status_code == 404
    assert retired.json() == {"error": "NOT_FOUND"}
    listed = await client.get("/v1/providers", headers=bearer(globex))
    assert listed.json() == {"data": [], "next_cursor": None}

    assert (await get_provider(client, acme)).json() == before
    # The key still verifies for acme.
    response = await send_hmac(
        client, clock, created["inbound_path"], "k1", created["keys"][0]["secret"]
    )
    assert response.status_code == 422, response.text


# --- the keys actually verify inbound requests ----------------------------------------


async def test_a_generated_hmac_key_verifies_until_retired(
    client: httpx.AsyncClient, acme: str, clock: FrozenClock
) -> None:
    await create_program(client, acme)
    created = await create_provider(client, acme)
    path = created["inbound_path"]
    secret = created["keys"][0]["secret"]

    verified = await send_hmac(client, clock, path, "k1", secret)
    assert verified.status_code == 422, verified.text
    assert verified.json()["error"] == "PERSON_NOT_FOUND"

    wrong = await send_hmac(client, clock, path, "k1", secret + "x")
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "UNAUTHORIZED"}

    retired = await client.delete("/v1/providers/edovo/keys/k1", headers=bearer(acme))
    assert retired.status_code == 200
    after = await send_hmac(client, clock, path, "k1", secret)
    assert after.status_code == 401
    assert after.json() == {"error": "UNAUTHORIZED"}


async def test_rotation_a_new_key_verifies_and_the_old_one_stops(
    client: httpx.AsyncClient, acme: str, clock: FrozenClock
) -> None:
    await create_program(client, acme)
    created = await create_provider(client, acme)
    path = created["inbound_path"]
    old = created["keys"][0]["secret"]
    added = await client.post(
        "/v1/providers/edovo/keys", headers=bearer(acme), json={"key_id": "k2"}
    )
    new = added.json()["secret"]
    # Both verify during the rotation.
    assert (await send_hmac(client, clock, path, "k1", old)).status_code == 422
    assert (await send_hmac(client, clock, path, "k2", new)).status_code == 422
    # A key's secret does not verify under another key's id.
    assert (await send_hmac(client, clock, path, "k2", old)).status_code == 401
    await client.delete("/v1/providers/edovo/keys/k1", headers=bearer(acme))
    assert (await send_hmac(client, clock, path, "k1", old)).status_code == 401
    assert (await send_hmac(client, clock, path, "k2", new)).status_code == 422


async def test_an_env_referenced_key_verifies(
    client: httpx.AsyncClient, acme: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_NAME, "operator-chosen-secret-0123456789")
    await create_program(client, acme)
    created = await create_provider(
        client, acme, keys=[{"key_id": "k1", "secret_ref": f"env:{ENV_NAME}"}]
    )
    response = await send_hmac(
        client, clock, created["inbound_path"], "k1", "operator-chosen-secret-0123456789"
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "PERSON_NOT_FOUND"


async def test_a_generated_standard_webhooks_key_verifies_until_retired(
    client: httpx.AsyncClient, acme: str, clock: FrozenClock
) -> None:
    await create_program(client, acme)
    created = await create_provider(client, acme, scheme="standard-webhooks")
    path = created["inbound_path"]
    secret = created["keys"][0]["secret"]

    verified = await send_standard(client, clock, path, secret, "msg_1")
    assert verified.status_code == 422, verified.text
    assert verified.json()["error"] == "PERSON_NOT_FOUND"

    await client.delete("/v1/providers/edovo/keys/k1", headers=bearer(acme))
    after = await send_standard(client, clock, path, secret, "msg_2")
    assert after.status_code == 401
    assert after.json() == {"error": "UNAUTHORIZED"}


# --- races ----------------------------------------------------------------------------


@pytest.mark.postgres_only
async def test_concurrent_creates_of_one_provider_make_one(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    await create_program(client, acme)
    responses = await asyncio.gather(
        *(
            client.post("/v1/providers", headers=bearer(acme), json=provider_body())
            for _ in range(6)
        )
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5, [
        r.text for r in responses
    ]
    assert len(await key_rows(database)) == 1


@pytest.mark.postgres_only
async def test_concurrent_adds_of_one_key_make_one(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    await create_program(client, acme)
    await create_provider(client, acme)
    responses = await asyncio.gather(
        *(
            client.post("/v1/providers/edovo/keys", headers=bearer(acme), json={"key_id": "k2"})
            for _ in range(6)
        )
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5, [
        r.text for r in responses
    ]
    assert [r["key_id"] for r in await key_rows(database)] == ["k1", "k2"]
