"""The console's own reads across domains: what the overview counts.

These are read models of other domains' tables, kept here because only the
console asks these questions. Each reads through an index that starts with the
tenant (ids are time-ordered, so a time range is an id range).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.models import (
    Completion,
    Connector,
    ConnectorReject,
    ConnectorRun,
    Credit,
    Delivery,
    DeliveryAttempt,
    ParkedRequest,
)


def id_floor(at: datetime) -> uuid.UUID:
    """The smallest time-ordered id made at or after `at`: a time bound on a primary key."""
    unix_ms = int(at.timestamp() * 1000)
    return uuid.UUID(int=(unix_ms << 80) | (0x7 << 76) | (0b10 << 62))


@dataclass(frozen=True, slots=True)
class Backlog:
    due: int
    oldest_due_at: datetime | None


@dataclass(frozen=True, slots=True)
class LastRun:
    connector_id: str
    kind: str
    enabled: bool
    run: ConnectorRun | None


class OverviewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def completion_times(self, tenant_id: str, since: datetime) -> Sequence[datetime]:
        rows = await self.session.scalars(
            select(Completion.recorded_at).where(
                Completion.tenant_id == tenant_id, Completion.id >= id_floor(since)
            )
        )
        return rows.all()

    async def credit_times(self, tenant_id: str, since: datetime) -> Sequence[datetime]:
        rows = await self.session.scalars(
            select(Credit.awarded_at).where(
                Credit.tenant_id == tenant_id, Credit.id >= id_floor(since)
            )
        )
        return rows.all()

    async def attempt_outcomes(
        self, tenant_id: str, since: datetime
    ) -> Sequence[tuple[datetime, str]]:
        rows = await self.session.execute(
            select(DeliveryAttempt.attempted_at, DeliveryAttempt.outcome).where(
                DeliveryAttempt.tenant_id == tenant_id, DeliveryAttempt.id >= id_floor(since)
            )
        )
        return [(at, outcome) for at, outcome in rows.all()]

    async def backlog(self, tenant_id: str, now: datetime) -> Backlog:
        row = (
            await self.session.execute(
                select(func.count(), func.min(Delivery.next_attempt_at)).where(
                    Delivery.status == "pending",
                    Delivery.next_attempt_at <= now,
                    Delivery.tenant_id == tenant_id,
                )
            )
        ).one()
        return Backlog(due=int(row[0]), oldest_due_at=row[1])

    async def last_runs(self, tenant_id: str) -> list[LastRun]:
        connectors = (
            await self.session.scalars(
                select(Connector).where(Connector.tenant_id == tenant_id).order_by(Connector.id)
            )
        ).all()
        result = []
        for connector in connectors:
            run = await self.session.scalar(
                select(ConnectorRun)
                .where(
                    ConnectorRun.tenant_id == tenant_id,
                    ConnectorRun.connector_id == connector.id,
                )
                .order_by(ConnectorRun.id.desc())
                .limit(1)
            )
            result.append(LastRun(connector.id, connector.kind, connector.enabled, run))
        return result

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
