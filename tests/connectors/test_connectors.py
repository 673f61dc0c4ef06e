"""/v1/connectors: connector configuration for both kinds (SPEC §4, §7)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from coursegate.kit.clock import FrozenClock
from tests.conftest import bearer
from tests.courses.helpers import create_course, details_of

T0_TEXT = "2026-06-10T12:00:00.000Z"
SECRET_ENV = "CG_TEST_CONNECTOR_SECRET"
SECRET_VALUE = "connector-client-secret-5f1e9c3a7b"


@pytest.fixture(autouse=True)
def partner_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET_VALUE)
    monkeypatch.delenv("CG_TEST_CONNECTOR_UNSET", raising=False)


def datapass_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "auth_url": "https://auth.datapass.example/oauth/token",
        "api_base_url": "https://api.datapass.example/api/v1",
        "client_id": "coursegate",
        "client_secret_ref": f"env:{SECRET_ENV}",
        "definition_id": "api_formation",
    }
    config.update(overrides)
    return config


def oneroster_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "token_url": "https://sis.example/oauth/token",
        "api_base_url": "https://sis.example/ims/oneroster/rostering/v1p2",
        "client_id": "coursegate",
        "client_secret_ref": f"env:{SECRET_ENV}",
    }
    config.update(overrides)
    return config


def datapass_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "datapass", "kind": "datapass", "config": datapass_config()}
    body.update(overrides)
    return body


async def create_connector(client: httpx.AsyncClient, key: str, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/connectors", headers=bearer(key), json=datapass_body(**overrides)
    )
    assert response.status_code == 201, response.text
    assert SECRET_VALUE not in response.text
    created: dict[str, Any] = response.json()
    return created


async def connector_ids(client: httpx.AsyncClient, key: str, **params: str) -> list[str]:
    response = await client.get(
        "/v1/connectors", headers=bearer(key), params={"limit": "500", **params}
    )
    assert response.status_code == 200, response.text
    assert SECRET_VALUE not in response.text
    return [c["id"] for c in response.json()["data"]]


async def test_create_a_datapass_connector(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.post("/v1/connectors", headers=bearer(acme), json=datapass_body())
    assert response.status_code == 201, response.text
    assert response.json() == {
        "id": "datapass",
        "kind": "datapass",
        "schedule": "0 1 * * *",
        "config": datapass_config(),
        "enabled": True,
        "watermark": None,
        "watermarks": {},
        "last_run": None,
        "created_at": T0_TEXT,
        "updated_at": T0_TEXT,
    }
    fetched = await client.get("/v1/connectors/datapass", headers=bearer(acme))
    assert fetched.status_code == 200
    assert fetched.json() == response.json()
    assert SECRET_VALUE not in fetched.text


async def test_create_a_oneroster_connector_with_a_class_map(
    client: httpx.AsyncClient, acme: str
) -> None:
    await create_course(client, acme, id="fin-lit-101")
    config = oneroster_config(class_map={"class-7f3a": "fin-lit-101"})
    response = await client.post(
        "/v1/connectors",
        headers=bearer(acme),
        json={"id": "sis", "kind": "oneroster", "schedule": "*/15 6-18 * * 1-5", "config": config},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["kind"], body["schedule"], body["config"]) == (
        "oneroster",
        "*/15 6-18 * * 1-5",
        {**config, **ONEROSTER_DEFAULTS},
    )
    fetched = await client.get("/v1/connectors/sis", headers=bearer(acme))
    assert fetched.json() == body
    assert SECRET_VALUE not in fetched.text


# What a config without them stores and shows: the narrowest read-only scope, 1.2's path,
# and the mass-removal guard's thresholds.
ONEROSTER_DEFAULTS = {
    "scope": "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly",
    "version": "v1p2",
    "hold_share": 0.5,
    "hold_min": 10,
}


async def test_a_oneroster_class_map_is_optional(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.post(
        "/v1/connectors",
        headers=bearer(acme),
        json={"id": "sis", "kind": "oneroster", "config": oneroster_config()},
    )
    assert response.status_code == 201, response.text
    assert response.json()["config"] == {
        **oneroster_config(),
        "class_map": {},
        **ONEROSTER_DEFAULTS,
    }


async def test_a_file_secret_reference_is_accepted(
    client: httpx.AsyncClient, acme: str, tmp_path: Path
) -> None:
    secret = tmp_path / "datapass-secret"
    secret.write_text("from-a-file-9d2c\n")
    created = await create_connector(
        client, acme, config=datapass_config(client_secret_ref=f"file:{secret}")
    )
    assert created["config"]["client_secret_ref"] == f"file:{secret}"
    fetched = await client.get("/v1/connectors/datapass", headers=bearer(acme))
    assert "from-a-file-9d2c" not in fetched.text


@pytest.mark.parametrize(
    "schedule",
    ["0 1 * * *", "*/5 * * * *", "0,30 8-17 1-15 1,6-12 0-6", "59 23 31 12 6", "0 0 1 1 0"],
)
async def test_valid_schedules_are_stored(
    client: httpx.AsyncClient, acme: str, schedule: str
) -> None:
    created = await create_connector(client, acme, schedule=schedule)
    assert created["schedule"] == schedule


@pytest.mark.parametrize(
    "schedule",
    [
        "61 * * * *",
        "* * *",
        "0 1 * * 7x",
        "0 1 * * 7",
        "0 24 * * *",
        "0 1 0 * *",
        "0 1 * 13 *",
        "0 1 * * MON",
        "0  1 * * *",
        " 0 1 * * *",
        "0 1 * * * *",
        "*/0 * * * *",
        "5-1 * * * *",
        "0 1 ? * *",
        "1,,2 * * * *",
        "*,5 * * * *",
        "-1 * * * *",
        "",
    ],
)
async def test_bad_schedules_are_refused(
    client: httpx.AsyncClient, acme: str, schedule: str
) -> None:
    response = await client.post(
        "/v1/connectors", headers=bearer(acme), json=datapass_body(schedule=schedule)
    )
    assert details_of(response) == [("schedule", "invalid")]
    assert await connector_ids(client, acme) == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (datapass_config(auth_url="ftp://auth.example/token"), ("config.auth_url", "invalid")),
        (datapass_config(auth_url="not a url"), ("config.auth_url", "invalid")),
        (
            datapass_config(api_base_url="https://user:pw@api.example/v1"),
            ("config.api_base_url", "invalid"),
        ),
        (
            datapass_config(auth_url="http://127.0.0.1:8080/token"),
            ("config.auth_url", "forbidden_target"),
        ),
        (
            datapass_config(api_base_url="http://localhost/api"),
            ("config.api_base_url", "forbidden_target"),
        ),
        (
            datapass_config(client_secret_ref="env:CG_TEST_CONNECTOR_UNSET"),
            ("config.client_secret_ref", "invalid"),
        ),
        (
            datapass_config(client_secret_ref="hunter2-pasted-secret"),
            ("config.client_secret_ref", "invalid"),
        ),
        (
            datapass_config(client_secret_ref="file:/nonexistent/secret"),
            ("config.client_secret_ref", "invalid"),
        ),
        (datapass_config(definition_id=""), ("config.definition_id", "invalid")),
        (datapass_config(definition_id="d" * 129), ("config.definition_id", "too_long")),
        (datapass_config(client_id=""), ("config.client_id", "invalid")),
        (datapass_config(extra="x"), ("config.extra", "unknown_field")),
        (datapass_config(token_url="https://x.example"), ("config.token_url", "unknown_field")),
        (
            {k: v for k, v in datapass_config().items() if k != "definition_id"},
            ("config.definition_id", "required"),
        ),
        (datapass_config(client_id=5), ("config.client_id", "invalid_type")),
    ],
)
async def test_bad_datapass_configs_are_refused(
    client: httpx.AsyncClient, acme: str, config: dict[str, Any], expected: tuple[str, str]
) -> None:
    response = await client.post(
        "/v1/connectors", headers=bearer(acme), json=datapass_body(config=config)
    )
    assert expected in details_of(response)
    assert {field for field, _ in details_of(response)} == {expected[0]}
    assert await connector_ids(client, acme) == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (oneroster_config(token_url="gopher://sis.example"), ("config.token_url", "invalid")),
        (
            oneroster_config(api_base_url="http://10.0.0.5/ims"),
            ("config.api_base_url", "forbidden_target"),
        ),
        (
            oneroster_config(client_secret_ref="env:CG_TEST_CONNECTOR_UNSET"),
            ("config.client_secret_ref", "invalid"),
        ),
        (
            oneroster_config(class_map={"class-1": "no-such-course"}),
            ("config.class_map.class-1", "invalid"),
        ),
        (
            oneroster_config(class_map={"class-1": "Not A Slug"}),
            ("config.class_map.class-1", "invalid"),
        ),
        (oneroster_config(definition_id="x"), ("config.definition_id", "unknown_field")),
        (oneroster_config(class_map=["class-1"]), ("config.class_map", "invalid_type")),
    ],
)
async def test_bad_oneroster_configs_are_refused(
    client: httpx.AsyncClient, acme: str, config: dict[str, Any], expected: tuple[str, str]
) -> None:
    response = await client.post(
        "/v1/connectors",
        headers=bearer(acme),
        json={"id": "sis", "kind": "oneroster", "config": config},
    )
    assert expected in details_of(response)
    assert await connector_ids(client, acme) == []


async def test_a_class_map_cannot_name_another_tenants_course(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    await create_course(client, globex, id="globex-course")
    response = await client.post(
        "/v1/connectors",
        headers=bearer(acme),
        json={
            "id": "sis",
            "kind": "oneroster",
            "config": oneroster_config(class_map={"c-9": "globex-course"}),
        },
    )
    assert details_of(response) == [("config.class_map.c-9", "invalid")]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"kind": "csv"}, ("kind", "invalid")),
        ({"kind": None}, ("kind", "invalid")),
        ({"id": "Bad Id"}, ("id", "invalid")),
        ({"config": "x"}, ("config", "invalid_type")),
        ({"schedule": 5}, ("schedule", "invalid_type")),
        ({"enabled": False}, ("enabled", "unknown_field")),
        ({"watermark": T0_TEXT}, ("watermark", "unknown_field")),
    ],
)
async def test_bad_connector_fields_are_refused(
    client: httpx.AsyncClient, acme: str, overrides: dict[str, Any], expected: tuple[str, str]
) -> None:
    response = await client.post(
        "/v1/connectors", headers=bearer(acme), json=datapass_body(**overrides)
    )
    assert expected in details_of(response)


async def test_a_oneroster_config_is_wrong_for_a_datapass_connector(
    client: httpx.AsyncClient, acme: str
) -> None:
    response = await client.post(
        "/v1/connectors", headers=bearer(acme), json=datapass_body(config=oneroster_config())
    )
    fields = details_of(response)
    assert ("config.token_url", "unknown_field") in fields
    assert ("config.auth_url", "required") in fields


async def test_private_targets_are_allowed_when_configured(
    client: httpx.AsyncClient, acme: str, app: FastAPI
) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"allow_private_webhook_targets": True}
    )
    created = await create_connector(
        client, acme, config=datapass_config(auth_url="http://127.0.0.1:8080/token")
    )
    assert created["config"]["auth_url"] == "http://127.0.0.1:8080/token"


async def test_a_duplicate_id_is_409_and_ids_are_per_tenant(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    await create_connector(client, acme)
    again = await client.post("/v1/connectors", headers=bearer(acme), json=datapass_body())
    assert again.status_code == 409
    assert again.json()["error"] == "ALREADY_EXISTS"
    await create_connector(client, globex)
    assert await connector_ids(client, globex) == ["datapass"]


async def test_the_list_paginates_by_id_and_filters_by_kind(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    for connector_id in ["c-c", "c-a", "c-e", "c-b", "c-d"]:
        if connector_id in {"c-b", "c-d"}:
            response = await client.post(
                "/v1/connectors",
                headers=bearer(acme),
                json={"id": connector_id, "kind": "oneroster", "config": oneroster_config()},
            )
            assert response.status_code == 201, response.text
        else:
            await create_connector(client, acme, id=connector_id)
    await create_connector(client, globex, id="c-bb")

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/connectors", headers=bearer(acme), params=params)
        assert response.status_code == 200, response.text
        assert SECRET_VALUE not in response.text
        page = response.json()
        seen += [c["id"] for c in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert (seen, pages) == (["c-a", "c-b", "c-c", "c-d", "c-e"], 3)
    assert await connector_ids(client, acme, kind="oneroster") == ["c-b", "c-d"]
    assert await connector_ids(client, acme, kind="datapass") == ["c-a", "c-c", "c-e"]
    assert await connector_ids(client, acme, kind="nope") == []
    assert await connector_ids(client, globex) == ["c-bb"]


async def test_patch_changes_schedule_enabled_and_config(
    client: httpx.AsyncClient, acme: str, clock: FrozenClock
) -> None:
    await create_connector(client, acme)
    clock.advance(timedelta(minutes=5))
    new_config = datapass_config(definition_id="api_particulier")
    response = await client.patch(
        "/v1/connectors/datapass",
        headers=bearer(acme),
        json={"schedule": "30 2 * * *", "enabled": False, "config": new_config},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["schedule"], body["enabled"], body["config"]) == ("30 2 * * *", False, new_config)
    assert body["created_at"] == T0_TEXT
    assert body["updated_at"] == "2026-06-10T12:05:00.000Z"
    fetched = await client.get("/v1/connectors/datapass", headers=bearer(acme))
    assert fetched.json() == body
    assert SECRET_VALUE not in fetched.text


async def test_a_patch_that_changes_nothing_keeps_updated_at(
    client: httpx.AsyncClient, acme: str, clock: FrozenClock
) -> None:
    created = await create_connector(client, acme)
    clock.advance(timedelta(minutes=5))
    response = await client.patch(
        "/v1/connectors/datapass", headers=bearer(acme), json={"schedule": "0 1 * * *"}
    )
    assert response.json() == created


async def test_patch_revalidates_the_config_against_the_kind(
    client: httpx.AsyncClient, acme: str
) -> None:
    await create_course(client, acme, id="fin-lit-101")
    response = await client.post(
        "/v1/connectors",
        headers=bearer(acme),
        json={"id": "sis", "kind": "oneroster", "config": oneroster_config()},
    )
    assert response.status_code == 201
    ok = await client.patch(
        "/v1/connectors/sis",
        headers=bearer(acme),
        json={"config": oneroster_config(class_map={"class-1": "fin-lit-101"})},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["config"]["class_map"] == {"class-1": "fin-lit-101"}
    for body, expected in [
        ({"config": datapass_config()}, ("config.token_url", "required")),
        ({"config": oneroster_config(class_map={"x": "nope"})}, ("config.class_map.x", "invalid")),
        (
            {"config": oneroster_config(client_secret_ref="env:CG_TEST_CONNECTOR_UNSET")},
            ("config.client_secret_ref", "invalid"),
        ),
        ({"schedule": "61 * * * *"}, ("schedule", "invalid")),
        ({"schedule": None}, ("schedule", "invalid_type")),
        ({"enabled": None}, ("enabled", "invalid_type")),
        ({"enabled": "no"}, ("enabled", "invalid_type")),
        ({"config": None}, ("config", "invalid_type")),
        ({"kind": "datapass"}, ("kind", "unknown_field")),
        ({"id": "other"}, ("id", "unknown_field")),
    ]:
        response = await client.patch("/v1/connectors/sis", headers=bearer(acme), json=body)
        assert expected in details_of(response), body
    fetched = (await client.get("/v1/connectors/sis", headers=bearer(acme))).json()
    assert fetched["config"]["class_map"] == {"class-1": "fin-lit-101"}
    assert fetched["schedule"] == "0 1 * * *"


async def test_delete_removes_the_connector(client: httpx.AsyncClient, acme: str) -> None:
    await create_connector(client, acme)
    response = await client.delete("/v1/connectors/datapass", headers=bearer(acme))
    assert response.status_code == 204
    assert response.content == b""
    missing = await client.get("/v1/connectors/datapass", headers=bearer(acme))
    assert missing.status_code == 404
    again = await client.delete("/v1/connectors/datapass", headers=bearer(acme))
    assert again.status_code == 404
    await create_connector(client, acme)


ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/connectors/datapass", None),
    ("PATCH", "/v1/connectors/datapass", {"enabled": False}),
    ("DELETE", "/v1/connectors/datapass", None),
    ("GET", "/v1/connectors/datapass/runs", None),
    ("GET", "/v1/connectors/datapass/rejects", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_another_tenants_connector_is_404(
    client: httpx.AsyncClient,
    acme: str,
    globex: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    created = await create_connector(client, acme)
    response = await client.request(method, path, headers=bearer(globex), json=body)
    assert response.status_code == 404
    assert response.json() == {"error": "NOT_FOUND"}
    assert await connector_ids(client, globex) == []
    fetched = await client.get("/v1/connectors/datapass", headers=bearer(acme))
    assert fetched.json() == created


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/connectors", datapass_body(id="other")),
        ("GET", "/v1/connectors", None),
        ("GET", "/v1/authorizations", None),
        *ROUTES,
    ],
)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer cg_000000000000_not-a-real-key"}],
    ids=["none", "unknown-key"],
)
async def test_unauthenticated_calls_are_401(
    client: httpx.AsyncClient,
    acme: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str],
) -> None:
    created = await create_connector(client, acme)
    response = await client.request(method, path, headers=headers, json=body)
    assert response.status_code == 401
    assert response.json() == {"error": "UNAUTHORIZED"}
    assert await connector_ids(client, acme) == ["datapass"]
    fetched = await client.get("/v1/connectors/datapass", headers=bearer(acme))
    assert fetched.json() == created


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v1/connectors"), ("PATCH", "/v1/connectors/datapass")]
)
async def test_malformed_json_is_invalid_json(
    client: httpx.AsyncClient, acme: str, method: str, path: str
) -> None:
    await create_connector(client, acme)
    headers = {**bearer(acme), "Content-Type": "application/json"}
    response = await client.request(method, path, headers=headers, content=b'{"id": "x",')
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_JSON"


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v1/connectors"), ("PATCH", "/v1/connectors/datapass")]
)
async def test_bodies_over_64_kib_are_413(
    client: httpx.AsyncClient, acme: str, method: str, path: str
) -> None:
    await create_connector(client, acme)
    headers = {**bearer(acme), "Content-Type": "application/json"}
    raw = b'{"id": "' + b"n" * (65 * 1024) + b'"}'
    response = await client.request(method, path, headers=headers, content=raw)
    assert response.status_code == 413
    assert response.json() == {"error": "PAYLOAD_TOO_LARGE"}


@pytest.mark.postgres_only
async def test_concurrent_creates_of_one_connector_make_one(
    client: httpx.AsyncClient, acme: str
) -> None:
    responses = await asyncio.gather(
        *(
            client.post("/v1/connectors", headers=bearer(acme), json=datapass_body())
            for _ in range(6)
        )
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5, [
        r.text for r in responses
    ]
    assert await connector_ids(client, acme) == ["datapass"]
