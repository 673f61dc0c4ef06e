"""`insert_rows`: many rows in one statement, in the caller's transaction, on both databases."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.kit.sql import insert_rows
from coursegate.models import Authorization, Event
from coursegate.models.base import table_of
from tests.conftest import create_tenant

EVENTS = table_of(Event)


def rows(clock: FrozenClock, count: int) -> list[dict[str, object]]:
    return [
        {
            "tenant_id": "acme",
            "id": uuid.uuid4(),
            "type": "test.inserted",
            "occurred_at": clock.now() + timedelta(seconds=n),
            "data": {"n": n, "nested": {"text": 'é\n"quoted"', "list": [1, None, True]}},
        }
        for n in range(count)
    ]


async def stored(database: Database) -> list[Event]:
    async with database.transaction() as session:
        return list((await session.scalars(select(Event).order_by(Event.occurred_at))).all())


async def test_rows_arrive_with_their_values(database: Database, clock: FrozenClock) -> None:
    await create_tenant(database, clock, "acme")
    written = rows(clock, 300)
    async with database.transaction() as session:
        await insert_rows(session, EVENTS, written)
    found = await stored(database)
    assert [(e.id, e.type, e.occurred_at, e.data) for e in found] == [
        (r["id"], r["type"], r["occurred_at"], r["data"]) for r in written
    ]
    assert all(e.routed_at is None for e in found)


async def test_rows_go_with_a_rollback_even_as_the_first_statement(
    database: Database, clock: FrozenClock
) -> None:
    """The raw PostgreSQL path must not run outside the transaction when nothing else
    has been sent in it yet."""
    await create_tenant(database, clock, "acme")

    async def change_that_fails() -> None:
        async with database.transaction() as session:
            await insert_rows(session, EVENTS, rows(clock, 3))
            raise RuntimeError("the caller's change failed")

    with pytest.raises(RuntimeError):
        await change_that_fails()
    assert await stored(database) == []


async def test_no_rows_is_no_statement(database: Database, clock: FrozenClock) -> None:
    async with database.transaction() as session:
        await insert_rows(session, EVENTS, [])
    assert await stored(database) == []


async def test_conflicting_rows_are_left_out_and_the_new_ones_named(
    database: Database, clock: FrozenClock
) -> None:
    await create_tenant(database, clock, "acme")
    table = table_of(Authorization)

    def authorization(external_id: str) -> dict[str, object]:
        return {
            "tenant_id": "acme",
            "id": uuid.uuid4(),
            "connector_id": "c",
            "external_id": external_id,
            "type": "t",
            "validated_at": None,
            "organisation": {"siret": external_id},
            "data": None,
            "created_at": clock.now(),
        }

    unique = ("tenant_id", "connector_id", "external_id")
    async with database.transaction() as session:
        first = await insert_rows(
            session,
            table,
            [authorization("a"), authorization("b")],
            skip_conflicts_on=unique,
            returning="external_id",
        )
        second = await insert_rows(
            session,
            table,
            [authorization("b"), authorization("c"), authorization("a")],
            skip_conflicts_on=unique,
            returning="external_id",
        )
    assert sorted(first) == ["a", "b"]
    assert second == ["c"]
    async with database.transaction() as session:
        stored = (await session.scalars(select(Authorization))).all()
    assert sorted(a.external_id for a in stored) == ["a", "b", "c"]
    assert {a.external_id: a.organisation for a in stored}["c"] == {"siret": "c"}
