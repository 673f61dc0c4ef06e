"""GET /v1/events: the tenant's event log, newest first, by type and from an instant."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from coursegate.db import Database
from coursegate.events.outbox import NewEvent, record_events
from coursegate.kit.clock import FrozenClock
from tests.conftest import bearer


async def emit(
    database: Database, clock: FrozenClock, type_: str, tenant: str = "acme", **data: Any
) -> None:
    async with database.transaction() as session:
        await record_events(session, tenant, [NewEvent(type_, data)], clock.now())


async def log(client: httpx.AsyncClient, key: str, **params: str) -> dict[str, Any]:
    response = await client.get("/v1/events", headers=bearer(key), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def kinds(page: dict[str, Any]) -> list[tuple[str, int]]:
    return [(e["type"], e["data"]["n"]) for e in page["data"]]


@pytest.fixture
async def history(database: Database, clock: FrozenClock, acme: str, globex: str) -> dict[str, str]:
    """Five events of acme over three minutes (two in the same instant), one of globex;
    the API keys by tenant."""
    await emit(database, clock, "completion.recorded", n=1)
    clock.advance(timedelta(minutes=1))
    await emit(database, clock, "credit.earned", n=2)
    await emit(database, clock, "completion.recorded", n=3)
    await emit(database, clock, "credit.earned", tenant="globex", n=99)
    clock.advance(timedelta(minutes=1))
    await emit(database, clock, "enrollment.created", n=4)
    await emit(database, clock, "credit.earned", n=5)
    return {"acme": acme, "globex": globex}


async def test_the_log_is_newest_first(
    client: httpx.AsyncClient, history: dict[str, str], clock: FrozenClock
) -> None:
    page = await log(client, history["acme"])
    assert kinds(page) == [
        ("credit.earned", 5),
        ("enrollment.created", 4),
        ("completion.recorded", 3),
        ("credit.earned", 2),
        ("completion.recorded", 1),
    ]
    assert page["next_cursor"] is None
    newest = page["data"][0]
    assert set(newest) == {"id", "type", "occurred_at", "data"}
    assert newest["occurred_at"] == "2026-06-10T12:02:00.000Z"
    assert newest["data"] == {"n": 5}


async def test_pages_go_on_through_events_of_one_instant(
    client: httpx.AsyncClient, history: dict[str, str]
) -> None:
    seen: list[tuple[str, int]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await log(client, history["acme"], **params)
        seen += kinds(page)
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert [n for _, n in seen] == [5, 4, 3, 2, 1]


async def test_type_and_since_filter(client: httpx.AsyncClient, history: dict[str, str]) -> None:
    acme = history["acme"]
    assert kinds(await log(client, acme, type="credit.earned")) == [
        ("credit.earned", 5),
        ("credit.earned", 2),
    ]
    # `since` includes its own instant, and takes any offset.
    since = await log(client, acme, since="2026-06-10T14:01:00+02:00")
    assert [n for _, n in kinds(since)] == [5, 4, 3, 2]
    both = await log(client, acme, type="completion.recorded", since="2026-06-10T12:00:30Z")
    assert kinds(both) == [("completion.recorded", 3)]
    assert kinds(await log(client, acme, type="endpoint.disabled")) == []
    paged = await log(client, acme, type="credit.earned", limit="1")
    rest = await log(client, acme, type="credit.earned", limit="1", cursor=paged["next_cursor"])
    assert kinds(paged) + kinds(rest) == [("credit.earned", 5), ("credit.earned", 2)]
    assert rest["next_cursor"] is None


async def test_another_tenants_events_are_never_listed(
    client: httpx.AsyncClient, history: dict[str, str]
) -> None:
    assert kinds(await log(client, history["globex"])) == [("credit.earned", 99)]
    acme = await log(client, history["acme"], type="credit.earned", limit="500")
    assert 99 not in [n for _, n in kinds(acme)]
    # A cursor made on one tenant's log reads only the caller's own events.
    theirs = await log(client, history["globex"], limit="1")
    assert theirs["next_cursor"] is None
    mine = await log(client, history["acme"], limit="1")
    assert kinds(await log(client, history["globex"], cursor=mine["next_cursor"])) == [
        ("credit.earned", 99)
    ]


async def test_unauthenticated_calls_are_401(
    client: httpx.AsyncClient, history: dict[str, str]
) -> None:
    for headers in ({}, bearer("cg_nope_" + "x" * 40), {"Authorization": history["acme"]}):
        response = await client.get("/v1/events", headers=headers)
        assert (response.status_code, response.json()["error"]) == (401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    ("params", "field", "constraint"),
    [
        ({"type": "credit"}, "type", "invalid"),
        ({"type": "*"}, "type", "invalid"),
        ({"type": "x" * 65}, "type", "too_long"),
        ({"since": "2026-06-10T12:00:00"}, "since", "timezone_required"),
        ({"since": "2026-06-10"}, "since", "invalid"),
        ({"since": "yesterday"}, "since", "invalid"),
        ({"limit": "0"}, "limit", "out_of_range"),
        ({"cursor": "bm9wZQ"}, "cursor", "invalid"),
        (
            {"cursor": "eyJpZCI6IjAxYTI0NWI4LTlkMzctNzE1ZS05ODM1LTExNWY4ZGE2MGM3ZCJ9"},
            "cursor",
            "invalid",
        ),
    ],
)
async def test_malformed_parameters_are_400_on_their_field(
    client: httpx.AsyncClient, acme: str, params: dict[str, str], field: str, constraint: str
) -> None:
    response = await client.get("/v1/events", headers=bearer(acme), params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "VALIDATION_ERROR"
    assert [(d["field"], d["constraint"]) for d in body["details"]] == [(field, constraint)]
