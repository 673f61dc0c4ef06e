"""/v1/courses/{id}/seats: idempotent seat orders and the seat counts (SPEC §1, §3)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from coursegate.db import Database
from coursegate.models import Course, Seat, SeatOrder
from tests.conftest import bearer
from tests.courses.helpers import create_course, details_of

T0_TEXT = "2026-06-10T12:00:00.000Z"
SEATS = "/v1/courses/fin-lit-101/seats"
EMPTY = {"available": 0, "reserved": 0, "assigned": 0, "spent": 0, "rolled_back": 0, "total": 0}


async def counts(client: httpx.AsyncClient, key: str, path: str = SEATS) -> dict[str, int]:
    response = await client.get(path, headers=bearer(key))
    assert response.status_code == 200, response.text
    body: dict[str, int] = response.json()
    return body


async def order(
    client: httpx.AsyncClient, key: str, quantity: Any, order_ref: Any, path: str = SEATS
) -> httpx.Response:
    return await client.post(
        path, headers=bearer(key), json={"quantity": quantity, "order_ref": order_ref}
    )


async def stored(database: Database) -> tuple[int, int]:
    """(orders, seats) in the database, whatever the tenant."""
    async with database.transaction() as session:
        orders = await session.scalar(select(func.count()).select_from(SeatOrder))
        seats = await session.scalar(select(func.count()).select_from(Seat))
    return orders or 0, seats or 0


async def test_a_new_course_has_no_seats(client: httpx.AsyncClient, acme: str) -> None:
    await create_course(client, acme)
    assert await counts(client, acme) == EMPTY


async def test_an_order_creates_available_seats(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    await create_course(client, acme)
    response = await order(client, acme, 25, "PO-2026-001")
    assert response.status_code == 201, response.text
    assert response.json() == {
        "order_ref": "PO-2026-001",
        "course_id": "fin-lit-101",
        "quantity": 25,
        "created_at": T0_TEXT,
    }
    assert await counts(client, acme) == {**EMPTY, "available": 25, "total": 25}
    async with database.transaction() as session:
        seats = (await session.scalars(select(Seat))).all()
    assert len({s.id for s in seats}) == 25
    assert all(
        (s.tenant_id, s.course_id, s.order_ref, s.status, s.previously_dropped)
        == ("acme", "fin-lit-101", "PO-2026-001", "available", False)
        for s in seats
    )


async def test_the_same_order_again_is_200_another_quantity_409(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    await create_course(client, acme)
    first = await order(client, acme, 10, "PO-1")
    assert first.status_code == 201, first.text
    again = await order(client, acme, 10, "PO-1")
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    other_quantity = await order(client, acme, 11, "PO-1")
    assert other_quantity.status_code == 409
    assert other_quantity.json()["error"] == "ALREADY_EXISTS"
    assert await counts(client, acme) == {**EMPTY, "available": 10, "total": 10}
    assert await stored(database) == (1, 10)


async def test_an_order_ref_is_unique_across_the_tenants_courses(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    await create_course(client, acme)
    await create_course(client, acme, id="other")
    assert (await order(client, acme, 5, "PO-1")).status_code == 201
    elsewhere = await order(client, acme, 5, "PO-1", path="/v1/courses/other/seats")
    assert elsewhere.status_code == 409
    assert elsewhere.json()["error"] == "ALREADY_EXISTS"
    assert await counts(client, acme, "/v1/courses/other/seats") == EMPTY
    assert await stored(database) == (1, 5)


async def test_two_tenants_may_use_the_same_order_ref(
    client: httpx.AsyncClient, acme: str, globex: str
) -> None:
    await create_course(client, acme)
    await create_course(client, globex)
    assert (await order(client, acme, 3, "PO-1")).status_code == 201
    assert (await order(client, globex, 4, "PO-1")).status_code == 201
    assert (await counts(client, acme))["total"] == 3
    assert (await counts(client, globex))["total"] == 4


async def test_counts_are_exact_after_two_orders(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    await create_course(client, acme)
    await create_course(client, acme, id="other")
    assert (await order(client, acme, 7, "PO-1")).status_code == 201
    assert (await order(client, acme, 5, "PO-2")).status_code == 201
    assert (await order(client, acme, 2, "PO-3", path="/v1/courses/other/seats")).status_code == 201
    assert await counts(client, acme) == {**EMPTY, "available": 12, "total": 12}
    # Every status is counted where it belongs (the later lifecycle moves seats).
    async with database.transaction() as session:
        ids = (
            await session.scalars(
                select(Seat.id).where(Seat.course_id == "fin-lit-101").order_by(Seat.id)
            )
        ).all()
        moved = ["reserved", "assigned", "assigned", "spent", "rolled_back"]
        for seat_id, status in zip(ids[: len(moved)], moved, strict=True):
            await session.execute(update(Seat).where(Seat.id == seat_id).values(status=status))
    assert await counts(client, acme) == {
        "available": 7,
        "reserved": 1,
        "assigned": 2,
        "spent": 1,
        "rolled_back": 1,
        "total": 12,
    }
    assert await counts(client, acme, "/v1/courses/other/seats") == {
        **EMPTY,
        "available": 2,
        "total": 2,
    }


async def test_the_largest_order_is_stored_whole(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    await create_course(client, acme)
    response = await order(client, acme, 10000, "PO-BIG")
    assert response.status_code == 201, response.text
    assert await counts(client, acme) == {**EMPTY, "available": 10000, "total": 10000}
    assert await stored(database) == (1, 10000)


@pytest.mark.parametrize(
    ("body", "field", "constraint"),
    [
        ({"quantity": 0, "order_ref": "PO-1"}, "quantity", "out_of_range"),
        ({"quantity": -1, "order_ref": "PO-1"}, "quantity", "out_of_range"),
        ({"quantity": 10001, "order_ref": "PO-1"}, "quantity", "out_of_range"),
        ({"quantity": "5", "order_ref": "PO-1"}, "quantity", "invalid_type"),
        ({"quantity": 5.5, "order_ref": "PO-1"}, "quantity", "invalid_type"),
        ({"quantity": True, "order_ref": "PO-1"}, "quantity", "invalid_type"),
        ({"order_ref": "PO-1"}, "quantity", "required"),
        ({"quantity": 5}, "order_ref", "required"),
        ({"quantity": 5, "order_ref": ""}, "order_ref", "invalid"),
        ({"quantity": 5, "order_ref": "x" * 129}, "order_ref", "too_long"),
        ({"quantity": 5, "order_ref": 12}, "order_ref", "invalid_type"),
        ({"quantity": 5, "order_ref": "PO-1", "price": 3}, "price", "unknown_field"),
    ],
)
async def test_bad_orders_are_refused(
    client: httpx.AsyncClient,
    acme: str,
    database: Database,
    body: dict[str, Any],
    field: str,
    constraint: str,
) -> None:
    await create_course(client, acme)
    response = await client.post(SEATS, headers=bearer(acme), json=body)
    assert details_of(response) == [(field, constraint)]
    assert await stored(database) == (0, 0)


async def test_a_128_character_order_ref_is_accepted(client: httpx.AsyncClient, acme: str) -> None:
    await create_course(client, acme)
    response = await order(client, acme, 1, "x" * 128)
    assert response.status_code == 201, response.text


async def test_seats_may_be_ordered_for_active_courses_not_expired_ones(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    await create_course(client, acme)
    assert (await client.post("/v1/courses/fin-lit-101/activate", headers=bearer(acme))).is_success
    assert (await order(client, acme, 2, "PO-1")).status_code == 201
    async with database.transaction() as session:
        await session.execute(update(Course).values(status="expired"))
    refused = await order(client, acme, 2, "PO-2")
    assert refused.status_code == 409
    assert refused.json()["error"] == "COURSE_EXPIRED"
    # The counts of an expired course are still readable.
    assert await counts(client, acme) == {**EMPTY, "available": 2, "total": 2}
    assert await stored(database) == (1, 2)


async def test_orders_for_an_unknown_course_are_404(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    response = await order(client, acme, 2, "PO-1", path="/v1/courses/nope/seats")
    assert response.status_code == 404
    assert response.json() == {"error": "NOT_FOUND"}
    assert await stored(database) == (0, 0)


async def test_another_tenants_order_ref_and_seats_stay_hidden(
    client: httpx.AsyncClient, acme: str, globex: str, database: Database
) -> None:
    await create_course(client, acme)
    assert (await order(client, acme, 3, "PO-1")).status_code == 201
    refused = await order(client, globex, 3, "PO-1")
    assert refused.status_code == 404
    assert (await client.get(SEATS, headers=bearer(globex))).status_code == 404
    assert await stored(database) == (1, 3)


@pytest.mark.postgres_only
async def test_concurrent_copies_of_one_order_buy_the_seats_once(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    await create_course(client, acme)
    responses = await asyncio.gather(*(order(client, acme, 40, "PO-RACE") for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses]
    assert len({r.text for r in responses}) == 1
    assert await counts(client, acme) == {**EMPTY, "available": 40, "total": 40}
    assert await stored(database) == (1, 40)


@pytest.mark.postgres_only
async def test_concurrent_orders_with_one_ref_and_different_quantities(
    client: httpx.AsyncClient, acme: str, database: Database
) -> None:
    await create_course(client, acme)
    responses = await asyncio.gather(
        *(order(client, acme, 5 + (i % 2), "PO-RACE") for i in range(10))
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 1, [r.text for r in responses]
    assert set(statuses) <= {200, 201, 409}
    won = next(r.json() for r in responses if r.status_code == 201)
    assert statuses.count(200) + 1 == sum(1 for i in range(10) if 5 + (i % 2) == won["quantity"])
    assert await stored(database) == (1, won["quantity"])
