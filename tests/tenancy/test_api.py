"""Tenancy routes and the interface conventions every later endpoint inherits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from tests.conftest import bearer, create_tenant


async def test_whoami_names_the_keys_tenant(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.get("/v1/whoami", headers=bearer(acme))
    assert response.status_code == 200
    body = response.json()
    assert body["tenant"]["id"] == "acme"
    assert body["tenant"]["timezone"] == "UTC"
    assert body["tenant"]["created_at"] == "2026-06-10T12:00:00.000Z"
    assert body["api_key"]["prefix"] == acme.split("_")[1]
    assert acme not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer cg_000000000000_not-a-real-key"},
        {"Authorization": "Bearer not-even-our-format"},
        {"Authorization": "Bearer " + "x" * 5000},
    ],
    ids=["none", "empty", "scheme-only", "blank", "basic", "unknown-key", "garbage", "huge"],
)
async def test_missing_or_bad_keys_are_401(
    client: httpx.AsyncClient, acme: str, headers: dict[str, str]
) -> None:
    response = await client.get("/v1/whoami", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "UNAUTHORIZED"}


async def test_a_key_with_the_right_prefix_but_wrong_secret_is_401(
    client: httpx.AsyncClient, acme: str
) -> None:
    forged = acme[: acme.rindex("_") + 1] + "A" * 43
    response = await client.get("/v1/whoami", headers=bearer(forged))
    assert response.status_code == 401


async def test_revoked_key_stops_authenticating(client: httpx.AsyncClient, acme: str) -> None:
    created = await client.post("/v1/api-keys", headers=bearer(acme), json={"name": "ci"})
    assert created.status_code == 201
    second = created.json()
    assert second["key"].startswith("cg_")
    assert (await client.get("/v1/whoami", headers=bearer(second["key"]))).status_code == 200

    revoked = await client.delete(f"/v1/api-keys/{second['id']}", headers=bearer(acme))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] == "2026-06-10T12:00:00.000Z"
    assert (await client.get("/v1/whoami", headers=bearer(second["key"]))).status_code == 401
    # The other key is untouched, and revoking again keeps the first revocation.
    assert (await client.get("/v1/whoami", headers=bearer(acme))).status_code == 200
    again = await client.delete(f"/v1/api-keys/{second['id']}", headers=bearer(acme))
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]


async def test_listed_keys_never_show_the_key_itself(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.get("/v1/api-keys", headers=bearer(acme))
    assert response.status_code == 200
    body = response.json()
    assert [k["name"] for k in body["data"]] == ["initial key"]
    assert body["next_cursor"] is None
    assert "key" not in body["data"][0]
    assert acme.split("_", 2)[2] not in response.text


async def test_key_lists_paginate_with_a_cursor(client: httpx.AsyncClient, acme: str) -> None:
    for i in range(4):
        r = await client.post("/v1/api-keys", headers=bearer(acme), json={"name": f"k{i}"})
        assert r.status_code == 201
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/api-keys", headers=bearer(acme), params=params)).json()
        seen += [k["name"] for k in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["initial key", "k0", "k1", "k2", "k3"]
    assert pages == 3


@pytest.mark.parametrize(
    ("params", "field", "constraint"),
    [
        ({"limit": "0"}, "limit", "out_of_range"),
        ({"limit": "501"}, "limit", "out_of_range"),
        ({"limit": "ten"}, "limit", "invalid_type"),
        ({"cursor": "!!!not-base64"}, "cursor", "invalid"),
        ({"cursor": "W10"}, "cursor", "invalid"),  # a JSON list, not a position
        ({"cursor": "eyJpZCI6ICJ4In0"}, "cursor", "invalid"),  # {"id": "x"}
    ],
)
async def test_bad_list_parameters_are_400(
    client: httpx.AsyncClient, acme: str, params: dict[str, str], field: str, constraint: str
) -> None:
    response = await client.get("/v1/api-keys", headers=bearer(acme), params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "VALIDATION_ERROR"
    assert [(d["field"], d["constraint"]) for d in body["details"]] == [(field, constraint)]


async def test_patch_tenant_sets_timezone_and_contact(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.patch(
        "/v1/tenant",
        headers=bearer(acme),
        json={"timezone": "America/Denver", "contact_email": "ops@acme.example"},
    )
    assert response.status_code == 200
    assert response.json()["timezone"] == "America/Denver"
    fetched = (await client.get("/v1/tenant", headers=bearer(acme))).json()
    assert fetched["contact_email"] == "ops@acme.example"
    cleared = await client.patch("/v1/tenant", headers=bearer(acme), json={"contact_email": None})
    assert cleared.json()["contact_email"] is None
    assert cleared.json()["timezone"] == "America/Denver"


@pytest.mark.parametrize(
    ("body", "field", "constraint"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "invalid"),
        ({"timezone": 5}, "timezone", "invalid_type"),
        ({"timezone": None}, "timezone", "required"),
        ({"contact_email": "not-an-email"}, "contact_email", "invalid"),
        ({"contact_email": "a@" + "b" * 320 + ".org"}, "contact_email", "too_long"),
        ({"timezon": "UTC"}, "timezon", "unknown_field"),
    ],
)
async def test_patch_tenant_refuses_bad_fields(
    client: httpx.AsyncClient, acme: str, body: dict[str, object], field: str, constraint: str
) -> None:
    response = await client.patch("/v1/tenant", headers=bearer(acme), json=body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["error"] == "VALIDATION_ERROR"
    assert [(d["field"], d["constraint"]) for d in payload["details"]] == [(field, constraint)]
    after = (await client.get("/v1/tenant", headers=bearer(acme))).json()
    assert after["timezone"] == "UTC"


async def test_malformed_json_is_invalid_json(client: httpx.AsyncClient, acme: str) -> None:
    headers = {**bearer(acme), "Content-Type": "application/json"}
    response = await client.patch("/v1/tenant", headers=headers, content=b'{"timezone": ')
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_JSON"
    form = await client.patch(
        "/v1/tenant",
        headers={**bearer(acme), "Content-Type": "application/x-www-form-urlencoded"},
        content=b"timezone=UTC",
    )
    assert form.status_code == 400
    assert form.json()["error"] == "INVALID_JSON"


async def test_a_json_array_is_a_validation_error(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.patch("/v1/tenant", headers=bearer(acme), json=["UTC"])
    assert response.status_code == 400
    assert response.json()["error"] == "VALIDATION_ERROR"


async def test_oversized_bodies_are_413_and_change_nothing(
    client: httpx.AsyncClient, acme: str
) -> None:
    big = '{"timezone": "America/Denver", "pad": "' + "x" * (64 * 1024) + '"}'
    headers = {**bearer(acme), "Content-Type": "application/json"}
    response = await client.patch("/v1/tenant", headers=headers, content=big)
    assert response.status_code == 413
    assert response.json() == {"error": "PAYLOAD_TOO_LARGE"}

    async def chunks() -> AsyncIterator[
        bytes
    ]:  # no Content-Length: the limit is enforced on the bytes that arrive
        yield big[: 40 * 1024].encode()
        yield big[40 * 1024 :].encode()

    streamed = await client.patch("/v1/tenant", headers=headers, content=chunks())
    assert streamed.status_code == 413
    assert (await client.get("/v1/tenant", headers=bearer(acme))).json()["timezone"] == "UTC"


async def test_unauthenticated_writes_change_nothing(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.patch("/v1/tenant", json={"timezone": "Asia/Tokyo"})
    assert response.status_code == 401
    assert (await client.get("/v1/tenant", headers=bearer(acme))).json()["timezone"] == "UTC"


async def test_another_tenants_key_is_404_not_403(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    acme_key_id = (await client.get("/v1/whoami", headers=bearer(acme))).json()["api_key"]["id"]
    assert (
        await client.get(f"/v1/api-keys/{acme_key_id}", headers=bearer(globex))
    ).status_code == 404
    revoke = await client.delete(f"/v1/api-keys/{acme_key_id}", headers=bearer(globex))
    assert revoke.status_code == 404
    assert revoke.json() == {"error": "NOT_FOUND"}
    listed = (await client.get("/v1/api-keys", headers=bearer(globex))).json()["data"]
    assert acme_key_id not in {k["id"] for k in listed}
    # acme's key still works: globex's attempt changed nothing.
    assert (await client.get("/v1/whoami", headers=bearer(acme))).status_code == 200


async def test_a_malformed_id_is_404(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.get("/v1/api-keys/not-a-uuid", headers=bearer(acme))
    assert response.status_code == 404


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {"error": "NOT_FOUND"}
    wrong = await client.put("/v1/whoami")
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "METHOD_NOT_ALLOWED"}


async def test_tenant_slugs_and_duplicates(database: Database, clock: FrozenClock) -> None:
    from coursegate.kit.errors import AlreadyExists, ValidationFailed

    await create_tenant(database, clock, "acme")
    with pytest.raises(AlreadyExists):
        await create_tenant(database, clock, "acme")
    for bad in ["Acme", "-acme", "", "a" * 64, "ac me", "acmé"]:
        with pytest.raises(ValidationFailed):
            await create_tenant(database, clock, bad)
    with pytest.raises(ValidationFailed):
        await create_tenant(database, clock, "initech", timezone="Nowhere/Land")
