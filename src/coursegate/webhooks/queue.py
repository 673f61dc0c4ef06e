"""All SQL of the delivery queue: routing events into deliveries, claiming due
deliveries, recording what their attempts did.

These run thousands of times a second, so each is one Core statement over
many rows. PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so any number of
workers share the queue without waiting on each other; SQLite has one writer
(`BEGIN IMMEDIATE`), so a plain select-then-update is already exclusive there.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, bindparam, case, cast, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.kit.ids import uuid7
from coursegate.kit.sql import dialect_of
from coursegate.models import Delivery, DeliveryAttempt, Event, Tenant, WebhookEndpoint
from coursegate.models.base import UtcDateTime, table_of

DELIVERIES = table_of(Delivery)
ATTEMPTS = table_of(DeliveryAttempt)
EVENTS = table_of(Event)
ENDPOINTS = table_of(WebhookEndpoint)
TENANTS = table_of(Tenant)

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
CANCELED = "canceled"

OUTCOME_UNKNOWN = "outcome_unknown"
"""An attempt's outcome when the worker that sent it died before writing down what came
back: the receiver may or may not have the message."""
LEASE_EXPIRED = "lease_expired"


@dataclass(frozen=True, slots=True)
class UnroutedEvent:
    tenant_id: str
    id: uuid.UUID
    type: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Subscriber:
    tenant_id: str
    id: uuid.UUID
    event_types: list[str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery with everything needed to attempt it, from one round trip."""

    tenant_id: str
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    attempts: int
    enrichment: dict[str, Any] | None
    lease: datetime
    event_type: str
    occurred_at: datetime
    data_json: str
    """The event's data as the database holds it: sent as is unless enriched."""
    url: str
    secret_encrypted: str
    previous_secret_encrypted: str | None
    previous_secret_expires_at: datetime | None
    enrichments: dict[str, Any]
    enabled: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt did to its delivery, ready to be written."""

    job: Job
    status: str
    next_attempt_at: datetime
    attempt: dict[str, Any] | None
    """The `delivery_attempts` row; None when nothing was sent (endpoint disabled meanwhile)."""
    enrichment: dict[str, Any] | None
    gone: bool = False
    """The receiver answered 410 Gone: the endpoint is to be disabled."""


_JOB_COLUMNS = (
    EVENTS.c.type.label("event_type"),
    EVENTS.c.occurred_at,
    cast(EVENTS.c.data, Text).label("data_json"),
    ENDPOINTS.c.url,
    ENDPOINTS.c.secret_encrypted,
    ENDPOINTS.c.previous_secret_encrypted,
    ENDPOINTS.c.previous_secret_expires_at,
    ENDPOINTS.c.enrichments,
    ENDPOINTS.c.enabled,
)


def _delivery_columns(source: Any) -> tuple[Any, ...]:
    return (
        source.c.tenant_id,
        source.c.id,
        source.c.endpoint_id,
        source.c.event_id,
        source.c.attempts,
        source.c.enrichment,
    )


def _with_event_and_endpoint(source: Any) -> Any:
    """A job's columns: the delivery's (`deliveries`, or the CTE of the claimed ones)
    with its event and its endpoint, in one query."""
    return select(*_delivery_columns(source), *_JOB_COLUMNS).select_from(
        source.join(
            EVENTS,
            and_(EVENTS.c.tenant_id == source.c.tenant_id, EVENTS.c.id == source.c.event_id),
        ).join(
            ENDPOINTS,
            and_(
                ENDPOINTS.c.tenant_id == source.c.tenant_id,
                ENDPOINTS.c.id == source.c.endpoint_id,
            ),
        )
    )


_RECORD = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.tenant_id == bindparam("k_tenant"),
        DELIVERIES.c.id == bindparam("k_id"),
        # A stale worker whose lease ran out (and whose delivery another worker
        # claimed since) must not overwrite the newer state.
        DELIVERIES.c.next_attempt_at == bindparam("k_lease"),
        DELIVERIES.c.status == PENDING,
    )
    .values(
        status=bindparam("v_status"),
        attempts=bindparam("v_attempts"),
        next_attempt_at=bindparam("v_next"),
        # Typed: inside coalesce() the parameter would not take the column's type, and
        # SQLite would be given the driver's text for an instant, which does not compare
        # with the stored form.
        last_attempt_at=func.coalesce(
            bindparam("v_last", type_=UtcDateTime()), DELIVERIES.c.last_attempt_at
        ),
        enrichment=bindparam("v_enrichment"),
        claimed_at=None,
    )
)

_TAKEN_OVER = DELIVERIES.c.claimed_at.is_not(None)
"""Due and still claimed: the lease ran out with the send's outcome never written."""

_CLAIM_VALUES = {
    # Every right-hand side reads the row as it was before this claim.
    "attempts": DELIVERIES.c.attempts + case((_TAKEN_OVER, 1), else_=0),
    "last_attempt_at": case(
        (_TAKEN_OVER, DELIVERIES.c.claimed_at), else_=DELIVERIES.c.last_attempt_at
    ),
}


