"""The Overview's counts, kept ahead of time off the hot paths.

A background step counts each tenant's new completions, credits and delivery
attempts into quarter-hour buckets and moves a mark (the greatest id counted).
The page then reads 30 days as at most 2,880 buckets per metric plus the rows
above the mark, whatever the history's size.

Ids are time-ordered but made before their transaction commits, so a row with
a smaller id may become visible after a larger one. The step therefore only
counts rows whose id is older than `SETTLE`; the page counts everything above
the mark live, so what it shows is exact either way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from coursegate.console.repository import ActivityRepository
from coursegate.db import Database
from coursegate.kit.clock import Clock
from coursegate.kit.ids import id_floor
from coursegate.models import Completion, Credit, DeliveryAttempt

SETTLE = timedelta(minutes=2)
BATCH = 20_000
QUARTER = 15 * 60


def bucket_of(at: datetime) -> datetime:
    """The UTC quarter hour an instant falls in."""
    seconds = int(at.timestamp())
    return datetime.fromtimestamp(seconds - seconds % QUARTER, UTC)


@dataclass(frozen=True, slots=True)
class Source:
    """A table counted: its time column, and which metric a row counts towards."""

    name: str
    model: Any
    time: InstrumentedAttribute[datetime]
    extra: Sequence[InstrumentedAttribute[Any]]
    metric: Callable[[Sequence[Any]], str]

    @property
    def metrics(self) -> tuple[str, ...]:
        return METRICS[self.name]


def _attempt_metric(row: Sequence[Any]) -> str:
    return "deliveries_succeeded" if row[2] == "succeeded" else "deliveries_failed"


SOURCES = (
    Source("completions", Completion, Completion.recorded_at, (), lambda _: "completions"),
    Source("credits", Credit, Credit.awarded_at, (), lambda _: "credits"),
    Source(
        "delivery_attempts",
        DeliveryAttempt,
        DeliveryAttempt.attempted_at,
        (DeliveryAttempt.outcome,),
        _attempt_metric,
    ),
)
METRICS = {
    "completions": ("completions",),
    "credits": ("credits",),
    "delivery_attempts": ("deliveries_succeeded", "deliveries_failed"),
}


def count(source: Source, rows: Sequence[Sequence[Any]]) -> Counter[tuple[str, datetime]]:
    """Rows of `(id, time, *extra)` as counts per metric and bucket."""
    return Counter((source.metric(row), bucket_of(row[1])) for row in rows)


class ActivityRollup:
    """One step of the background loop: a batch of one tenant's source, in one transaction
    that holds the mark's row lock (two workers never count the same rows)."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock

    async def step(self) -> int:
        """Count what is new, tenant by tenant; an idle pass reads in one transaction and
        writes nothing (no mark is created or locked where there is nothing to count)."""
        below = id_floor(self.clock.now() - SETTLE)
        async with self.database.transaction() as session:
            repo = ActivityRepository(session)
            due = [
                (tenant_id, source)
                for tenant_id in await repo.tenants()
                for source in SOURCES
                if await repo.rows_between(
                    tenant_id,
                    source,
                    above=await repo.mark(tenant_id, source.name),
                    below=below,
                    limit=1,
                )
            ]
        counted = 0
        for tenant_id, source in due:
            async with self.database.transaction() as session:
                counted += await self.count_batch(session, tenant_id, source)
        return counted

    async def count_batch(self, session: AsyncSession, tenant_id: str, source: Source) -> int:
        repo = ActivityRepository(session)
        now = self.clock.now()
        mark = await repo.lock_mark(tenant_id, source.name, now)
        rows = await repo.rows_between(
            tenant_id, source, above=mark, below=id_floor(now - SETTLE), limit=BATCH
        )
        if not rows:
            return 0
        await repo.add_counts(tenant_id, count(source, rows))
        await repo.move_mark(tenant_id, source.name, rows[-1][0], now)
        return len(rows)


async def per_day_counts(
    session: AsyncSession, tenant_id: str, zone: str, days: Sequence[date]
) -> dict[str, list[int]]:
    """Each metric per day of `days` (the tenant's days): the buckets counted ahead, and
    the rows above each mark counted now."""
    repo = ActivityRepository(session)
    tz = ZoneInfo(zone)
    since = datetime.combine(days[0], time(), tz).astimezone(UTC)
    by_day: dict[str, Counter[date]] = {m: Counter() for ms in METRICS.values() for m in ms}
    for source in SOURCES:
        mark = await repo.mark(tenant_id, source.name)
        for metric, bucket, n in await repo.buckets(tenant_id, source.metrics, since):
            by_day[metric][bucket.astimezone(tz).date()] += n
        recent = await repo.rows_between(tenant_id, source, above=mark, below=None, limit=None)
        for row in recent:
            by_day[source.metric(row)][row[1].astimezone(tz).date()] += 1
    return {metric: [counts.get(day, 0) for day in days] for metric, counts in by_day.items()}
