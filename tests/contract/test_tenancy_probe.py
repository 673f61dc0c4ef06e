"""Every authenticated route, taken from the OpenAPI description (not from a list that can
forget a new one), probed across tenants and with bad keys.

Tenant `acme` owns one object of every kind a path names. For each route with a path id,
`globex`'s key gets 404 and acme's objects read the same afterwards; with no key, a
malformed key or a revoked key, every authenticated route is 401. A new path id with no
way to make its object here, or a new body with no example, fails the test by name.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.kit.ids import uuid7
from coursegate.models import ConnectorRun, Delivery, Enrollment, Event, ParkedRequest
from tests.conftest import bearer

SECRET_ENV = "COURSEGATE_TEST_PROBE_SECRET"

BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("patch", "/v1/courses/{course_id}"): {"name": "Renamed"},
    ("post", "/v1/courses/{course_id}/seats"): {"order_ref": "po-2", "quantity": 1},
    ("post", "/v1/courses/{course_id}/enrollments"): {
        "students": [{"student_id": "s-1", "email": "s1@example.org"}]
    },
    ("post", "/v1/providers/{provider_id}/keys"): {"key_id": "k2"},
    ("post", "/v1/enrollments/{enrollment_id}/claim"): {"user_id": "u-1"},
    ("post", "/v1/enrollments/{enrollment_id}/cancel"): {"author": "probe"},
    ("post", "/v1/enrollments/{enrollment_id}/activity"): {"kind": "access"},
    ("patch", "/v1/webhook-endpoints/{endpoint_id}"): {"description": "changed"},
    ("post", "/v1/webhook-endpoints/{endpoint_id}/replay"): {"since": "2026-01-01T00:00:00Z"},
    ("post", "/v1/webhook-endpoints/{endpoint_id}/recover"): {"since": "2026-01-01T00:00:00Z"},
    ("patch", "/v1/connectors/{connector_id}"): {"enabled": False},
}
"""A valid body for each route with a path id and a body: a refusal of the body (400) must
not hide whether the object was found."""

QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("get", "/v1/people/{person_id}/credits"): {"program": "prog"},
}
"""The required query parameters of routes with a path id, for the same reason."""


def operations(description: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in description["paths"].items():
        for method, operation in methods.items():
            if operation.get("security"):
                yield method, path, operation


def object_key(path: str, name: str) -> str:
    """`courses/{course_id}`: the collection a path id is read in, and the id's name."""
    match = re.search(r"([^/]+)/\{" + name + r"\}", path)
    assert match, path
    return f"{match.group(1)}/{{{name}}}"


