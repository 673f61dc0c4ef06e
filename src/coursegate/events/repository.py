"""All SQL of reading the event log (writing it is `outbox.record_events`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.models import Event


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def log(
        self,
        tenant_id: str,
        *,
        type_: str | None,
        since: datetime | None,
        before: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[Event]:
        """Newest first by `(occurred_at, id)`, along the index `(tenant_id, occurred_at)`:
        `since` bounds the range, and a page goes on from `before` (the last row of the
        previous one) without reading the rows it skips. A type is filtered while reading."""
        stmt = select(Event).where(Event.tenant_id == tenant_id)
        if type_ is not None:
            stmt = stmt.where(Event.type == type_)
        if since is not None:
            stmt = stmt.where(Event.occurred_at >= since)
        if before is not None:
            at, event_id = before
            # `<=` alone is what the index can seek to; the rest breaks ties by id.
            stmt = stmt.where(
                Event.occurred_at <= at, or_(Event.occurred_at < at, Event.id < event_id)
            )
        stmt = stmt.order_by(Event.occurred_at.desc(), Event.id.desc()).limit(limit)
        return (await self.session.scalars(stmt)).all()
