"""The console's own reads across domains: what the overview counts.

These are read models of other domains' tables, kept here because only the
console asks these questions. Each reads through an index that starts with the
tenant (ids are time-ordered, so a time range is an id range).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.kit.sql import dialect_insert, dialect_of
from coursegate.models import (
    ActivityCount,
    ActivityMark,
    ConnectorReject,
    Delivery,
    ParkedRequest,
    Tenant,
)
from coursegate.models.base import table_of
from coursegate.webhooks.queue import PENDING

if TYPE_CHECKING:
    from coursegate.console.rollup import Source

NO_ID = uuid.UUID(int=0)


@dataclass(frozen=True, slots=True)
class Backlog:
    due: int
    oldest_due_at: datetime | None


class OverviewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def backlog(self, tenant_id: str, now: datetime) -> Backlog:
        row = (
            await self.session.execute(
                select(func.count(), func.min(Delivery.next_attempt_at)).where(
                    Delivery.status == PENDING,
                    Delivery.next_attempt_at <= now,
                    Delivery.tenant_id == tenant_id,
                )
            )
        ).one()
        return Backlog(due=int(row[0]), oldest_due_at=row[1])

    async def parked_count(self, tenant_id: str) -> int:
        count = await self.session.scalar(
            select(func.count())
            .select_from(ParkedRequest)
            .where(ParkedRequest.tenant_id == tenant_id, ParkedRequest.resolved_at.is_(None))
        )
        return int(count or 0)

    async def open_rejects(self, tenant_id: str) -> int:
        count = await self.session.scalar(
            select(func.count())
            .select_from(ConnectorReject)
            .where(ConnectorReject.tenant_id == tenant_id, ConnectorReject.resolved_at.is_(None))
        )
        return int(count or 0)


class ActivityRepository:
    """The counts behind the Overview's charts: buckets, marks, and the rows above a mark."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def tenants(self) -> Sequence[str]:
        return (await self.session.scalars(select(Tenant.id).order_by(Tenant.id))).all()

    async def lock_mark(self, tenant_id: str, source: str, now: datetime) -> uuid.UUID:
        """The mark, created at zero when missing, locked for this transaction."""
        insert = dialect_insert(dialect_of(self.session), table_of(ActivityMark))
        await self.session.execute(
            insert.values(
                tenant_id=tenant_id, source=source, last_id=NO_ID, updated_at=now
            ).on_conflict_do_nothing(index_elements=["tenant_id", "source"])
        )
        mark = await self.session.scalar(
            select(ActivityMark.last_id)
            .where(ActivityMark.tenant_id == tenant_id, ActivityMark.source == source)
            .with_for_update()
        )
        return mark or NO_ID

    async def mark(self, tenant_id: str, source: str) -> uuid.UUID:
        mark = await self.session.scalar(
            select(ActivityMark.last_id).where(
                ActivityMark.tenant_id == tenant_id, ActivityMark.source == source
            )
        )
        return mark or NO_ID

    async def move_mark(
        self, tenant_id: str, source: str, last_id: uuid.UUID, now: datetime
    ) -> None:
        await self.session.execute(
            update(ActivityMark)
            .where(ActivityMark.tenant_id == tenant_id, ActivityMark.source == source)
            .values(last_id=last_id, updated_at=now)
        )

    async def rows_between(
        self,
        tenant_id: str,
        source: Source,
        *,
        above: uuid.UUID,
        below: uuid.UUID | None,
        limit: int | None,
    ) -> Sequence[Sequence[Any]]:
        """`(id, time, *extra)` of a source's rows with ids in (above, below), by id,
        through the tenant's primary key."""
        model = source.model
        stmt = select(model.id, source.time, *source.extra).where(
            model.tenant_id == tenant_id, model.id > above
        )
        if below is not None:
            stmt = stmt.where(model.id < below)
        stmt = stmt.order_by(model.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [tuple(row) for row in (await self.session.execute(stmt)).all()]

    async def add_counts(self, tenant_id: str, counts: Counter[tuple[str, datetime]]) -> None:
        table = table_of(ActivityCount)
        insert = dialect_insert(dialect_of(self.session), table)
        statement = insert.on_conflict_do_update(
            index_elements=["tenant_id", "metric", "bucket_at"],
            set_={"count": table.c.count + insert.excluded.count},
        )
        await self.session.execute(
            statement,
            [
                {"tenant_id": tenant_id, "metric": metric, "bucket_at": bucket, "count": n}
                for (metric, bucket), n in counts.items()
            ],
        )

    async def buckets(
        self, tenant_id: str, metrics: Sequence[str], since: datetime
    ) -> Sequence[tuple[str, datetime, int]]:
        rows = await self.session.execute(
            select(ActivityCount.metric, ActivityCount.bucket_at, ActivityCount.count).where(
                ActivityCount.tenant_id == tenant_id,
                ActivityCount.metric.in_(list(metrics)),
                ActivityCount.bucket_at >= since,
            )
        )
        return [(m, b, int(c)) for m, b, c in rows.all()]