async def make_world(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, key: str
) -> dict[str, str]:
    """One object of every kind in tenant acme, keyed like `object_key`."""
    admin = bearer(key)

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(path, headers=admin, json=body)
        assert response.status_code == 201, (path, response.text)
        assert response.headers["location"].startswith(path)
        created: dict[str, Any] = response.json()
        return created

    api_key = await post("/v1/api-keys", {"name": "probe"})
    await post(
        "/v1/programs",
        {
            "id": "prog",
            "name": "P",
            "jurisdiction": "US_CO",
            "hours_per_credit": "6",
            "identifier_namespace": "doc",
        },
    )
    person = await post("/v1/people", {"identifiers": [{"namespace": "doc", "value": "1"}]})
    await post(
        "/v1/providers",
        {
            "id": "prov",
            "program_id": "prog",
            "scheme": "standard-webhooks",
            "keys": [{"key_id": "k0"}],
        },
    )
    await post("/v1/providers/prov/keys", {"key_id": "k1"})
    today = clock.now().date()
    await post(
        "/v1/courses",
        {
            "id": "course",
            "name": "C",
            "start_date": str(today),
            "last_drop_date": str(today + timedelta(days=10)),
            "end_date": str(today + timedelta(days=30)),
            "access_period_days": 30,
        },
    )
    endpoint = await post(
        "/v1/webhook-endpoints",
        {"url": "https://hooks.example.com/coursegate", "event_types": ["*"]},
    )
    await post(
        "/v1/connectors",
        {
            "id": "conn",
            "kind": "datapass",
            "config": {
                "auth_url": "https://auth.datapass.example/oauth/token",
                "api_base_url": "https://api.datapass.example/api/v1",
                "client_id": "coursegate",
                "client_secret_ref": f"env:{SECRET_ENV}",
                "definition_id": "api_formation",
            },
        },
    )
    # What only the system makes (a saga's enrollment, a parked report, a run, a message)
    # is written as the system writes it.
    now = clock.now()
    ids = {name: uuid7() for name in ("enrollment", "parked", "run", "event")}
    async with database.transaction() as session:
        session.add_all(
            [
                Enrollment(
                    tenant_id="acme",
                    id=ids["enrollment"],
                    course_id="course",
                    person_id=uuid.UUID(person["id"]),
                    status="assigned",
                    access_ends_at=now + timedelta(days=30),
                    created_at=now,
                    updated_at=now,
                ),
                ParkedRequest(
                    tenant_id="acme",
                    id=ids["parked"],
                    provider_id="prov",
                    key_id="k1",
                    namespace="doc",
                    person_digest="0" * 64,
                    body=b"{}",
                    parked_at=now,
                    attempts=0,
                ),
                ConnectorRun(
                    tenant_id="acme",
                    id=ids["run"],
                    connector_id="conn",
                    trigger="manual",
                    status="held",
                    dry_run=False,
                    started_at=now,
                    heartbeat_at=now,
                    pages=0,
                    created=0,
                    skipped=0,
                    rejected=0,
                ),
                Event(
                    tenant_id="acme",
                    id=ids["event"],
                    type="credit.earned",
                    occurred_at=now,
                    data={},
                    routed_at=now,
                ),
            ]
        )
        await session.flush()
        session.add(
            Delivery(
                tenant_id="acme",
                id=uuid7(),
                endpoint_id=uuid.UUID(endpoint["id"]),
                event_id=ids["event"],
                origin="event",
                status="delivered",
                attempts=1,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return {
        "api-keys/{key_id}": api_key["id"],
        "programs/{program_id}": "prog",
        "people/{person_id}": person["id"],
        "providers/{provider_id}": "prov",
        "keys/{key_id}": "k1",
        "courses/{course_id}": "course",
        "enrollments/{enrollment_id}": str(ids["enrollment"]),
        "parked/{parked_id}": str(ids["parked"]),
        "webhook-endpoints/{endpoint_id}": endpoint["id"],
        "messages/{event_id}": str(ids["event"]),
        "connectors/{connector_id}": "conn",
        "runs/{run_id}": str(ids["run"]),
    }


def url(path: str, world: dict[str, str]) -> str:
    missing = [
        object_key(path, name)
        for name in re.findall(r"\{(\w+)\}", path)
        if object_key(path, name) not in world
    ]
    assert not missing, f"{path}: the probe cannot make {missing}; add it to make_world"
    return re.sub(r"\{(\w+)\}", lambda m: world[object_key(path, m.group(1))], path)


async def snapshot(
    client: httpx.AsyncClient, description: dict[str, Any], world: dict[str, str], key: str
) -> dict[str, Any]:
    """What acme reads at every GET with a path id."""
    seen: dict[str, Any] = {}
    for method, path, _ in operations(description):
        if method == "get" and "{" in path:
            response = await client.get(
                url(path, world), headers=bearer(key), params=QUERIES.get((method, path))
            )
            assert response.status_code == 200, (path, response.text)
            seen[path] = response.json()
    return seen


async def send(
    client: httpx.AsyncClient, method: str, path: str, world: dict[str, str], headers: Any
) -> httpx.Response:
    body = BODIES.get((method, path))
    return await client.request(
        method.upper(),
        url(path, world),
        params=QUERIES.get((method, path)),
        headers=headers,
        content=json.dumps(body if body is not None else {}),
    )


@pytest.fixture
def probe_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "probe-secret")


@pytest.mark.usefixtures("probe_secret")
async def test_every_route_with_a_path_id_is_404_for_another_tenant(
    app: FastAPI,
    client: httpx.AsyncClient,
    database: Database,
    clock: FrozenClock,
    acme: str,
    globex: str,
) -> None:
    description = app.openapi()
    world = await make_world(client, database, clock, acme)
    for method, path, operation in operations(description):
        if "requestBody" in operation and "{" in path:
            assert (method, path) in BODIES, f"add a valid body for {method.upper()} {path}"
        required = [
            p["name"]
            for p in operation.get("parameters", [])
            if p["in"] == "query" and p.get("required") and "{" in path
        ]
        assert set(required) <= set(QUERIES.get((method, path), {})), (method, path, required)
    before = await snapshot(client, description, world, acme)
    probed = []
    for method, path, _ in operations(description):
        if "{" not in path:
            continue
        headers = {**bearer(globex), "Content-Type": "application/json"}
        response = await send(client, method, path, world, headers)
        assert (response.status_code, response.json()) == (404, {"error": "NOT_FOUND"}), (
            method,
            path,
            response.text,
        )
        probed.append((method, path))
    assert await snapshot(client, description, world, acme) == before
    assert len(probed) >= 35, probed  # the description's routes with a path id, all of them


@pytest.mark.usefixtures("probe_secret")
async def test_every_authenticated_route_refuses_a_missing_bad_or_revoked_key(
    app: FastAPI,
    client: httpx.AsyncClient,
    database: Database,
    clock: FrozenClock,
    acme: str,
) -> None:
    description = app.openapi()
    world = await make_world(client, database, clock, acme)
    revoked = await create_tenant_key(client, acme)
    attempts = {
        "no key": {},
        "malformed": {"Authorization": "Bearer not-a-key"},
        "another scheme": {"Authorization": f"Basic {acme}"},
        "revoked": bearer(revoked),
    }
    count = 0
    for method, path, _ in operations(description):
        for what, headers in attempts.items():
            response = await send(
                client, method, path, world, {**headers, "Content-Type": "application/json"}
            )
            assert (response.status_code, response.json()) == (
                401,
                {"error": "UNAUTHORIZED"},
            ), (what, method, path, response.text)
            count += 1
    assert count >= 4 * 60, count


async def create_tenant_key(client: httpx.AsyncClient, key: str) -> str:
    """A second key of acme's, revoked at once."""
    created = (await client.post("/v1/api-keys", headers=bearer(key), json={})).json()
    revoked = await client.delete(f"/v1/api-keys/{created['id']}", headers=bearer(key))
    assert revoked.status_code == 200
    plaintext: str = created["key"]
    return plaintext
