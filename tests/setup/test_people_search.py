"""GET /v1/people: by identifier value (any namespace, or one), by name text, or everyone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, text

from coursegate.db import Database
from coursegate.kit.ids import uuid7
from coursegate.models import Person, PersonIdentifier
from coursegate.models.base import table_of
from coursegate.people.repository import listing_statement
from tests.conftest import bearer
from tests.setup.test_people import create_person, details_of, ident


async def search(client: httpx.AsyncClient, key: str, **params: str) -> dict[str, Any]:
    response = await client.get("/v1/people", headers=bearer(key), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(page: dict[str, Any]) -> list[str]:
    return [p["id"] for p in page["data"]]


@pytest.fixture
async def people(client: httpx.AsyncClient, acme: str) -> dict[str, dict[str, Any]]:
    """Three of acme's people, made in this order (so also in id order)."""
    return {
        "ana": await create_person(
            client,
            acme,
            identifiers=[ident("us_co_doc_id", "123456"), ident("email", "ana@example.org")],
            name="Ana María Learner",
        ),
        "bea": await create_person(
            client, acme, identifiers=[ident("student_id", "123456")], name="BEATRIZ Smith"
        ),
        "cy": await create_person(client, acme, identifiers=[ident("us_co_doc_id", "1234567")]),
    }


async def test_an_identifier_value_names_people_in_any_namespace(
    client: httpx.AsyncClient, acme: str, people: dict[str, dict[str, Any]]
) -> None:
    page = await search(client, acme, identifier="123456")
    assert ids(page) == [people["ana"]["id"], people["bea"]["id"]]
    assert page["next_cursor"] is None
    # Each person as GET /v1/people/{id} shows them, with all their identifiers.
    for found in page["data"]:
        one = await client.get(f"/v1/people/{found['id']}", headers=bearer(acme))
        assert found == one.json()
    assert page["data"][0]["identifiers"] == [
        ident("email", "ana@example.org"),
        ident("us_co_doc_id", "123456"),
    ]


async def test_an_identifier_matches_exactly(
    client: httpx.AsyncClient, acme: str, people: dict[str, dict[str, Any]]
) -> None:
    assert ids(await search(client, acme, identifier="ana@example.org")) == [people["ana"]["id"]]
    for other in ("12345", "1234", "ANA@example.org", "123456 ", "%", "1234_6"):
        assert ids(await search(client, acme, identifier=other)) == [], other


async def test_a_namespace_narrows_an_identifier(
    client: httpx.AsyncClient, acme: str, people: dict[str, dict[str, Any]]
) -> None:
    found = await search(client, acme, identifier="123456", namespace="student_id")
    assert ids(found) == [people["bea"]["id"]]
    assert ids(await search(client, acme, identifier="123456", namespace="email")) == []


async def test_a_name_is_found_by_any_part_in_any_case(
    client: httpx.AsyncClient, acme: str, people: dict[str, dict[str, Any]]
) -> None:
    ana, bea = people["ana"]["id"], people["bea"]["id"]
    assert ids(await search(client, acme, q="ana")) == [ana]
    assert ids(await search(client, acme, q="smith")) == [bea]
    assert ids(await search(client, acme, q="BeAtRiZ sM")) == [bea]
    # Trimmed: two letters once the spaces go, found inside "Learner" and "María".
    assert ids(await search(client, acme, q="  ar  ")) == [ana]
    assert ids(await search(client, acme, q="zz")) == []


async def test_wildcards_in_a_name_search_are_plain_characters(
    client: httpx.AsyncClient, acme: str, people: dict[str, dict[str, Any]]
) -> None:
    odd = await create_person(client, acme, identifiers=[ident("x", "1")], name="50%_off / Bo")
    for wildcard in ("%%", "__", "%_", "f /"):
        expected = [odd["id"]] if wildcard in "50%_off / Bo" else []
        assert ids(await search(client, acme, q=wildcard)) == expected, wildcard


async def test_without_a_filter_everyone_is_listed_by_id(
    client: httpx.AsyncClient, acme: str, people: dict[str, dict[str, Any]]
) -> None:
    everyone = [people[n]["id"] for n in ("ana", "bea", "cy")]
    assert ids(await search(client, acme)) == everyone