def new_delivery(
    tenant_id: str, endpoint_id: uuid.UUID, event_id: uuid.UUID, origin: str, now: datetime
) -> dict[str, Any]:
    """A delivery row due now; `origin` says why it exists: event, resend, replay or
    recover."""
    return {
        "tenant_id": tenant_id,
        "id": uuid7(),
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "origin": origin,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "last_attempt_at": None,
        "enrichment": None,
        "created_at": now,
    }


class DeliveryQueue:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.postgres = dialect_of(session) == "postgresql"

    # Routing -----------------------------------------------------------------

    async def claim_unrouted(self, limit: int) -> list[UnroutedEvent]:
        stmt = (
            select(EVENTS.c.tenant_id, EVENTS.c.id, EVENTS.c.type, EVENTS.c.occurred_at)
            .where(EVENTS.c.routed_at.is_(None))
            .order_by(EVENTS.c.id)
            .limit(limit)
        )
        if self.postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        rows = (await self.session.execute(stmt)).all()
        return [UnroutedEvent(r.tenant_id, r.id, r.type, r.occurred_at) for r in rows]

    async def subscribers(self, tenant_ids: Sequence[str]) -> dict[str, list[Subscriber]]:
        stmt = select(
            ENDPOINTS.c.tenant_id,
            ENDPOINTS.c.id,
            ENDPOINTS.c.event_types,
            ENDPOINTS.c.created_at,
        ).where(ENDPOINTS.c.tenant_id.in_(tenant_ids), ENDPOINTS.c.enabled.is_(True))
        grouped: dict[str, list[Subscriber]] = {t: [] for t in tenant_ids}
        for r in (await self.session.execute(stmt)).all():
            grouped[r.tenant_id].append(Subscriber(r.tenant_id, r.id, r.event_types, r.created_at))
        return grouped

    async def add_deliveries(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(DELIVERIES), list(rows))

    async def mark_routed(self, event_ids: Sequence[uuid.UUID], at: datetime) -> None:
        # `id` alone is what the partial index of unrouted events holds.
        await self.session.execute(
            update(EVENTS)
            .where(EVENTS.c.id.in_(event_ids), EVENTS.c.routed_at.is_(None))
            .values(routed_at=at)
        )

    # Dispatch ----------------------------------------------------------------

    async def claim_due(self, now: datetime, lease: datetime, limit: int) -> list[Job]:
        """Due deliveries, each pushed out to `lease` so no other worker takes it meanwhile.

        A due delivery still marked claimed was taken by a worker that died
        (or overran its lease) before writing its attempt down: that send is
        recorded here, in the claim's transaction, as an attempt whose outcome
        is unknown, and counts towards the retry schedule. The normal path
        writes nothing more than the claim it always made.
        """
        due = (
            select(
                DELIVERIES.c.tenant_id, DELIVERIES.c.id, DELIVERIES.c.claimed_at.label("lost_at")
            )
            .where(DELIVERIES.c.status == PENDING, DELIVERIES.c.next_attempt_at <= now)
            .order_by(DELIVERIES.c.next_attempt_at)
            .limit(limit)
        )
        claim = update(DELIVERIES).values(next_attempt_at=lease, claimed_at=now, **_CLAIM_VALUES)
        if self.postgres:
            due_cte = due.with_for_update(skip_locked=True).cte("due")
            claimed = (
                claim.where(
                    DELIVERIES.c.tenant_id == due_cte.c.tenant_id,
                    DELIVERIES.c.id == due_cte.c.id,
                )
                .returning(*_delivery_columns(DELIVERIES), due_cte.c.lost_at)
                .cte("claimed")
            )
            stmt = _with_event_and_endpoint(claimed).add_columns(claimed.c.lost_at)
            rows = (await self.session.execute(stmt)).all()
            lost_at = {(r.tenant_id, r.id): r.lost_at for r in rows}
        else:
            found = (await self.session.execute(due)).all()
            if not found:
                return []
            lost_at = {(r.tenant_id, r.id): r.lost_at for r in found}
            in_keys = tuple_(DELIVERIES.c.tenant_id, DELIVERIES.c.id).in_(list(lost_at))
            await self.session.execute(claim.where(in_keys))
            stmt = _with_event_and_endpoint(DELIVERIES).where(in_keys)
            rows = (await self.session.execute(stmt)).all()
        lost = [
            _lost_attempt(r, at) for r in rows if (at := lost_at[(r.tenant_id, r.id)]) is not None
        ]
        if lost:
            await self.session.execute(insert(ATTEMPTS), lost)
        return [
            Job(
                tenant_id=r.tenant_id,
                id=r.id,
                endpoint_id=r.endpoint_id,
                event_id=r.event_id,
                attempts=r.attempts,
                enrichment=r.enrichment,
                lease=lease,
                event_type=r.event_type,
                occurred_at=r.occurred_at,
                data_json=r.data_json,
                url=r.url,
                secret_encrypted=r.secret_encrypted,
                previous_secret_encrypted=r.previous_secret_encrypted,
                previous_secret_expires_at=r.previous_secret_expires_at,
                enrichments=r.enrichments,
                enabled=r.enabled,
            )
            for r in rows
        ]

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        await self.session.execute(
            _RECORD,
            [
                {
                    "k_tenant": o.job.tenant_id,
                    "k_id": o.job.id,
                    "k_lease": o.job.lease,
                    "v_status": o.status,
                    "v_attempts": o.job.attempts + (o.attempt is not None),
                    "v_next": o.next_attempt_at,
                    "v_last": o.attempt["attempted_at"] if o.attempt else None,
                    "v_enrichment": o.enrichment,
                }
                for o in outcomes
            ],
        )
        attempts = [o.attempt for o in outcomes if o.attempt is not None]
        if attempts:
            await self.session.execute(insert(ATTEMPTS), attempts)

    async def mark_succeeding(self, endpoints: Sequence[tuple[str, uuid.UUID]]) -> None:
        """A success ends an endpoint's failing streak."""
        if endpoints:
            await self.session.execute(
                update(ENDPOINTS)
                .where(
                    tuple_(ENDPOINTS.c.tenant_id, ENDPOINTS.c.id).in_(list(endpoints)),
                    ENDPOINTS.c.failing_since.is_not(None),
                )
                .values(failing_since=None)
            )

    async def mark_failing(self, endpoints: Sequence[tuple[str, uuid.UUID]], at: datetime) -> None:
        """The first failure after a success starts the streak; later ones keep its start."""
        if endpoints:
            await self.session.execute(
                update(ENDPOINTS)
                .where(
                    tuple_(ENDPOINTS.c.tenant_id, ENDPOINTS.c.id).in_(list(endpoints)),
                    ENDPOINTS.c.failing_since.is_(None),
                )
                .values(failing_since=at)
            )

    async def disable(
        self,
        endpoints: Sequence[tuple[str, uuid.UUID]],
        reason: str,
        at: datetime,
        *,
        failing_before: datetime | None = None,
    ) -> list[tuple[str, uuid.UUID]]:
        """Disable those still enabled (and, if given, failing since before then); say which."""
        if not endpoints:
            return []
        stmt = (
            update(ENDPOINTS)
            .where(
                tuple_(ENDPOINTS.c.tenant_id, ENDPOINTS.c.id).in_(list(endpoints)),
                ENDPOINTS.c.enabled.is_(True),
            )
            .values(enabled=False, disabled_reason=reason, updated_at=at)
            .returning(ENDPOINTS.c.tenant_id, ENDPOINTS.c.id)
        )
        if failing_before is not None:
            stmt = stmt.where(ENDPOINTS.c.failing_since <= failing_before)
        return [(r.tenant_id, r.id) for r in (await self.session.execute(stmt)).all()]

    async def cancel_pending(self, tenant_id: str, endpoint_id: uuid.UUID) -> int:
        result = await self.session.execute(
            update(DELIVERIES)
            .where(
                DELIVERIES.c.tenant_id == tenant_id,
                DELIVERIES.c.endpoint_id == endpoint_id,
                DELIVERIES.c.status == PENDING,
            )
            .values(status=CANCELED)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def backlog(self, now: datetime) -> tuple[int, datetime | None]:
        """How many deliveries are due now, and since when the oldest has waited."""
        row = (
            await self.session.execute(
                select(func.count(), func.min(DELIVERIES.c.next_attempt_at)).where(
                    DELIVERIES.c.status == PENDING, DELIVERIES.c.next_attempt_at <= now
                )
            )
        ).one()
        return int(row[0]), row[1]

    async def contacts(self, tenant_ids: Sequence[str]) -> dict[str, str]:
        """The tenants' operational email addresses, for those that have one."""
        stmt = select(TENANTS.c.id, TENANTS.c.contact_email).where(
            TENANTS.c.id.in_(tenant_ids), TENANTS.c.contact_email.is_not(None)
        )
        return {r.id: r.contact_email for r in (await self.session.execute(stmt)).all()}


def _lost_attempt(row: Any, claimed_at: datetime) -> dict[str, Any]:
    """The send a dead worker made, numbered and timed as it began; its id is made now,
    before the send that replaces it, so it lists just below that one."""
    return {
        "tenant_id": row.tenant_id,
        "id": uuid7(),
        "endpoint_id": row.endpoint_id,
        "delivery_id": row.id,
        "event_id": row.event_id,
        "attempt": row.attempts,
        "attempted_at": claimed_at,
        "outcome": OUTCOME_UNKNOWN,
        "status_code": None,
        "latency_ms": None,
        "response_body": None,
        "error_class": LEASE_EXPIRED,
    }
