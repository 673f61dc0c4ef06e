"""The endpoint routes of SPEC §5 and all their refusals (both databases)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from coursegate.app import create_app
from coursegate.config import Settings
from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.kit.timefmt import format_instant
from tests.conftest import bearer
from tests.webhooks.conftest import Hooks
from tests.webhooks.receiver import Reply

URL = "https://hooks.example.com/coursegate"


async def create(client: httpx.AsyncClient, key: str, **body: Any) -> httpx.Response:
    return await client.post(
        "/v1/webhook-endpoints",
        headers=bearer(key),
        json={"url": URL, "event_types": ["*"], **body},
    )


async def test_create_returns_a_fresh_whsec_secret_once(
    client: httpx.AsyncClient, acme: str, clock: FrozenClock
) -> None:
    response = await create(
        client,
        acme,
        event_types=["completion.recorded", "credit.earned"],
        description="records system",
        enrichments={"learning_time": {"enabled": True, "rollout_percent": 25}},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    secret = body.pop("secret")
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 64
    assert uuid.UUID(body["id"]).version == 7
    assert body == {
        "id": body["id"],
        "url": URL,
        "description": "records system",
        "event_types": ["completion.recorded", "credit.earned"],
        "enrichments": {"learning_time": {"enabled": True, "rollout_percent": 25}},
        "enabled": True,
        "disabled_reason": None,
        "failing_since": None,
        "previous_secret_expires_at": None,
        "created_at": format_instant(clock.now()),
        "updated_at": format_instant(clock.now()),
    }
    again = await client.get(f"/v1/webhook-endpoints/{body['id']}", headers=bearer(acme))
    assert again.json() == body, "the secret is never shown again"
    other = await create(client, acme)
    assert other.json()["secret"] != secret


async def test_list_pages_through_the_tenants_endpoints(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    ids = [(await create(client, acme)).json()["id"] for _ in range(3)]
    await create(client, globex)
    first = await client.get("/v1/webhook-endpoints?limit=2", headers=bearer(acme))
    page = first.json()
    assert [e["id"] for e in page["data"]] == ids[:2]
    second = await client.get(
        f"/v1/webhook-endpoints?limit=2&cursor={page['next_cursor']}", headers=bearer(acme)
    )
    assert [e["id"] for e in second.json()["data"]] == ids[2:]
    assert second.json()["next_cursor"] is None


async def test_patch_changes_only_what_is_given(
    client: httpx.AsyncClient, acme: str, clock: FrozenClock
) -> None:
    endpoint = (await create(client, acme, description="keep me")).json()
    clock.advance(timedelta(minutes=1))
    response = await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}",
        headers=bearer(acme),
        json={"event_types": ["credit.earned"], "url": "https://other.example.org/h"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["event_types"] == ["credit.earned"]
    assert body["url"] == "https://other.example.org/h"
    assert body["description"] == "keep me"
    assert body["updated_at"] == format_instant(clock.now())
    cleared = await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(acme), json={"description": None}
    )
    assert cleared.json()["description"] is None


async def test_delete_removes_the_endpoint(client: httpx.AsyncClient, acme: str) -> None:
    endpoint = (await create(client, acme)).json()
    response = await client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(acme))
    assert response.status_code == 204
    gone = await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(acme))
    assert gone.status_code == 404


async def test_rotate_keeps_the_old_secret_for_24_hours(
    client: httpx.AsyncClient, acme: str, clock: FrozenClock
) -> None:
    endpoint = (await create(client, acme)).json()
    response = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=bearer(acme)
    )
    body = response.json()
    assert body["secret"] != endpoint["secret"]
    assert body["previous_secret_expires_at"] == format_instant(clock.now() + timedelta(hours=24))


@pytest.mark.parametrize(
    ("body", "field", "constraint"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "url", "invalid"),
        ({"url": "https://user:pw@hooks.example.com/x"}, "url", "invalid"),
        ({"url": "not a url"}, "url", "invalid"),
        ({"url": "https://example.com/" + "a" * 2048}, "url", "too_long"),
        ({"url": "http://127.0.0.1:8080/x"}, "url", "forbidden_target"),
        ({"url": "http://localhost/x"}, "url", "forbidden_target"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "url", "forbidden_target"),
        ({"url": "http://10.0.0.8/x"}, "url", "forbidden_target"),
        ({"url": "http://[::1]/x"}, "url", "forbidden_target"),
        ({"url": "http://2130706433/x"}, "url", "forbidden_target"),
        ({"url": None}, "url", "invalid_type"),
        ({"event_types": []}, "event_types", "invalid"),
        ({"event_types": ["completion.*"]}, "event_types", "invalid"),
        ({"event_types": ["nope"]}, "event_types", "invalid"),
        ({"event_types": "*"}, "event_types", "invalid_type"),
        ({"surprise": 1}, "surprise", "unknown_field"),
        (
            {"enrichments": {"learning_time": {"rollout_percent": 101}}},
            "enrichments.learning_time.rollout_percent",
            "out_of_range",
        ),
        ({"enrichments": {"warehouse": {}}}, "enrichments.warehouse", "unknown_field"),
    ],
)
async def test_bad_input_is_a_400_on_its_field(
    strict_client: httpx.AsyncClient, acme: str, body: dict[str, Any], field: str, constraint: str
) -> None:
    client = strict_client
    response = await create(client, acme, **body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["error"] == "VALIDATION_ERROR"
    assert {"field": field, "constraint": constraint}.items() <= error["details"][0].items()
    listed = await client.get("/v1/webhook-endpoints", headers=bearer(acme))
    assert listed.json()["data"] == [], "nothing was created"


async def test_a_forbidden_target_is_refused_on_update_too(
    strict_client: httpx.AsyncClient, acme: str
) -> None:
    client = strict_client
    endpoint = (await create(client, acme)).json()
    response = await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}",
        headers=bearer(acme),
        json={"url": "http://192.168.1.10/hook"},
    )
    assert response.status_code == 400
    assert response.json()["details"][0]["constraint"] == "forbidden_target"
    kept = await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(acme))
    assert kept.json()["url"] == URL


async def test_malformed_json_and_oversized_bodies(client: httpx.AsyncClient, acme: str) -> None:
    malformed = await client.post(
        "/v1/webhook-endpoints",
        headers={**bearer(acme), "Content-Type": "application/json"},
        content=b'{"url": ',
    )
    assert (malformed.status_code, malformed.json()["error"]) == (400, "INVALID_JSON")
    huge = await client.post(
        "/v1/webhook-endpoints",
        headers={**bearer(acme), "Content-Type": "application/json"},
        content=b'{"url": "' + b"a" * (70 * 1024) + b'"}',
    )
    assert (huge.status_code, huge.json()["error"]) == (413, "PAYLOAD_TOO_LARGE")
    replay = await client.post(
        f"/v1/webhook-endpoints/{uuid.uuid4()}/replay",
        headers=bearer(acme),
        json={"since": "2026-01-01T00:00:00"},
    )
    assert replay.status_code == 400
    detail = replay.json()["details"][0]
    assert (detail["field"], detail["constraint"]) == ("since", "timezone_required")


# A message id nobody sent; fixed, so that every test process collects the same test ids.
UNSENT_MESSAGE = "d750cc59-46a1-41ef-be90-e0e7ba65e521"
ROUTES = [
    ("GET", "/v1/webhook-endpoints/{id}", None),
    ("PATCH", "/v1/webhook-endpoints/{id}", {"enabled": False}),
    ("DELETE", "/v1/webhook-endpoints/{id}", None),
    ("POST", "/v1/webhook-endpoints/{id}/rotate-secret", None),
    ("GET", "/v1/webhook-endpoints/{id}/attempts", None),
    ("POST", f"/v1/webhook-endpoints/{{id}}/messages/{UNSENT_MESSAGE}/resend", None),
    ("POST", "/v1/webhook-endpoints/{id}/replay", {"since": "2026-01-01T00:00:00Z"}),
    ("POST", "/v1/webhook-endpoints/{id}/recover", {"since": "2026-01-01T00:00:00Z"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_another_tenants_endpoint_is_404_and_untouched(
    client: httpx.AsyncClient,
    acme: str,
    globex: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    theirs = (await create(client, globex)).json()
    response = await client.request(
        method, path.format(id=theirs["id"]), headers=bearer(acme), json=body
    )
    assert (response.status_code, response.json()["error"]) == (404, "NOT_FOUND")
    still = await client.get(f"/v1/webhook-endpoints/{theirs['id']}", headers=bearer(globex))
    assert still.json()["enabled"] is True
    assert still.json()["previous_secret_expires_at"] is None


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_unauthenticated_calls_are_401(
    client: httpx.AsyncClient, acme: str, method: str, path: str, body: dict[str, Any] | None
) -> None:
    endpoint = (await create(client, acme)).json()
    for headers in ({}, bearer("cg_nope_" + "x" * 40)):
        response = await client.request(
            method, path.format(id=endpoint["id"]), headers=headers, json=body
        )
        assert (response.status_code, response.json()["error"]) == (401, "UNAUTHORIZED")
    unchanged = await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(acme))
    assert unchanged.json()["enabled"] is True


async def test_a_malformed_id_is_404(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.get("/v1/webhook-endpoints/not-an-id", headers=bearer(acme))
    assert response.status_code == 404


async def test_attempts_filters(hooks: Hooks) -> None:
    hooks.receiver.script("/hook", Reply(500))
    endpoint_id, _ = await hooks.create_endpoint()
    first = await hooks.emit()
    second = await hooks.emit()
    await hooks.pump()
    url = f"/v1/webhook-endpoints/{endpoint_id}/attempts"
    by_event = await hooks.client.get(f"{url}?event_id={first}", headers=hooks.auth)
    assert {a["event_id"] for a in by_event.json()["data"]} == {first}
    failed = await hooks.client.get(f"{url}?outcome=failed", headers=hooks.auth)
    succeeded = await hooks.client.get(f"{url}?outcome=succeeded", headers=hooks.auth)
    assert len(failed.json()["data"]) == 1
    assert len(succeeded.json()["data"]) == 1
    assert {a["event_id"] for a in [*failed.json()["data"], *succeeded.json()["data"]]} == {
        first,
        second,
    }
    for bad in ("event_id=zzz", "outcome=maybe", "limit=0"):
        response = await hooks.client.get(f"{url}?{bad}", headers=hooks.auth)
        assert response.status_code == 400, bad


@pytest.fixture
async def strict_client(
    settings: Settings, database: Database, clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    """An app with the default guard: private targets refused."""
    strict = settings.model_copy(update={"allow_private_webhook_targets": False})
    app = create_app(strict, database=database, clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        yield http
