"""All SQL of the admin side of webhooks: endpoints, their messages and attempts, resend,
replay and recovery.

Reads of attempts go through `ix_delivery_attempts_endpoint (tenant_id, endpoint_id, id)`:
ids are time-ordered, so "since then" is an id range on that index. The id bound is
what lets the index skip older rows; `attempted_at` (the same instant, from the
service's clock) is the condition itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from coursegate.kit.ids import id_floor
from coursegate.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from coursegate.webhooks.queue import CANCELED, FAILED, PENDING

_other = aliased(Delivery)

# Attempt ids come from the clock of the worker that made them: allow for workers'
# clocks disagreeing by this much when an id range stands for a time range.
CLOCK_SKEW = timedelta(minutes=1)
SUCCEEDED = "succeeded"


@dataclass(frozen=True, slots=True)
class AttemptCounts:
    succeeded: int
    attempted: int


@dataclass(frozen=True, slots=True)
class MessageHead:
    """A message of an endpoint: the event it carries (its id is the `webhook-id`)."""

    event_id: uuid.UUID
    type: str
    occurred_at: datetime


def _attempted_since(since: datetime) -> ColumnElement[bool]:
    return (DeliveryAttempt.id >= id_floor(since - CLOCK_SKEW)) & (
        DeliveryAttempt.attempted_at >= since
    )


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

    async def hasten_retries(
        self,
        tenant_id: str,
        endpoint_id: uuid.UUID,
        since: datetime,
        *,
        beyond: datetime,
        now: datetime,
    ) -> int:
        """Deliveries of this endpoint waiting to retry after an attempt at or after `since`
        failed, whose retry is later than `beyond`: made due now. How many."""
        result = await self.session.execute(
            update(Delivery)
            .where(
                Delivery.tenant_id == tenant_id,
                Delivery.endpoint_id == endpoint_id,
                Delivery.status == PENDING,
                Delivery.attempts > 0,
                Delivery.last_attempt_at >= since,
                Delivery.next_attempt_at > beyond,
                # One being sent now is not waiting: hastening it would send it twice.
                Delivery.claimed_at.is_(None),
            )
            .values(next_attempt_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def attempt_counts(
        self, tenant_id: str, endpoint_ids: Sequence[uuid.UUID], since: datetime
    ) -> dict[uuid.UUID, AttemptCounts]:
        """Per endpoint, its attempts since then and how many succeeded (endpoints without
        any are left out)."""
        if not endpoint_ids:
            return {}
        stmt = (
            select(
                DeliveryAttempt.endpoint_id,
                func.count(),
                func.sum(case((DeliveryAttempt.outcome == SUCCEEDED, 1), else_=0)),
            )
            .where(
                DeliveryAttempt.tenant_id == tenant_id,
                DeliveryAttempt.endpoint_id.in_(endpoint_ids),
                _attempted_since(since),
            )
            .group_by(DeliveryAttempt.endpoint_id)
        )
        return {
            endpoint_id: AttemptCounts(succeeded=int(ok or 0), attempted=int(total))
            for endpoint_id, total, ok in (await self.session.execute(stmt)).all()
        }

    async def messages(
        self, tenant_id: str, endpoint_id: uuid.UUID, *, before: uuid.UUID | None, limit: int
    ) -> Sequence[MessageHead]:
        """The endpoint's messages, newest event first (through `ix_deliveries_endpoint`)."""
        ids = (
            select(Delivery.event_id)
            .where(Delivery.tenant_id == tenant_id, Delivery.endpoint_id == endpoint_id)
            .distinct()
            .order_by(Delivery.event_id.desc())
            .limit(limit)
        )
        if before is not None:
            ids = ids.where(Delivery.event_id < before)
        stmt = (
            select(Event.id, Event.type, Event.occurred_at)
            .where(Event.tenant_id == tenant_id, Event.id.in_(ids.scalar_subquery()))
            .order_by(Event.id.desc())
        )
        rows = (await self.session.execute(stmt)).all()
        return [MessageHead(event_id, type_, at) for event_id, type_, at in rows]

    async def deliveries_of(
        self, tenant_id: str, endpoint_id: uuid.UUID, event_ids: Sequence[uuid.UUID]
    ) -> Sequence[Delivery]:
        """Every delivery of these messages (the first, and any resend or replay), newest first."""
        stmt = (
            select(Delivery)
            .where(
                Delivery.tenant_id == tenant_id,
                Delivery.endpoint_id == endpoint_id,
                Delivery.event_id.in_(event_ids),
            )
            .order_by(Delivery.id.desc())
        )
        return (await self.session.scalars(stmt)).all()

    async def attempts_of(
        self,
        tenant_id: str,
        endpoint_id: uuid.UUID,
        event_ids: Sequence[uuid.UUID],
        *,
        made_since: datetime,
    ) -> Sequence[DeliveryAttempt]:
        """Every attempt of these messages, newest first; none was made before `made_since`
        (when the oldest of their events was written), which bounds the index range."""
        stmt = (
            select(DeliveryAttempt)
            .where(
                DeliveryAttempt.tenant_id == tenant_id,
                DeliveryAttempt.endpoint_id == endpoint_id,
                DeliveryAttempt.id >= id_floor(made_since - CLOCK_SKEW),
                DeliveryAttempt.event_id.in_(event_ids),
            )
            .order_by(DeliveryAttempt.id.desc())
        )
        return (await self.session.scalars(stmt)).all()
