"""What attempts do to their endpoints: a failing streak, a disable, an event, an email.

Written in the same transaction as the attempts, so an endpoint is disabled
exactly when the attempt that disabled it is recorded, and its
`endpoint.disabled` event and email commit with it (or not at all).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.events.outbox import NewEvent, record_events
from coursegate.mail.queue import queue_email
from coursegate.webhooks.queue import DeliveryQueue, Outcome

FAILING_LIMIT = timedelta(days=5)

GONE = "gone"
FAILING = "failing"
MANUAL = "manual"

_REASONS = {
    GONE: "the receiver answered 410 Gone",
    FAILING: "every delivery attempt failed for 5 days",
}

EndpointKey = tuple[str, uuid.UUID]


async def apply_consequences(
    session: AsyncSession, queue: DeliveryQueue, outcomes: Sequence[Outcome], now: datetime
) -> None:
    succeeded: set[EndpointKey] = set()
    failed: set[EndpointKey] = set()
    gone: set[EndpointKey] = set()
    for o in outcomes:
        if o.attempt is None:
            continue
        key = (o.job.tenant_id, o.job.endpoint_id)
        if o.gone:
            gone.add(key)
        elif o.attempt["outcome"] == "succeeded":
            succeeded.add(key)
        else:
            failed.add(key)
    failing = failed - succeeded - gone
    await queue.mark_succeeding(sorted(succeeded))
    await queue.mark_failing(sorted(failing), now)
    await disable_endpoints(session, queue, sorted(gone), GONE, now)
    await disable_endpoints(
        session, queue, sorted(failing), FAILING, now, failing_before=now - FAILING_LIMIT
    )


async def disable_endpoints(
    session: AsyncSession,
    queue: DeliveryQueue,
    keys: Sequence[EndpointKey],
    reason: str,
    now: datetime,
    *,
    failing_before: datetime | None = None,
) -> list[EndpointKey]:
    """Disable, cancel what is pending, and tell the tenant (event, and email if it has a contact).

    A manual disable cancels pending deliveries too but tells no one: the
    tenant did it. `replay` sends what was missed once it is enabled again.
    """
    disabled = await queue.disable(keys, reason, now, failing_before=failing_before)
    if not disabled:
        return []
    contacts = await queue.contacts(sorted({t for t, _ in disabled}))
    for tenant_id, endpoint_id in disabled:
        await queue.cancel_pending(tenant_id, endpoint_id)
        if reason == MANUAL:
            continue
        await record_events(
            session,
            tenant_id,
            [NewEvent("endpoint.disabled", {"endpoint_id": str(endpoint_id), "reason": reason})],
            now,
        )
        contact = contacts.get(tenant_id)
        if contact is not None:
            await queue_email(
                session,
                tenant_id=tenant_id,
                to_address=contact,
                subject="coursegate: a webhook endpoint was disabled",
                body=(
                    f"Webhook endpoint {endpoint_id} of tenant {tenant_id} was disabled: "
                    f"{_REASONS.get(reason, reason)}.\n\n"
                    "Its pending deliveries were canceled. Fix the receiver, enable the "
                    "endpoint again (PATCH /v1/webhook-endpoints/{id} with "
                    '{"enabled": true}) and replay what it missed '
                    "(POST /v1/webhook-endpoints/{id}/replay).\n"
                ),
                kind="endpoint.disabled",
                at=now,
            )
    return disabled
