"""All SQL of the admin side of webhooks: endpoints, their attempts, resend and replay."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        return await self.session.get(WebhookEndpoint, (tenant_id, endpoint_id))

    async def add(self, endpoint: WebhookEndpoint) -> None:
        self.session.add(endpoint)
        await self.session.flush()

    async def flush(self) -> None:
        await self.session.flush()

    async def list(
        self, tenant_id: str, *, after: uuid.UUID | None, limit: int
    ) -> Sequence[WebhookEndpoint]:
        stmt = select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(WebhookEndpoint.id > after)
        return (await self.session.scalars(stmt.order_by(WebhookEndpoint.id).limit(limit))).all()

    async def delete(self, tenant_id: str, endpoint_id: uuid.UUID) -> None:
        # Deliveries and attempts go with it (ON DELETE CASCADE).
        await self.session.execute(
            delete(WebhookEndpoint).where(
                WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id
            )
        )

    async def attempts(
        self,
        tenant_id: str,
        endpoint_id: uuid.UUID,
        *,
        event_id: uuid.UUID | None,
        outcome: str | None,
        before: uuid.UUID | None,
        limit: int,
    ) -> Sequence[DeliveryAttempt]:
        """Newest first: what an operator looks for is what just happened."""
        stmt = select(DeliveryAttempt).where(
            DeliveryAttempt.tenant_id == tenant_id, DeliveryAttempt.endpoint_id == endpoint_id
        )
        if event_id is not None:
            stmt = stmt.where(DeliveryAttempt.event_id == event_id)
        if outcome is not None:
            stmt = stmt.where(DeliveryAttempt.outcome == outcome)
        if before is not None:
            stmt = stmt.where(DeliveryAttempt.id < before)
        stmt = stmt.order_by(DeliveryAttempt.id.desc()).limit(limit)
        return (await self.session.scalars(stmt)).all()

    async def was_sent(self, tenant_id: str, endpoint_id: uuid.UUID, event_id: uuid.UUID) -> bool:
        """Whether this endpoint ever had this message (what `resend` may send again)."""
        stmt = select(
            exists().where(
                Delivery.tenant_id == tenant_id,
                Delivery.endpoint_id == endpoint_id,
                Delivery.event_id == event_id,
            )
        )
        return bool(await self.session.scalar(stmt))

    async def events_since(
        self,
        tenant_id: str,
        since: datetime,
        types: Sequence[str] | None,
        *,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[tuple[uuid.UUID, datetime]]:
        """Events of the tenant from `since` on, oldest first, one page at a time."""
        stmt = select(Event.id, Event.occurred_at).where(
            Event.tenant_id == tenant_id, Event.occurred_at >= since
        )
        if types is not None:
            stmt = stmt.where(Event.type.in_(types))
        if after is not None:
            at, event_id = after
            stmt = stmt.where(
                (Event.occurred_at > at) | ((Event.occurred_at == at) & (Event.id > event_id))
            )
        stmt = stmt.order_by(Event.occurred_at, Event.id).limit(limit)
        return [(r.id, r.occurred_at) for r in (await self.session.execute(stmt)).all()]
