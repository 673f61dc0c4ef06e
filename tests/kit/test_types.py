"""The shared column types keep instants, hours and ids exact on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.exc import StatementError

from coursegate.db import Database
from coursegate.kit.ids import uuid7
from coursegate.models.base import Hours, UtcDateTime, from_hundredths, to_hundredths

metadata = MetaData()
probe = Table(
    "type_probe",
    metadata,
    Column("name", String(20), primary_key=True),
    Column("at", UtcDateTime()),
    Column("hours", Hours()),
)


@pytest.fixture
async def probe_table(database: Database) -> Database:
    async with database.connection() as conn:
        await conn.run_sync(metadata.create_all)
    return database


async def test_instants_sort_and_compare_in_utc_whatever_offset_they_came_with(
    probe_table: Database,
) -> None:
    plus5 = timezone(timedelta(hours=5))
    minus7 = timezone(timedelta(hours=-7))
    # Same wall-clock hour, three different instants: ordering must follow the instant.
    values = {
        "early": datetime(2026, 6, 10, 10, 0, tzinfo=plus5),  # 05:00Z
        "middle": datetime(2026, 6, 10, 10, 0, tzinfo=UTC),  # 10:00Z
        "late": datetime(2026, 6, 10, 10, 0, tzinfo=minus7),  # 17:00Z
    }
    async with probe_table.connection() as conn:
        for name, at in values.items():
            await conn.execute(probe.insert().values(name=name, at=at))
    async with probe_table.connection() as conn:
        ordered = (await conn.execute(select(probe.c.name, probe.c.at).order_by(probe.c.at))).all()
        after = await conn.scalars(
            select(probe.c.name).where(probe.c.at > datetime(2026, 6, 10, 9, 0, tzinfo=UTC))
        )
    assert [r.name for r in ordered] == ["early", "middle", "late"]
    assert all(r.at.tzinfo is not None and r.at.utcoffset() == timedelta(0) for r in ordered)
    assert ordered[0].at == values["early"]
    assert set(after) == {"middle", "late"}


async def test_naive_datetimes_are_refused(probe_table: Database) -> None:
    with pytest.raises(StatementError, match="naive"):
        async with probe_table.connection() as conn:
            await conn.execute(probe.insert().values(name="x", at=datetime(2026, 1, 1)))


async def test_hours_are_exact_sums(probe_table: Database) -> None:
    hours = ["13.11", "13.59", "9.71", "16.24", "1.52", "5.83"]
    async with probe_table.connection() as conn:
        for i, h in enumerate(hours):
            await conn.execute(probe.insert().values(name=f"c{i}", hours=Decimal(h)))
        rows = await conn.scalars(select(probe.c.hours))
        total = sum(rows, Decimal(0))
    assert total == Decimal("60.00")
    assert sum(float(h) for h in hours) != 60.0  # the trap the integer storage avoids


def test_hundredths_refuse_extra_precision() -> None:
    assert to_hundredths(Decimal("4.5")) == 450
    assert from_hundredths(450) == Decimal("4.50")
    with pytest.raises(ValueError, match="two decimal places"):
        to_hundredths(Decimal("1.005"))


def test_uuid7_is_version_7_and_time_ordered() -> None:
    earlier = uuid7(unix_ms=1_700_000_000_000)
    later = uuid7(unix_ms=1_700_000_000_001)
    assert earlier.version == 7
    assert earlier.variant == uuid.RFC_4122
    assert earlier < later
    assert str(earlier) < str(later)
    burst = [uuid7() for _ in range(5000)]  # many per millisecond
    assert len(set(burst)) == 5000
    assert burst == sorted(burst)
