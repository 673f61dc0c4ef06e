"""/v1/courses: create, read, list, patch and activate courses (SPEC §1, §3)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.models import Course
from tests.conftest import bearer
from tests.courses.helpers import course_body, create_course, create_provider, details_of
from tests.setup.helpers import create_program

T0_TEXT = "2026-06-10T12:00:00.000Z"


async def course_ids(client: httpx.AsyncClient, key: str, **params: str) -> list[str]:
    response = await client.get(
        "/v1/courses", headers=bearer(key), params={"limit": "500", **params}
    )
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["data"]]


async def expire(database: Database, tenant_id: str, course_id: str) -> None:
    """What the daily expiry job will do; not reachable through the API."""
    async with database.transaction() as session:
        await session.execute(
            update(Course)
            .where(Course.tenant_id == tenant_id, Course.id == course_id)
            .values(status="expired")
        )


async def test_create_returns_201_with_a_draft_course(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.post("/v1/courses", headers=bearer(acme), json=course_body())
    assert response.status_code == 201, response.text
    assert response.json() == {
        "id": "fin-lit-101",
        "name": "Financial Literacy",
        "program_id": None,
        "start_date": "2026-07-01",
        "last_drop_date": "2026-07-15",
        "end_date": "2026-09-30",
        "access_period_days": 90,
        "certificate_validity_days": None,
        "external_ids": {},
        "status": "draft",
        "created_at": T0_TEXT,
        "updated_at": T0_TEXT,
    }
    fetched = await client.get("/v1/courses/fin-lit-101", headers=bearer(acme))
    assert fetched.status_code == 200
    assert fetched.json() == response.json()


async def test_create_with_program_certificate_and_external_ids(
    client: httpx.AsyncClient, acme: str
) -> None:
    await create_program(client, acme)
    await create_provider(client, acme, "edovo")
    await create_provider(client, acme, "coursera")
    created = await create_course(
        client,
        acme,
        program_id="co",
        certificate_validity_days=365,
        external_ids={"edovo": "FIN-101", "coursera": "fin_lit"},
    )
    assert created["program_id"] == "co"
    assert created["certificate_validity_days"] == 365
    assert created["external_ids"] == {"coursera": "fin_lit", "edovo": "FIN-101"}
    fetched = await client.get("/v1/courses/fin-lit-101", headers=bearer(acme))
    assert fetched.json() == created


async def test_start_and_last_drop_may_be_the_same_day(
    client: httpx.AsyncClient, acme: str
) -> None:
    created = await create_course(
        client, acme, start_date="2026-07-01", last_drop_date="2026-07-01", end_date="2026-07-02"
    )
    assert created["last_drop_date"] == "2026-07-01"


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (("2026-07-10", "2026-07-09", "2026-09-30"), [("last_drop_date", "out_of_range")]),
        (("2026-07-01", "2026-07-15", "2026-07-15"), [("end_date", "out_of_range")]),
        (("2026-07-01", "2026-07-15", "2026-07-14"), [("end_date", "out_of_range")]),
        (
            ("2026-07-10", "2026-07-09", "2026-07-09"),
            [("last_drop_date", "out_of_range"), ("end_date", "out_of_range")],
        ),
    ],
)
async def test_the_date_rule_names_the_offending_date(
    client: httpx.AsyncClient, acme: str, dates: tuple[str, str, str], expected: list[Any]
) -> None:
    start, last_drop, end = dates
    response = await client.post(
        "/v1/courses",
        headers=bearer(acme),
        json=course_body(start_date=start, last_drop_date=last_drop, end_date=end),
    )
    assert details_of(response) == expected
    assert await course_ids(client, acme) == []


@pytest.mark.parametrize(
    ("overrides", "field", "constraint"),
    [
        ({"id": "Bad Id"}, "id", "invalid"),
        ({"id": "a" * 64}, "id", "invalid"),
        ({"name": ""}, "name", "invalid"),
        ({"name": "n" * 257}, "name", "too_long"),
        ({"start_date": "2026-02-30"}, "start_date", "invalid"),
        ({"start_date": "2026-7-1"}, "start_date", "invalid"),
        ({"start_date": "2026-07-01T00:00:00Z"}, "start_date", "invalid"),
        ({"end_date": 20260930}, "end_date", "invalid_type"),
        ({"end_date": None}, "end_date", "invalid_type"),
        ({"access_period_days": 0}, "access_period_days", "out_of_range"),
        ({"access_period_days": 3651}, "access_period_days", "out_of_range"),
        ({"access_period_days": "90"}, "access_period_days", "invalid_type"),
        ({"access_period_days": 90.5}, "access_period_days", "invalid_type"),
        ({"access_period_days": True}, "access_period_days", "invalid_type"),
        ({"certificate_validity_days": 0}, "certificate_validity_days", "out_of_range"),
        ({"certificate_validity_days": 36501}, "certificate_validity_days", "out_of_range"),
        ({"program_id": "Not A Slug"}, "program_id", "invalid"),
        ({"program_id": "nope"}, "program_id", "invalid"),
        ({"external_ids": {"nope": "X-1"}}, "external_ids.nope", "invalid"),
        ({"external_ids": ["edovo"]}, "external_ids", "invalid_type"),
        ({"colour": "blue"}, "colour", "unknown_field"),
    ],
)
async def test_bad_fields_are_refused_with_their_constraint(
    client: httpx.AsyncClient,
    acme: str,
    overrides: dict[str, Any],
    field: str,
    constraint: str,
) -> None:
    response = await client.post("/v1/courses", headers=bearer(acme), json=course_body(**overrides))
    assert details_of(response) == [(field, constraint)]
    assert await course_ids(client, acme) == []


async def test_limits_that_are_accepted(client: httpx.AsyncClient, acme: str) -> None:
    created = await create_course(
        client, acme, access_period_days=3650, certificate_validity_days=36500
    )
    assert (created["access_period_days"], created["certificate_validity_days"]) == (3650, 36500)
    one = await create_course(
        client, acme, id="one", access_period_days=1, certificate_validity_days=1
    )
    assert (one["access_period_days"], one["certificate_validity_days"]) == (1, 1)


async def test_missing_fields_are_each_required(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.post("/v1/courses", headers=bearer(acme), json={})
    assert sorted(details_of(response)) == [
        ("access_period_days", "required"),
        ("end_date", "required"),
        ("id", "required"),
        ("last_drop_date", "required"),
        ("name", "required"),
        ("start_date", "required"),
    ]


async def test_a_duplicate_id_is_409_and_keeps_the_original(
    client: httpx.AsyncClient, acme: str
) -> None:
    first = await create_course(client, acme)
    again = await client.post("/v1/courses", headers=bearer(acme), json=course_body(name="Another"))
    assert again.status_code == 409
    assert again.json()["error"] == "ALREADY_EXISTS"
    fetched = await client.get("/v1/courses/fin-lit-101", headers=bearer(acme))
    assert fetched.json() == first


async def test_two_tenants_may_use_the_same_course_id(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    await create_course(client, acme)
    other = await create_course(client, globex, name="Globex finance")
    assert other["name"] == "Globex finance"
    fetched = await client.get("/v1/courses/fin-lit-101", headers=bearer(acme))
    assert fetched.json()["name"] == "Financial Literacy"


async def test_a_provider_course_maps_to_one_course(client: httpx.AsyncClient, acme: str) -> None:
    await create_program(client, acme)
    await create_provider(client, acme, "edovo")
    await create_course(client, acme, external_ids={"edovo": "FIN-101"})
    taken = await client.post(
        "/v1/courses",
        headers=bearer(acme),
        json=course_body(id="other", external_ids={"edovo": "FIN-101"}),
    )
    assert taken.status_code == 409
    assert taken.json()["error"] == "ALREADY_EXISTS"
    assert await course_ids(client, acme) == ["fin-lit-101"]
    # Another course may use another id of the same provider.
    other = await create_course(client, acme, id="other", external_ids={"edovo": "FIN-102"})
    assert other["external_ids"] == {"edovo": "FIN-102"}
    # And patching a course onto a taken id is refused the same way.
    patched = await client.patch(
        "/v1/courses/other", headers=bearer(acme), json={"external_ids": {"edovo": "FIN-101"}}
    )
    assert patched.status_code == 409
    assert patched.json()["error"] == "ALREADY_EXISTS"
    fetched = await client.get("/v1/courses/other", headers=bearer(acme))
    assert fetched.json()["external_ids"] == {"edovo": "FIN-102"}


async def test_another_tenants_provider_is_unknown(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    await create_program(client, globex)
    await create_provider(client, globex, "edovo")
    response = await client.post(
        "/v1/courses", headers=bearer(acme), json=course_body(external_ids={"edovo": "X"})
    )
    assert details_of(response) == [("external_ids.edovo", "invalid")]


async def test_another_tenants_program_is_unknown(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    await create_program(client, globex)
    response = await client.post(
        "/v1/courses", headers=bearer(acme), json=course_body(program_id="co")
    )
    assert details_of(response) == [("program_id", "invalid")]


async def test_the_list_paginates_by_id_and_filters(
    client: httpx.AsyncClient, acme: str, globex: str, database: Database
) -> None:
    await create_program(client, acme)
    await create_program(client, acme, "other")
    for course_id in ["c-c", "c-a", "c-e", "c-b", "c-d"]:
        program = "co" if course_id in {"c-a", "c-c"} else "other"
        await create_course(client, acme, id=course_id, program_id=program)
    await create_course(client, globex, id="c-bb")
    for course_id in ["c-b", "c-c"]:
        r = await client.post(f"/v1/courses/{course_id}/activate", headers=bearer(acme))
        assert r.status_code == 200, r.text
    await expire(database, "acme", "c-e")

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/courses", headers=bearer(acme), params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [c["id"] for c in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert (seen, pages) == (["c-a", "c-b", "c-c", "c-d", "c-e"], 3)

    assert await course_ids(client, acme, status="active") == ["c-b", "c-c"]
    assert await course_ids(client, acme, status="draft") == ["c-a", "c-d"]
    assert await course_ids(client, acme, status="expired") == ["c-e"]
    assert await course_ids(client, acme, program="co") == ["c-a", "c-c"]
    assert await course_ids(client, acme, program="co", status="active") == ["c-c"]
    assert await course_ids(client, acme, program="nope") == []
    page = (
        await client.get(
            "/v1/courses", headers=bearer(acme), params={"status": "draft", "limit": "1"}
        )
    ).json()
    assert [c["id"] for c in page["data"]] == ["c-a"]
    rest = await client.get(
        "/v1/courses",
        headers=bearer(acme),
        params={"status": "draft", "cursor": page["next_cursor"]},
    )
    assert [c["id"] for c in rest.json()["data"]] == ["c-d"]
    assert await course_ids(client, globex) == ["c-bb"]


async def test_the_list_shows_external_ids(client: httpx.AsyncClient, acme: str) -> None:
    await create_program(client, acme)
    await create_provider(client, acme, "edovo")
    await create_course(client, acme, external_ids={"edovo": "FIN-101"})
    await create_course(client, acme, id="plain")
    listed = (await client.get("/v1/courses", headers=bearer(acme))).json()["data"]
    assert [(c["id"], c["external_ids"]) for c in listed] == [
        ("fin-lit-101", {"edovo": "FIN-101"}),
        ("plain", {}),
    ]


@pytest.mark.parametrize(
    ("params", "field", "constraint"),
    [
        ({"limit": "0"}, "limit", "out_of_range"),
        ({"limit": "two"}, "limit", "invalid_type"),
        ({"cursor": "!!!"}, "cursor", "invalid"),
    ],
)
async def test_bad_list_parameters_are_400(
    client: httpx.AsyncClient, acme: str, params: dict[str, str], field: str, constraint: str
) -> None:
    response = await client.get("/v1/courses", headers=bearer(acme), params=params)
    assert details_of(response) == [(field, constraint)]


async def test_patch_changes_only_what_is_sent(
    client: httpx.AsyncClient, acme: str, clock: FrozenClock
) -> None:
    await create_program(client, acme)
    await create_provider(client, acme, "edovo")
    await create_provider(client, acme, "coursera")
    created = await create_course(
        client, acme, program_id="co", certificate_validity_days=30, external_ids={"edovo": "A"}
    )
    clock.advance(timedelta(minutes=5))
    response = await client.patch(
        "/v1/courses/fin-lit-101",
        headers=bearer(acme),
        json={"name": "Money basics", "end_date": "2026-10-31", "access_period_days": 120},
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched == {
        **created,
        "name": "Money basics",
        "end_date": "2026-10-31",
        "access_period_days": 120,
        "updated_at": "2026-06-10T12:05:00.000Z",
    }
    # Clearing the optional fields and replacing the mapping.
    cleared = await client.patch(
        "/v1/courses/fin-lit-101",
        headers=bearer(acme),
        json={
            "program_id": None,
            "certificate_validity_days": None,
            "external_ids": {"coursera": "B"},
        },
    )
    assert cleared.status_code == 200, cleared.text
    body = cleared.json()
    assert (body["program_id"], body["certificate_validity_days"]) == (None, None)
    assert body["external_ids"] == {"coursera": "B"}
    fetched = await client.get("/v1/courses/fin-lit-101", headers=bearer(acme))
    assert fetched.json() == body
    # The old mapping is free again.
    reused = await create_course(client, acme, id="other", external_ids={"edovo": "A"})
    assert reused["external_ids"] == {"edovo": "A"}


async def test_a_patch_that_changes_nothing_keeps_updated_at(
    client: httpx.AsyncClient, acme: str, clock: FrozenClock
) -> None:
    created = await create_course(client, acme)
    clock.advance(timedelta(minutes=5))
    response = await client.patch(
        "/v1/courses/fin-lit-101", headers=bearer(acme), json={"name": created["name"]}
    )
    assert response.status_code == 200
    assert response.json() == created
    empty = await client.patch("/v1/courses/fin-lit-101", headers=bearer(acme), json={})
    assert empty.json() == created


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"last_drop_date": "2026-06-30"}, [("last_drop_date", "out_of_range")]),
        ({"start_date": "2026-07-16"}, [("last_drop_date", "out_of_range")]),
        ({"end_date": "2026-07-15"}, [("end_date", "out_of_range")]),
        ({"last_drop_date": "2026-09-30"}, [("end_date", "out_of_range")]),
        ({"name": None}, [("name", "invalid_type")]),
        ({"start_date": None}, [("start_date", "invalid_type")]),
        ({"access_period_days": None}, [("access_period_days", "invalid_type")]),
        ({"external_ids": None}, [("external_ids", "invalid_type")]),
        ({"access_period_days": 0}, [("access_period_days", "out_of_range")]),
        ({"program_id": "nope"}, [("program_id", "invalid")]),
        ({"external_ids": {"nope": "X"}}, [("external_ids.nope", "invalid")]),
        ({"id": "renamed"}, [("id", "unknown_field")]),
        ({"status": "active"}, [("status", "unknown_field")]),
    ],
)
async def test_bad_patches_are_refused_and_change_nothing(
    client: httpx.AsyncClient, acme: str, patch: dict[str, Any], expected: list[Any]
) -> None:
    created = await create_course(client, acme)
    response = await client.patch("/v1/courses/fin-lit-101", headers=bearer(acme), json=patch)
    assert details_of(response) == expected
    fetched = await client.get("/v1/courses/fin-lit-101", headers=bearer(acme))
    assert fetched.json() == created


async def test_a_patch_may_move_all_dates_together(client: httpx.AsyncClient, acme: str) -> None:
    await create_course(client, acme)
    response = await client.patch(
        "/v1/courses/fin-lit-101",
        headers=bearer(acme),
        json={"start_date": "2027-01-01", "last_drop_date": "2027-01-10", "end_date": "2027-03-01"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["start_date"], body["last_drop_date"], body["end_date"]) == (
        "2027-01-01",
        "2027-01-10",
        "2027-03-01",
    )


async def test_activate_is_idempotent(
    client: httpx.AsyncClient, acme: str, clock: FrozenClock
) -> None:
    await create_course(client, acme)
    clock.advance(timedelta(minutes=1))
    first = await client.post("/v1/courses/fin-lit-101/activate", headers=bearer(acme))
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "active"
    assert first.json()["updated_at"] == "2026-06-10T12:01:00.000Z"
    clock.advance(timedelta(minutes=1))
    again = await client.post("/v1/courses/fin-lit-101/activate", headers=bearer(acme))
    assert again.status_code == 200
    assert again.json() == first.json()
    # An active course may still be changed.
    patched = await client.patch(
        "/v1/courses/fin-lit-101", headers=bearer(acme), json={"name": "Renamed"}
    )
    assert patched.status_code == 200
    assert patched.json()["status"] == "active"


async def test_an_expired_course_is_frozen(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    await create_course(client, acme)
    await expire(database, "acme", "fin-lit-101")
    before = (await client.get("/v1/courses/fin-lit-101", headers=bearer(acme))).json()
    activated = await client.post("/v1/courses/fin-lit-101/activate", headers=bearer(acme))
    patched = await client.patch(
        "/v1/courses/fin-lit-101", headers=bearer(acme), json={"name": "Renamed"}
    )
    for response in (activated, patched):
        assert response.status_code == 409
        assert response.json()["error"] == "COURSE_EXPIRED"
    after = (await client.get("/v1/courses/fin-lit-101", headers=bearer(acme))).json()
    assert after == before
    assert after["status"] == "expired"


async def test_another_tenants_course_is_404_on_every_route(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    created = await create_course(client, acme)
    h = bearer(globex)
    responses = [
        await client.get("/v1/courses/fin-lit-101", headers=h),
        await client.patch("/v1/courses/fin-lit-101", headers=h, json={"name": "Mine"}),
        await client.post("/v1/courses/fin-lit-101/activate", headers=h),
        await client.post(
            "/v1/courses/fin-lit-101/seats", headers=h, json={"quantity": 1, "order_ref": "o"}
        ),
        await client.get("/v1/courses/fin-lit-101/seats", headers=h),
    ]
    for response in responses:
        assert response.status_code == 404, response.text
        assert response.json() == {"error": "NOT_FOUND"}
    assert await course_ids(client, globex) == []
    fetched = await client.get("/v1/courses/fin-lit-101", headers=bearer(acme))
    assert fetched.json() == created


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/courses/nope"),
        ("PATCH", "/v1/courses/nope"),
        ("POST", "/v1/courses/nope/activate"),
        ("GET", "/v1/courses/nope/seats"),
    ],
)
async def test_an_unknown_course_is_404(
    client: httpx.AsyncClient, acme: str, method: str, path: str
) -> None:
    response = await client.request(method, path, headers=bearer(acme), json={})
    assert response.status_code == 404
    assert response.json() == {"error": "NOT_FOUND"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/courses", course_body()),
        ("GET", "/v1/courses", None),
        ("GET", "/v1/courses/fin-lit-101", None),
        ("PATCH", "/v1/courses/fin-lit-101", {"name": "x"}),
        ("POST", "/v1/courses/fin-lit-101/activate", None),
        ("POST", "/v1/courses/fin-lit-101/seats", {"quantity": 1, "order_ref": "o"}),
        ("GET", "/v1/courses/fin-lit-101/seats", None),
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
    await create_course(client, acme)
    response = await client.request(method, path, headers=headers, json=body)
    assert response.status_code == 401
    assert response.json() == {"error": "UNAUTHORIZED"}
    fetched = (await client.get("/v1/courses/fin-lit-101", headers=bearer(acme))).json()
    assert (fetched["name"], fetched["status"]) == ("Financial Literacy", "draft")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/courses"),
        ("PATCH", "/v1/courses/fin-lit-101"),
        ("POST", "/v1/courses/fin-lit-101/seats"),
    ],
)
async def test_malformed_json_is_invalid_json(
    client: httpx.AsyncClient, acme: str, method: str, path: str
) -> None:
    await create_course(client, acme)
    headers = {**bearer(acme), "Content-Type": "application/json"}
    response = await client.request(method, path, headers=headers, content=b'{"name": "x",')
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_JSON"


async def test_bodies_over_64_kib_are_413(client: httpx.AsyncClient, acme: str) -> None:
    headers = {**bearer(acme), "Content-Type": "application/json"}
    raw = b'{"name": "' + b"n" * (65 * 1024) + b'"}'
    response = await client.post("/v1/courses", headers=headers, content=raw)
    assert response.status_code == 413
    assert response.json() == {"error": "PAYLOAD_TOO_LARGE"}


@pytest.mark.postgres_only
async def test_concurrent_creates_of_one_course_make_one(
    client: httpx.AsyncClient, acme: str
) -> None:
    responses = await asyncio.gather(
        *(client.post("/v1/courses", headers=bearer(acme), json=course_body()) for _ in range(6))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5, [
        r.text for r in responses
    ]
    assert await course_ids(client, acme) == ["fin-lit-101"]
