"""POST/GET /v1/people and GET /v1/people/{id}/credits (SPEC §1, §7)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from coursegate.db import Database
from tests.conftest import bearer
from tests.setup.helpers import create_program

T0_TEXT = "2026-06-10T12:00:00.000Z"
# A well-formed UUIDv7 nobody was given; fixed, so that every test process
# collects the same test ids.
UNKNOWN_PERSON = "01a245b8-9d37-715e-9835-115f8da60c7d"


def ident(namespace: str, value: str) -> dict[str, str]:
    return {"namespace": namespace, "value": value}


def details_of(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "VALIDATION_ERROR"
    return [(d["field"], d["constraint"]) for d in body["details"]]


async def count_rows(database: Database, table: str) -> int:
    async with database.transaction() as session:
        return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def create_person(client: httpx.AsyncClient, key: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/people", headers=bearer(key), json=body)
    assert response.status_code == 201, response.text
    person: dict[str, Any] = response.json()
    return person


# --- create -------------------------------------------------------------------------


async def test_create_returns_201_with_a_uuid7_id(client: httpx.AsyncClient, acme: str) -> None:
    response = await client.post(
        "/v1/people",
        headers=bearer(acme),
        json={
            "identifiers": [ident("us_co_doc_id", "123456"), ident("email", "ana@example.org")],
            "name": "Ana Learner",
            "email": "ana@example.org",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "name", "email", "identifiers", "created_at"}
    parsed = uuid.UUID(body["id"])
    assert parsed.version == 7
    assert str(parsed) == body["id"]
    assert body["name"] == "Ana Learner"
    assert body["email"] == "ana@example.org"
    assert body["created_at"] == T0_TEXT
    assert sorted(body["identifiers"], key=lambda i: (i["namespace"], i["value"])) == [
        ident("email", "ana@example.org"),
        ident("us_co_doc_id", "123456"),
    ]


async def test_name_and_email_are_optional(client: httpx.AsyncClient, acme: str) -> None:
    body = await create_person(client, acme, identifiers=[ident("us_co_doc_id", "1")])
    assert body["name"] is None
    assert body["email"] is None
    assert body["identifiers"] == [ident("us_co_doc_id", "1")]
    explicit = await create_person(
        client, acme, identifiers=[ident("us_co_doc_id", "2")], name=None, email=None
    )
    assert explicit["name"] is None


async def test_ids_are_distinct_and_time_ordered(client: httpx.AsyncClient, acme: str) -> None:
    ids = [
        (await create_person(client, acme, identifiers=[ident("student_id", str(i))]))["id"]
        for i in range(5)
    ]
    assert len(set(ids)) == 5
    assert all(uuid.UUID(i).version == 7 for i in ids)


async def test_twenty_identifiers_is_the_most(client: httpx.AsyncClient, acme: str) -> None:
    many = [ident(f"ns{i}", f"v{i}") for i in range(20)]
    body = await create_person(client, acme, identifiers=many)
    assert len(body["identifiers"]) == 20
    too_many = await client.post(
        "/v1/people",
        headers=bearer(acme),
        json={"identifiers": [ident(f"other{i}", "x") for i in range(21)]},
    )
    assert details_of(too_many) == [("identifiers", "too_long")]


async def test_edge_values_are_accepted(client: httpx.AsyncClient, acme: str) -> None:
    body = await create_person(
        client,
        acme,
        identifiers=[ident("a" * 64, "v" * 256), ident("user_id.v2-x", "Ünïcode ✓")],
    )
    fetched = await client.get(f"/v1/people/{body['id']}", headers=bearer(acme))
    assert fetched.status_code == 200
    assert fetched.json()["identifiers"] == [
        ident("a" * 64, "v" * 256),
        ident("user_id.v2-x", "Ünïcode ✓"),
    ]


# --- identifiers are unique per tenant ------------------------------------------------


async def test_an_identifier_naming_someone_is_409_and_creates_nothing(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    ana = await create_person(client, acme, identifiers=[ident("us_co_doc_id", "123456")])
    people_before = await count_rows(database, "people")
    identifiers_before = await count_rows(database, "person_identifiers")

    response = await client.post(
        "/v1/people",
        headers=bearer(acme),
        json={
            "identifiers": [ident("student_id", "s-1"), ident("us_co_doc_id", "123456")],
            "name": "Someone else",
        },
    )
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "ALREADY_EXISTS"
    assert [(d["field"], d["constraint"]) for d in body["details"]] == [("identifiers.1", "taken")]
    # Which person the identifier names is not revealed.
    assert ana["id"] not in response.text

    assert await count_rows(database, "people") == people_before
    assert await count_rows(database, "person_identifiers") == identifiers_before
    # The free identifier of the refused request is still free.
    await create_person(client, acme, identifiers=[ident("student_id", "s-1")])
    # Ana keeps exactly her identifiers.
    fetched = await client.get(f"/v1/people/{ana['id']}", headers=bearer(acme))
    assert fetched.json()["identifiers"] == [ident("us_co_doc_id", "123456")]


async def test_every_taken_identifier_is_named_by_its_index(
    client: httpx.AsyncClient, acme: str
) -> None:
    await create_person(client, acme, identifiers=[ident("us_co_doc_id", "1")])
    await create_person(client, acme, identifiers=[ident("email", "b@example.org")])
    response = await client.post(
        "/v1/people",
        headers=bearer(acme),
        json={
            "identifiers": [
                ident("email", "b@example.org"),
                ident("student_id", "free"),
                ident("us_co_doc_id", "1"),
            ]
        },
    )
    assert response.status_code == 409
    details = [(d["field"], d["constraint"]) for d in response.json()["details"]]
    assert details == [("identifiers.0", "taken"), ("identifiers.2", "taken")]


async def test_the_index_counts_in_the_request_even_after_a_repeat(
    client: httpx.AsyncClient, acme: str
) -> None:
    """`identifiers.<index>` points into the list the caller sent, repeats included."""
    await create_person(client, acme, identifiers=[ident("us_co_doc_id", "1")])
    response = await client.post(
        "/v1/people",
        headers=bearer(acme),
        json={
            "identifiers": [
                ident("student_id", "s"),
                ident("student_id", "s"),
                ident("us_co_doc_id", "1"),
            ]
        },
    )
    assert response.status_code == 409
    details = [(d["field"], d["constraint"]) for d in response.json()["details"]]
    assert details == [("identifiers.2", "taken")]
    repeated = await client.post(
        "/v1/people",
        headers=bearer(acme),
        json={
            "identifiers": [
                ident("us_co_doc_id", "1"),
                ident("student_id", "s"),
                ident("us_co_doc_id", "1"),
            ]
        },
    )
    assert repeated.status_code == 409
    details = [(d["field"], d["constraint"]) for d in repeated.json()["details"]]
    assert details == [("identifiers.0", "taken"), ("identifiers.2", "taken")]


async def test_values_are_case_sensitive_and_namespaces_separate(
    client: httpx.AsyncClient, acme: str
) -> None:
    await create_person(client, acme, identifiers=[ident("student_id", "abc")])
    await create_person(client, acme, identifiers=[ident("student_id", "ABC")])
    await create_person(client, acme, identifiers=[ident("user_id", "abc")])


async def test_the_same_identifier_in_two_tenants_names_two_people(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    a = await create_person(client, acme, identifiers=[ident("us_co_doc_id", "123456")])
    g = await create_person(client, globex, identifiers=[ident("us_co_doc_id", "123456")])
    assert a["id"] != g["id"]
    assert (await client.get(f"/v1/people/{a['id']}", headers=bearer(acme))).status_code == 200
    assert (await client.get(f"/v1/people/{g['id']}", headers=bearer(globex))).status_code == 200
    # Still unique within each tenant.
    again = await client.post(
        "/v1/people",
        headers=bearer(globex),
        json={"identifiers": [ident("us_co_doc_id", "123456")]},
    )
    assert again.status_code == 409


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "constraint"),
    [
        ({}, "identifiers", "required"),
        ({"identifiers": []}, "identifiers", "invalid"),
        ({"identifiers": None}, "identifiers", "invalid_type"),
        ({"identifiers": "us_co_doc_id:1"}, "identifiers", "invalid_type"),
        ({"identifiers": [{"namespace": "ns"}]}, "identifiers.0.value", "required"),
        ({"identifiers": [{"value": "1"}]}, "identifiers.0.namespace", "required"),
        ({"identifiers": [ident("Bad NS", "1")]}, "identifiers.0.namespace", "invalid"),
        ({"identifiers": [ident("", "1")]}, "identifiers.0.namespace", "invalid"),
        ({"identifiers": [ident("-ns", "1")]}, "identifiers.0.namespace", "invalid"),
        ({"identifiers": [ident("n" * 65, "1")]}, "identifiers.0.namespace", "invalid"),
        ({"identifiers": [ident("ns", "v" * 257)]}, "identifiers.0.value", "too_long"),
        ({"identifiers": [ident("ns", "")]}, "identifiers.0.value", "invalid"),
        (
            {"identifiers": [{"namespace": "ns", "value": 123}]},
            "identifiers.0.value",
            "invalid_type",
        ),
        (
            {"identifiers": [ident("ns", "1"), {"namespace": "ns", "value": "2", "x": 1}]},
            "identifiers.1.x",
            "unknown_field",
        ),
        ({"identifiers": [ident("ns", "1")], "email": "not-an-email"}, "email", "invalid"),
        ({"identifiers": [ident("ns", "1")], "email": "a@b"}, "email", "invalid"),
        ({"identifiers": [ident("ns", "1")], "email": "a b@c.org"}, "email", "invalid"),
        (
            {"identifiers": [ident("ns", "1")], "email": "a@" + "b" * 320 + ".org"},
            "email",
            "too_long",
        ),
        ({"identifiers": [ident("ns", "1")], "email": 5}, "email", "invalid_type"),
        ({"identifiers": [ident("ns", "1")], "name": "n" * 257}, "name", "too_long"),
        ({"identifiers": [ident("ns", "1")], "nickname": "x"}, "nickname", "unknown_field"),
    ],
)
async def test_bad_fields_are_refused_and_create_nothing(
    client: httpx.AsyncClient,
    acme: str,
    database: Database,
    body: dict[str, Any],
    field: str,
    constraint: str,
) -> None:
    response = await client.post("/v1/people", headers=bearer(acme), json=body)
    assert details_of(response) == [(field, constraint)]
    assert await count_rows(database, "people") == 0
    assert await count_rows(database, "person_identifiers") == 0


async def test_a_bad_value_is_not_echoed(client: httpx.AsyncClient, acme: str) -> None:
    """Partner-supplied person ids are personal data: refusals name the field, not the value."""
    secret_value = "PERSONAL-" + "9" * 300
    response = await client.post(
        "/v1/people", headers=bearer(acme), json={"identifiers": [ident("ns", secret_value)]}
    )
    assert details_of(response) == [("identifiers.0.value", "too_long")]
    assert secret_value not in response.text


async def test_malformed_json_and_oversized_bodies(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    headers = {**bearer(acme), "Content-Type": "application/json"}
    broken = await client.post("/v1/people", headers=headers, content=b'{"identifiers": [')
    assert broken.status_code == 400
    assert broken.json()["error"] == "INVALID_JSON"
    big = json.dumps({"identifiers": [ident("ns", "1")], "name": "n" * (64 * 1024)})
    too_large = await client.post("/v1/people", headers=headers, content=big)
    assert too_large.status_code == 413
    assert too_large.json() == {"error": "PAYLOAD_TOO_LARGE"}
    assert await count_rows(database, "people") == 0


async def test_unauthenticated_calls_are_401(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    person = await create_person(client, acme, identifiers=[ident("ns", "1")])
    created = await client.post("/v1/people", json={"identifiers": [ident("ns", "2")]})
    assert created.status_code == 401
    assert created.json() == {"error": "UNAUTHORIZED"}
    assert (await client.get(f"/v1/people/{person['id']}")).status_code == 401
    credits = await client.get(f"/v1/people/{person['id']}/credits", params={"program": "co"})
    assert credits.status_code == 401
    assert await count_rows(database, "people") == 1


# --- get ------------------------------------------------------------------------------


async def test_get_a_person(client: httpx.AsyncClient, acme: str) -> None:
    created = await create_person(
        client,
        acme,
        identifiers=[ident("us_co_doc_id", "123456"), ident("email", "ana@example.org")],
        name="Ana",
        email="ana@example.org",
    )
    response = await client.get(f"/v1/people/{created['id']}", headers=bearer(acme))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == created["id"]
    assert body["name"] == "Ana"
    assert body["email"] == "ana@example.org"
    assert body["created_at"] == T0_TEXT
    # Identifiers come back in a stable order (namespace, then value).
    assert body["identifiers"] == [
        ident("email", "ana@example.org"),
        ident("us_co_doc_id", "123456"),
    ]
    upper = await client.get(f"/v1/people/{created['id'].upper()}", headers=bearer(acme))
    assert upper.status_code == 200
    assert upper.json()["id"] == created["id"]


async def test_another_tenants_person_is_404(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    person = await create_person(client, acme, identifiers=[ident("ns", "1")])
    response = await client.get(f"/v1/people/{person['id']}", headers=bearer(globex))
    assert response.status_code == 404
    assert response.json() == {"error": "NOT_FOUND"}


@pytest.mark.parametrize("person_id", ["not-a-uuid", "123", "0" * 40, UNKNOWN_PERSON])
async def test_a_malformed_or_unknown_id_is_404(
    client: httpx.AsyncClient, acme: str, person_id: str
) -> None:
    response = await client.get(f"/v1/people/{person_id}", headers=bearer(acme))
    assert response.status_code == 404
    assert response.json() == {"error": "NOT_FOUND"}


# --- credits --------------------------------------------------------------------------


async def test_credits_of_a_person_without_completions(
    client: httpx.AsyncClient, acme: str
) -> None:
    await create_program(client, acme, "co-earned-time")
    person = await create_person(client, acme, identifiers=[ident("us_co_doc_id", "1")])
    response = await client.get(
        f"/v1/people/{person['id']}/credits",
        headers=bearer(acme),
        params={"program": "co-earned-time"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "program": "co-earned-time",
        "hours_total": "0.00",
        "credits_total": 0,
        "credits": [],
    }


async def test_credits_need_a_program(client: httpx.AsyncClient, acme: str) -> None:
    await create_program(client, acme)
    person = await create_person(client, acme, identifiers=[ident("us_co_doc_id", "1")])
    response = await client.get(f"/v1/people/{person['id']}/credits", headers=bearer(acme))
    assert details_of(response) == [("program", "required")]


@pytest.mark.parametrize("program", ["nope", "CO", "x" * 63])
async def test_credits_in_an_unknown_program_are_404(
    client: httpx.AsyncClient, acme: str, program: str
) -> None:
    await create_program(client, acme)
    person = await create_person(client, acme, identifiers=[ident("us_co_doc_id", "1")])
    response = await client.get(
        f"/v1/people/{person['id']}/credits", headers=bearer(acme), params={"program": program}
    )
    assert response.status_code == 404
    assert response.json()["error"] == "NOT_FOUND"


async def test_credits_across_tenants_are_404(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    await create_program(client, acme, "co")
    await create_program(client, globex, "gx")
    ana = await create_person(client, acme, identifiers=[ident("us_co_doc_id", "1")])
    gil = await create_person(client, globex, identifiers=[ident("us_co_doc_id", "1")])
    # globex asking about acme's person, in a program globex has.
    other_person = await client.get(
        f"/v1/people/{ana['id']}/credits", headers=bearer(globex), params={"program": "gx"}
    )
    assert other_person.status_code == 404
    assert other_person.json()["error"] == "NOT_FOUND"
    # globex's own person, in acme's program.
    other_program = await client.get(
        f"/v1/people/{gil['id']}/credits", headers=bearer(globex), params={"program": "co"}
    )
    assert other_program.status_code == 404
    assert other_program.json()["error"] == "NOT_FOUND"


@pytest.mark.parametrize("person_id", ["not-a-uuid", UNKNOWN_PERSON])
async def test_credits_of_an_unknown_person_are_404(
    client: httpx.AsyncClient, acme: str, person_id: str
) -> None:
    await create_program(client, acme)
    response = await client.get(
        f"/v1/people/{person_id}/credits", headers=bearer(acme), params={"program": "co"}
    )
    assert response.status_code == 404
    assert response.json()["error"] == "NOT_FOUND"


@pytest.mark.postgres_only
async def test_concurrent_claims_of_one_identifier_make_one_person(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    async def claim(i: int) -> httpx.Response:
        return await client.post(
            "/v1/people",
            headers=bearer(acme),
            json={"identifiers": [ident("us_co_doc_id", "race")], "name": f"n{i}"},
        )

    responses = await asyncio.gather(*(claim(i) for i in range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 5, [r.text for r in responses]
    assert all(r.json()["error"] == "ALREADY_EXISTS" for r in responses if r.status_code == 409)
    assert await count_rows(database, "people") == 1
