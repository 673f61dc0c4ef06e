"""All SQL of the admin side of webhooks: endpoints, their attempts, resend, replay and
recovery."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from coursegate.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from coursegate.webhooks.queue import CANCELED, FAILED, PENDING

_other = aliased(Delivery)


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        return await self.session.get(WebhookEndpoint, (tenant_id, endpoint_id))

    async def get_for_update(
        self, tenant_id: str, endpoint_id: uuid.UUID
    ) -> WebhookEndpoint | None:
        """The endpoint, locked until the transaction ends (on PostgreSQL; SQLite's one
        writer already excludes others): what serialises two recoveries of one endpoint."""
        stmt = (
            select(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).first()

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

    async def failed_messages(
        self,
        tenant_id: str,
        endpoint_id: uuid.UUID,
        since: datetime,
        *,
        after: uuid.UUID | None,
        limit: int,
    ) -> Sequence[uuid.UUID]:
        """The events whose message to this endpoint was last attempted at or after `since`
        and failed, and which no delivery is queued for now; by event id, one page at a time.

        A message may have several deliveries (the first, resends, replays): its latest
        attempt is that of the delivery attempted last (`last_attempt_at`, then id), and
        that delivery failed if it ended `failed`, or `canceled` after an attempt (every
        attempt before a success ends the delivery `delivered`). Read along the index
        `(tenant_id, endpoint_id, event_id)`, for the page and for each probe.
        """
        d = Delivery
        later_or_queued = exists().where(
            _other.tenant_id == d.tenant_id,
            _other.endpoint_id == d.endpoint_id,
            _other.event_id == d.event_id,
            _other.id != d.id,
            or_(
                _other.status == PENDING,
                _other.last_attempt_at > d.last_attempt_at,
                and_(_other.last_attempt_at == d.last_attempt_at, _other.id > d.id),
            ),
        )
        stmt = select(d.event_id).where(
            d.tenant_id == tenant_id,
            d.endpoint_id == endpoint_id,
            d.status.in_((FAILED, CANCELED)),
            d.last_attempt_at >= since,
            ~later_or_queued,
        )
        if after is not None:
            stmt = stmt.where(d.event_id > after)
        stmt = stmt.order_by(d.event_id).limit(limit)
        return (await self.session.scalars(stmt)).all()
