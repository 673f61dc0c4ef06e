"""POST/GET /v1/programs: a tenant's programs and their crediting rules (SPEC §0, §1, §7)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import bearer

T0_TEXT = "2026-06-10T12:00:00.000Z"


def program_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "co-earned-time",
        "name": "Colorado earned time",
        "jurisdiction": "US_CO",
        "hours_per_credit": "6",
        "identifier_namespace": "us_co_doc_id",
    }
    body.update(overrides)
    return body


async def program_ids(client: httpx.AsyncClient, key: str) -> list[str]:
    response = await client.get("/v1/programs", headers=bearer(key), params={"limit": "500"})
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["data"]]


def details_of(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "VALIDATION_ERROR"
    return [(d["field"], d["constraint"]) for d in body["details"]]


async def test_create_returns_201_with_the_program(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.post("/v1/programs", headers=bearer(acme), json=program_body())
    assert response.status_code == 201, response.text
    assert response.json() == {
        "id": "co-earned-time",
        "name": "Colorado earned time",
        "jurisdiction": "US_CO",
        "hours_per_credit": "6.00",
        "identifier_namespace": "us_co_doc_id",
        "created_at": T0_TEXT,
    }


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("6", "6.00"),
        (6, "6.00"),
        ("7.5", "7.50"),
        (7.5, "7.50"),
        ("0.01", "0.01"),
        (" 12.25 ", "12.25"),
        ("10000", "10000.00"),
        (10000, "10000.00"),
    ],
)
async def test_hours_per_credit_accepts_numbers_and_numeric_text(
    client: httpx.AsyncClient, acme: str, given: object, shown: str
) -> None:
    created = await client.post(
        "/v1/programs", headers=bearer(acme), json=program_body(hours_per_credit=given)
    )
    assert created.status_code == 201, created.text
    assert created.json()["hours_per_credit"] == shown
    # Stored exactly (integer hundredths), read back the same on both databases.
    fetched = await client.get("/v1/programs/co-earned-time", headers=bearer(acme))
    assert fetched.json()["hours_per_credit"] == shown


@pytest.mark.parametrize(
    ("value", "constraint"),
    [
        (0, "must_be_positive"),
        ("0", "must_be_positive"),
        ("0.00", "must_be_positive"),
        (-1, "must_be_positive"),
        ("-1", "must_be_positive"),
        (-0.5, "must_be_positive"),
        ("1.005", "too_many_decimal_places"),
        (1.005, "too_many_decimal_places"),
        ("abc", "invalid_type"),
        ("", "invalid_type"),
        ("NaN", "invalid_type"),
        ("Infinity", "invalid_type"),
        (True, "invalid_type"),
        (False, "invalid_type"),
        (None, "invalid_type"),
        ([6], "invalid_type"),
        ({"hours": 6}, "invalid_type"),
        (10001, "out_of_range"),
        ("10000.01", "out_of_range"),
        ("1e9", "out_of_range"),
    ],
)
async def test_bad_hours_per_credit_is_refused_with_its_constraint(
    client: httpx.AsyncClient, acme: str, value: object, constraint: str
) -> None:
    response = await client.post(
        "/v1/programs", headers=bearer(acme), json=program_body(hours_per_credit=value)
    )
    assert details_of(response) == [("hours_per_credit", constraint)]
    assert await program_ids(client, acme) == []


@pytest.mark.parametrize(
    "jurisdiction", ["us_co", "USCO", "US-CO", "US_", "U", "", "US_CO ", "XX_" + "A" * 13]
)
async def test_jurisdiction_must_look_like_us_co(
    client: httpx.AsyncClient, acme: str, jurisdiction: str
) -> None:
    response = await client.post(
        "/v1/programs", headers=bearer(acme), json=program_body(jurisdiction=jurisdiction)
    )
    assert details_of(response) == [("jurisdiction", "invalid")]
    assert await program_ids(client, acme) == []


@pytest.mark.parametrize("jurisdiction", ["US", "US_CO", "FR_75", "US_" + "A" * 12])
async def test_jurisdiction_codes_that_are_accepted(
    client: httpx.AsyncClient, acme: str, jurisdiction: str
) -> None:
    response = await client.post(
        "/v1/programs", headers=bearer(acme), json=program_body(jurisdiction=jurisdiction)
    )
    assert response.status_code == 201, response.text
    assert response.json()["jurisdiction"] == jurisdiction


@pytest.mark.parametrize(
    "program_id",
    ["Co-Earned", "-co", "_co", "co earned", "", "a" * 64, "coé", "co/earned", "co.earned"],
)
async def test_program_id_must_be_a_slug(
    client: httpx.AsyncClient, acme: str, program_id: str
) -> None:
    response = await client.post(
        "/v1/programs", headers=bearer(acme), json=program_body(id=program_id)
    )
    assert details_of(response) == [("id", "invalid")]
    assert await program_ids(client, acme) == []


async def test_a_63_character_slug_is_the_longest_id(client: httpx.AsyncClient, acme: str) -> None:
    longest = "a" * 63
    response = await client.post(
        "/v1/programs", headers=bearer(acme), json=program_body(id=longest)
    )
    assert response.status_code == 201, response.text
    assert (await client.get(f"/v1/programs/{longest}", headers=bearer(acme))).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "field", "constraint"),
    [
        ({"name": "n" * 257}, "name", "too_long"),
        ({"name": 5}, "name", "invalid_type"),
        ({"jurisdiction": 5}, "jurisdiction", "invalid_type"),
        ({"id": 5}, "id", "invalid_type"),
        ({"identifier_namespace": "US CO DOC"}, "identifier_namespace", "invalid"),
        ({"identifier_namespace": ""}, "identifier_namespace", "invalid"),
        ({"identifier_namespace": "n" * 65}, "identifier_namespace", "invalid"),
        ({"colour": "blue"}, "colour", "unknown_field"),
    ],
)
async def test_other_bad_fields_are_refused(
    client: httpx.AsyncClient,
    acme: str,
    overrides: dict[str, Any],
    field: str,
    constraint: str,
) -> None:
    response = await client.post(
        "/v1/programs", headers=bearer(acme), json=program_body(**overrides)
    )
    assert details_of(response) == [(field, constraint)]
    assert await program_ids(client, acme) == []


async def test_missing_fields_are_each_required(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.post("/v1/programs", headers=bearer(acme), json={})
    assert sorted(details_of(response)) == [
        ("hours_per_credit", "required"),
        ("id", "required"),
        ("identifier_namespace", "required"),
        ("jurisdiction", "required"),
        ("name", "required"),
    ]
    body = program_body()
    del body["hours_per_credit"]
    one_missing = await client.post("/v1/programs", headers=bearer(acme), json=body)
    assert details_of(one_missing) == [("hours_per_credit", "required")]
    assert await program_ids(client, acme) == []


async def test_several_problems_are_reported_together(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.post(
        "/v1/programs",
        headers=bearer(acme),
        json=program_body(id="Bad Id", jurisdiction="colorado", hours_per_credit=0),
    )
    assert sorted(details_of(response)) == [
        ("hours_per_credit", "must_be_positive"),
        ("id", "invalid"),
        ("jurisdiction", "invalid"),
    ]


async def test_a_duplicate_id_is_409_and_keeps_the_original(
    client: httpx.AsyncClient, acme: str
) -> None:
    first = await client.post("/v1/programs", headers=bearer(acme), json=program_body())
    assert first.status_code == 201
    again = await client.post(
        "/v1/programs",
        headers=bearer(acme),
        json=program_body(name="Renamed", hours_per_credit="3"),
    )
    assert again.status_code == 409
    assert again.json()["error"] == "ALREADY_EXISTS"
    fetched = await client.get("/v1/programs/co-earned-time", headers=bearer(acme))
    assert fetched.json() == first.json()
    assert await program_ids(client, acme) == ["co-earned-time"]


async def test_two_tenants_may_use_the_same_program_id(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    a = await client.post("/v1/programs", headers=bearer(acme), json=program_body())
    g = await client.post(
        "/v1/programs", headers=bearer(globex), json=program_body(hours_per_credit="8")
    )
    assert (a.status_code, g.status_code) == (201, 201)
    fetched_a = await client.get("/v1/programs/co-earned-time", headers=bearer(acme))
    fetched_g = await client.get("/v1/programs/co-earned-time", headers=bearer(globex))
    assert fetched_a.json()["hours_per_credit"] == "6.00"
    assert fetched_g.json()["hours_per_credit"] == "8.00"


async def test_get_one_program(client: httpx.AsyncClient, acme: str) -> None:
    created = await client.post("/v1/programs", headers=bearer(acme), json=program_body())
    fetched = await client.get("/v1/programs/co-earned-time", headers=bearer(acme))
    assert fetched.status_code == 200
    assert fetched.json() == created.json()


@pytest.mark.parametrize("program_id", ["nope", "Co-Earned-Time", "x" * 200])
async def test_an_unknown_program_is_404(
    client: httpx.AsyncClient, acme: str, program_id: str
) -> None:
    await client.post("/v1/programs", headers=bearer(acme), json=program_body())
    response = await client.get(f"/v1/programs/{program_id}", headers=bearer(acme))
    assert response.status_code == 404
    assert response.json() == {"error": "NOT_FOUND"}


async def test_another_tenants_program_is_404_and_not_listed(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    await client.post("/v1/programs", headers=bearer(acme), json=program_body())
    response = await client.get("/v1/programs/co-earned-time", headers=bearer(globex))
    assert response.status_code == 404
    assert response.json() == {"error": "NOT_FOUND"}
    listed = await client.get("/v1/programs", headers=bearer(globex))
    assert listed.json() == {"data": [], "next_cursor": None}


async def test_the_list_paginates_by_id_with_a_cursor(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    for program_id in ["p-c", "p-a", "p-e", "p-b", "p-d"]:
        r = await client.post(
            "/v1/programs", headers=bearer(acme), json=program_body(id=program_id)
        )
        assert r.status_code == 201, r.text
    # Another tenant's programs never show up in the pages.
    g = await client.post("/v1/programs", headers=bearer(globex), json=program_body(id="p-bb"))
    assert g.status_code == 201

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/programs", headers=bearer(acme), params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["data"]) <= 2
        seen += [p["id"] for p in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["p-a", "p-b", "p-c", "p-d", "p-e"]
    assert pages == 3

    everything = await client.get("/v1/programs", headers=bearer(acme))
    body = everything.json()
    assert [p["id"] for p in body["data"]] == seen
    assert body["next_cursor"] is None
    assert body["data"][0]["hours_per_credit"] == "6.00"


async def test_an_exactly_full_page_has_no_next_cursor(
    client: httpx.AsyncClient, acme: str
) -> None:
    for program_id in ["p-a", "p-b"]:
        await client.post("/v1/programs", headers=bearer(acme), json=program_body(id=program_id))
    page = (await client.get("/v1/programs", headers=bearer(acme), params={"limit": "2"})).json()
    assert [p["id"] for p in page["data"]] == ["p-a", "p-b"]
    assert page["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field", "constraint"),
    [
        ({"limit": "0"}, "limit", "out_of_range"),
        ({"limit": "501"}, "limit", "out_of_range"),
        ({"limit": "two"}, "limit", "invalid_type"),
        ({"cursor": "!!!"}, "cursor", "invalid"),
        ({"cursor": "eyJpZCI6IDV9"}, "cursor", "invalid"),  # {"id": 5}
    ],
)
async def test_bad_list_parameters_are_400(
    client: httpx.AsyncClient, acme: str, params: dict[str, str], field: str, constraint: str
) -> None:
    response = await client.get("/v1/programs", headers=bearer(acme), params=params)
    assert details_of(response) == [(field, constraint)]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer cg_000000000000_not-a-real-key"},
        {"Authorization": "Basic eDp5"},
    ],
    ids=["none", "unknown-key", "basic"],
)
async def test_unauthenticated_calls_are_401_and_change_nothing(
    client: httpx.AsyncClient, acme: str, headers: dict[str, str]
) -> None:
    created = await client.post("/v1/programs", headers=headers, json=program_body())
    assert created.status_code == 401
    assert created.json() == {"error": "UNAUTHORIZED"}
    assert (await client.get("/v1/programs", headers=headers)).status_code == 401
    assert (await client.get("/v1/programs/co-earned-time", headers=headers)).status_code == 401
    assert await program_ids(client, acme) == []


async def test_unauthenticated_beats_validation(client: httpx.AsyncClient, acme: str) -> None:
    """A caller without a key learns nothing, not even what the body should look like."""
    response = await client.post("/v1/programs", json={"id": "Bad Id"})
    assert response.status_code == 401
    assert response.json() == {"error": "UNAUTHORIZED"}


async def test_malformed_json_is_invalid_json(client: httpx.AsyncClient, acme: str) -> None:
    headers = {**bearer(acme), "Content-Type": "application/json"}
    response = await client.post("/v1/programs", headers=headers, content=b'{"id": "co",')
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_JSON"
    not_json = await client.post(
        "/v1/programs",
        headers={**bearer(acme), "Content-Type": "text/plain"},
        content=b"id=co-earned-time",
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"] == "INVALID_JSON"
    assert await program_ids(client, acme) == []


async def test_a_json_array_is_a_validation_error(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.post("/v1/programs", headers=bearer(acme), json=[program_body()])
    assert response.status_code == 400
    assert response.json()["error"] == "VALIDATION_ERROR"
    assert await program_ids(client, acme) == []


async def test_bodies_over_64_kib_are_413_and_change_nothing(
    client: httpx.AsyncClient, acme: str
) -> None:
    # The name alone would be refused as too long; the size check comes first.
    big = program_body(name="n" * (64 * 1024))
    headers = {**bearer(acme), "Content-Type": "application/json"}
    raw = json.dumps(big).encode()
    response = await client.post("/v1/programs", headers=headers, content=raw)
    assert response.status_code == 413
    assert response.json() == {"error": "PAYLOAD_TOO_LARGE"}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length
        yield raw[: 40 * 1024]
        yield raw[40 * 1024 :]

    streamed = await client.post("/v1/programs", headers=headers, content=chunks())
    assert streamed.status_code == 413
    assert await program_ids(client, acme) == []


async def test_a_body_just_under_the_limit_is_read(client: httpx.AsyncClient, acme: str) -> None:
    """Near the limit the body is parsed normally (here: refused for its field, not its size)."""
    raw = json.dumps(program_body(name="n" * 60_000)).encode()
    assert len(raw) < 64 * 1024
    headers = {**bearer(acme), "Content-Type": "application/json"}
    response = await client.post("/v1/programs", headers=headers, content=raw)
    assert details_of(response) == [("name", "too_long")]


@pytest.mark.postgres_only
async def test_concurrent_creates_of_one_program_make_one(
    client: httpx.AsyncClient, acme: str
) -> None:
    responses = await asyncio.gather(
        *(client.post("/v1/programs", headers=bearer(acme), json=program_body()) for _ in range(6))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5, [
        r.text for r in responses
    ]
    assert all(r.json()["error"] == "ALREADY_EXISTS" for r in responses if r.status_code == 409)
    assert await program_ids(client, acme) == ["co-earned-time"]
