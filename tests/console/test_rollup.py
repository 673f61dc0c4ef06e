"""The Overview's counts: quarter hours counted ahead in the background plus the rows above
the mark counted live give the same days, in the tenant's timezone, without counting twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import httpx
from sqlalchemy import func, select

from coursegate.console.rollup import ActivityRollup, per_day_counts
from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.models import ActivityCount
from tests.completions.conftest import Setup, make_setup
from tests.console.helpers import signed_in

JUNE_10 = date(2026, 6, 10)
JUNE_11 = date(2026, 6, 11)


def _later() -> FrozenClock:
    """A clock past the settling time of ids made now (ids carry the real time)."""
    return FrozenClock(datetime.now(UTC) + timedelta(minutes=5))


async def _three_completions(client: httpx.AsyncClient, clock: FrozenClock, key: str) -> Setup:
    """Three completions recorded 2026-06-10 12:00 UTC; 4.5 + 2 + 1 hours: one credit."""
    setup = await make_setup(client, clock, key)
    for course, hours in (("a", 4.5), ("b", 2), ("c", 1)):
        response = await setup.send(setup.payload(course_id=course, content_hours=hours))
        assert response.status_code == 201, response.text
    return setup


async def _days(database: Database, zone: str, days: list[date]) -> dict[str, list[int]]:
    async with database.transaction() as session:
        return await per_day_counts(session, "acme", zone, days)


async def test_counted_ahead_or_live_the_days_are_the_same(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await _three_completions(client, clock, acme)
    live = await _days(database, "UTC", [JUNE_10, JUNE_11])
    assert live["completions"] == [3, 0]
    assert live["credits"] == [1, 0]
    rollup = ActivityRollup(database, _later())
    assert await rollup.step() == 4  # three completions and a credit
    assert await rollup.step() == 0  # nothing is counted twice
    async with database.transaction() as session:
        buckets = await session.scalar(select(func.sum(ActivityCount.count)))
    assert buckets == 4
    assert await _days(database, "UTC", [JUNE_10, JUNE_11]) == live


async def test_rows_made_after_the_last_count_are_added_live(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    setup = await _three_completions(client, clock, acme)
    await ActivityRollup(database, _later()).step()
    response = await setup.send(setup.payload(course_id="d", content_hours=1))
    assert response.status_code == 201
    assert (await _days(database, "UTC", [JUNE_10]))["completions"] == [4]


async def test_days_are_the_tenants_days(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await _three_completions(client, clock, acme)
    await ActivityRollup(database, _later()).step()
    # 12:00 UTC is already the 11th at UTC+14, still the 10th at UTC+5:45.
    assert (await _days(database, "Pacific/Kiritimati", [JUNE_10, JUNE_11]))["completions"] == [
        0,
        3,
    ]
    assert (await _days(database, "Asia/Kathmandu", [JUNE_10, JUNE_11]))["completions"] == [3, 0]


async def test_two_workers_counting_at_once_count_each_row_once(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await _three_completions(client, clock, acme)
    later = _later()
    first, second = await asyncio.gather(
        ActivityRollup(database, later).step(), ActivityRollup(database, later).step()
    )
    assert first + second == 4
    assert (await _days(database, "UTC", [JUNE_10]))["completions"] == [3]


async def test_the_overview_draws_the_counts(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await _three_completions(client, clock, acme)
    await ActivityRollup(database, _later()).step()
    await signed_in(client, database, clock, "acme", "viewer")
    page = await client.get("/console")
    assert "Completions per day, 12 May to 10 Jun: completions 3; highest day 3." in page.text
    assert "Credits per day, 12 May to 10 Jun: credits 1; highest day 1." in page.text
    assert "Deliveries per day, 12 May to 10 Jun: succeeded 0, failed 0" in page.text