async def test_results_page_by_id(
    client: httpx.AsyncClient, acme: str, people: dict[str, dict[str, Any]]
) -> None:
    first = await search(client, acme, identifier="123456", limit="1")
    assert ids(first) == [people["ana"]["id"]]
    assert first["next_cursor"] is not None
    rest = await search(client, acme, identifier="123456", limit="1", cursor=first["next_cursor"])
    assert ids(rest) == [people["bea"]["id"]]
    assert rest["next_cursor"] is None
    both = await search(client, acme, q="ea", limit="1")  # "Learner", "BEATRIZ"
    assert ids(both) == [people["ana"]["id"]]
    last = await search(client, acme, q="ea", limit="1", cursor=both["next_cursor"])
    assert ids(last) == [people["bea"]["id"]]
    assert last["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field", "constraint"),
    [
        ({"q": "a"}, "q", "invalid"),
        ({"q": " a  "}, "q", "invalid"),
        ({"q": ""}, "q", "invalid"),
        ({"q": "x" * 257}, "q", "too_long"),
        ({"identifier": ""}, "identifier", "invalid"),
        ({"identifier": "v" * 257}, "identifier", "too_long"),
        ({"identifier": "1", "q": "ana"}, "q", "invalid"),
        ({"namespace": "email"}, "identifier", "required"),
        ({"identifier": "1", "namespace": "Not A Namespace"}, "namespace", "invalid"),
        ({"limit": "0"}, "limit", "out_of_range"),
        ({"limit": "many"}, "limit", "invalid_type"),
        ({"cursor": "not-a-cursor"}, "cursor", "invalid"),
        ({"cursor": "eyJpZCI6Im5vcGUifQ"}, "cursor", "invalid"),
    ],
)
async def test_malformed_searches_are_400_on_their_field(
    client: httpx.AsyncClient, acme: str, params: dict[str, str], field: str, constraint: str
) -> None:
    response = await client.get("/v1/people", headers=bearer(acme), params=params)
    assert details_of(response) == [(field, constraint)]


async def test_unauthenticated_searches_are_401(
    client: httpx.AsyncClient, acme: str, people: dict[str, dict[str, Any]]
) -> None:
    for headers in ({}, bearer("cg_nope_" + "x" * 40)):
        response = await client.get("/v1/people", headers=headers, params={"identifier": "123456"})
        assert (response.status_code, response.json()["error"]) == (401, "UNAUTHORIZED")
        assert "123456" not in response.text


async def test_another_tenants_people_are_never_found(
    client: httpx.AsyncClient, acme: str, globex: str, people: dict[str, dict[str, Any]]
) -> None:
    gil = await create_person(
        client, globex, identifiers=[ident("us_co_doc_id", "123456")], name="Ana Globex"
    )
    assert ids(await search(client, globex, identifier="123456")) == [gil["id"]]
    assert ids(await search(client, globex, q="ana")) == [gil["id"]]
    assert ids(await search(client, globex)) == [gil["id"]]
    assert ids(await search(client, globex, identifier="ana@example.org")) == []
    assert ids(await search(client, acme, q="globex")) == []
    # Another tenant's person by id stays a 404, as for any id.
    mine = await client.get(f"/v1/people/{people['ana']['id']}", headers=bearer(globex))
    assert (mine.status_code, mine.json()["error"]) == (404, "NOT_FOUND")


async def _many_people(database: Database, count: int) -> None:
    """`count` people of acme with an identifier in each of three namespaces, written in
    one statement per table, and the planner's statistics brought up to date."""
    now = datetime.now(UTC)
    people = [
        {"tenant_id": "acme", "id": uuid7(), "name": None, "email": None, "created_at": now}
        for _ in range(count)
    ]
    identifiers = [
        {
            "tenant_id": "acme",
            "namespace": namespace,
            "value": f"{namespace}-{n}",
            "person_id": person["id"],
            "created_at": now,
        }
        for n, person in enumerate(people)
        for namespace in ("email", "student_id", "us_co_doc_id")
    ]
    async with database.transaction() as session:
        await session.execute(insert(table_of(Person)), people)
        await session.execute(insert(table_of(PersonIdentifier)), identifiers)
    async with database.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()


@pytest.mark.parametrize("namespace", [None, "us_co_doc_id"])
async def test_an_identifier_is_looked_up_through_the_primary_key(
    database: Database, acme: str, namespace: str | None
) -> None:
    """The plan reads `person_identifiers` only by probes of its primary key
    `(tenant_id, namespace, value)`, whether a namespace is given or each is tried.

    A table this small PostgreSQL would rightly read whole; with sequential scans
    priced out it shows the plan it takes once the table is large (measured at
    100,000 people: docs/decisions.md)."""
    await _many_people(database, 500)
    stmt = listing_statement("acme", identifier="us_co_doc_id-7", namespace=namespace, limit=51)
    async with database.transaction() as session:
        sql = str(
            stmt.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
        )
        if database.is_sqlite:
            plan = [str(r[-1]) for r in await session.execute(text(f"EXPLAIN QUERY PLAN {sql}"))]
        else:
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = [str(r[0]).strip() for r in await session.execute(text(f"EXPLAIN {sql}"))]
        found = (await session.scalars(stmt)).all()
    assert len(found) == 1
    shown = "\n".join(plan)
    if database.is_sqlite:
        reads = [line for line in plan if re.match(r"(SCAN|SEARCH) person_identifiers", line)]
        assert reads, shown
        assert all(
            line.startswith("SEARCH") and "sqlite_autoindex_person_identifiers" in line
            for line in reads
        ), shown
    else:
        reads = [line for line in plan if " on person_identifiers" in line]
        assert reads, shown
        assert all("using pk_person_identifiers" in line for line in reads), shown
        assert any("(value)::text = 'us_co_doc_id-7'" in line for line in plan), shown
