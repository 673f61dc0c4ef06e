"""Webhook endpoints' rules: secrets shown once, rotation with overlap, resend, replay and
recovery of failed messages.

The service never commits; the request's transaction does.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.kit.clock import Clock
from coursegate.kit.errors import DomainError, NotFound
from coursegate.kit.ids import id_instant, uuid7
from coursegate.kit.netguard import validate_webhook_url
from coursegate.kit.secrets import SecretBox
from coursegate.kit.signing import generate_whsec
from coursegate.models import Delivery, DeliveryAttempt, WebhookEndpoint
from coursegate.webhooks.catalogue import ALL
from coursegate.webhooks.consequences import MANUAL, disable_endpoints
from coursegate.webhooks.queue import DeliveryQueue, new_delivery
from coursegate.webhooks.repository import AttemptCounts, MessageHead, WebhookRepository
from coursegate.webhooks.schemas import EndpointCreate, EndpointUpdate

ROTATION_OVERLAP = timedelta(hours=24)
REPLAY_CHUNK = 1000
RESEND = "resend"
REPLAY = "replay"
RECOVER = "recover"
# Longer than any worker's lease on a delivery (twice the longest timeout, 2 x 120 s, and a
# margin): a retry due later than this is not in flight, and is worth bringing forward.
RECOVER_HORIZON = timedelta(minutes=5)


class EndpointDisabled(DomainError):
    code = "ENDPOINT_DISABLED"
    status = 409


@dataclass(frozen=True, slots=True)
class Message:
    """An event for an endpoint, with every delivery of it (the first, resends, replays) and
    every attempt, newest first. The event's id is the `webhook-id` each attempt carried."""

    head: MessageHead
    deliveries: Sequence[Delivery]
    attempts: Sequence[DeliveryAttempt]

    @property
    def status(self) -> str:
        """Where its latest delivery stands: pending, delivered, failed or canceled."""
        return self.deliveries[0].status


@dataclass(frozen=True, slots=True)
class WithSecret:
    endpoint: WebhookEndpoint
    secret: str
    """In clear, returned from this call only."""


class WebhookService:
    def __init__(
        self, session: AsyncSession, clock: Clock, box: SecretBox, *, allow_private: bool
    ) -> None:
        self.session = session
        self.repo = WebhookRepository(session)
        self.clock = clock
        self.box = box
        self.allow_private = allow_private

    async def create(self, tenant_id: str, body: EndpointCreate) -> WithSecret:
        url = validate_webhook_url(body.url, allow_private=self.allow_private)
        now = self.clock.now()
        secret = generate_whsec()
        endpoint = WebhookEndpoint(
            tenant_id=tenant_id,
            id=uuid7(),
            url=url,
            description=body.description,
            event_types=body.event_types,
            enrichments=body.enrichments.stored(),
            enabled=True,
            disabled_reason=None,
            secret_encrypted=self.box.encrypt(secret),
            previous_secret_encrypted=None,
            previous_secret_expires_at=None,
            failing_since=None,
            created_at=now,
            updated_at=now,
        )
        await self.repo.add(endpoint)
        return WithSecret(endpoint, secret)

    async def get(self, tenant_id: str, endpoint_id: uuid.UUID) -> WebhookEndpoint:
        endpoint = await self.repo.get(tenant_id, endpoint_id)
        if endpoint is None:
            raise NotFound()
        return endpoint

    async def list(
        self, tenant_id: str, *, after: uuid.UUID | None, limit: int
    ) -> Sequence[WebhookEndpoint]:
        return await self.repo.list(tenant_id, after=after, limit=limit)

    async def update(
        self, tenant_id: str, endpoint_id: uuid.UUID, body: EndpointUpdate
    ) -> WebhookEndpoint:
        endpoint = await self.get(tenant_id, endpoint_id)
        given = body.model_fields_set
        if body.url is not None:
            endpoint.url = validate_webhook_url(body.url, allow_private=self.allow_private)
        if body.event_types is not None:
            endpoint.event_types = body.event_types
        if "description" in given:
            endpoint.description = body.description
        if body.enrichments is not None:
            endpoint.enrichments = body.enrichments.stored()
        now = self.clock.now()
        endpoint.updated_at = now
        await self.repo.flush()
        if body.enabled is True and not endpoint.enabled:
            endpoint.enabled = True
            endpoint.disabled_reason = None
            endpoint.failing_since = None
            await self.repo.flush()
        elif body.enabled is False and endpoint.enabled:
            key = (tenant_id, endpoint_id)
            await disable_endpoints(self.session, DeliveryQueue(self.session), [key], MANUAL, now)
            await self.session.refresh(endpoint)
        return endpoint

    async def delete(self, tenant_id: str, endpoint_id: uuid.UUID) -> None:
        await self.get(tenant_id, endpoint_id)
        await self.repo.delete(tenant_id, endpoint_id)

    async def rotate_secret(self, tenant_id: str, endpoint_id: uuid.UUID) -> WithSecret:
        """A new secret signs from now on; the old one also signs for 24 h, so receivers
        can switch over without dropping a message. Rotating again ends the old one early."""
        endpoint = await self.get(tenant_id, endpoint_id)
        now = self.clock.now()
        secret = generate_whsec()
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
        endpoint.secret_encrypted = self.box.encrypt(secret)
        endpoint.updated_at = now
        await self.repo.flush()
        return WithSecret(endpoint, secret)

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
        await self.get(tenant_id, endpoint_id)
        return await self.repo.attempts(
            tenant_id, endpoint_id, event_id=event_id, outcome=outcome, before=before, limit=limit
        )

    async def attempt_counts(
        self, tenant_id: str, endpoint_ids: Sequence[uuid.UUID], since: datetime
    ) -> dict[uuid.UUID, AttemptCounts]:
        """Attempts since then per endpoint, and how many of them succeeded (what a success
        rate is made of)."""
        return await self.repo.attempt_counts(tenant_id, endpoint_ids, since)

    async def messages(
        self, tenant_id: str, endpoint_id: uuid.UUID, *, before: uuid.UUID | None, limit: int
    ) -> Sequence[Message]:
        """A page of the endpoint's messages, newest first, each with its deliveries and
        attempts; `before` is the last `webhook-id` of the previous page."""
        await self.get(tenant_id, endpoint_id)
        heads = await self.repo.messages(tenant_id, endpoint_id, before=before, limit=limit)
        if not heads:
            return []
        event_ids = [h.event_id for h in heads]
        deliveries = await self.repo.deliveries_of(tenant_id, endpoint_id, event_ids)
        attempts = await self.repo.attempts_of(
            tenant_id, endpoint_id, event_ids, made_since=id_instant(min(event_ids))
        )
        return [
            Message(
                head,
                [d for d in deliveries if d.event_id == head.event_id],
                [a for a in attempts if a.event_id == head.event_id],
            )
            for head in heads
        ]

    async def resend(
        self, tenant_id: str, endpoint_id: uuid.UUID, event_id: uuid.UUID
    ) -> uuid.UUID:
        """The message once more, as a new delivery with the event's id as `webhook-id`."""
        endpoint = await self._enabled(tenant_id, endpoint_id)
        if not await self.repo.was_sent(tenant_id, endpoint.id, event_id):
            raise NotFound("this endpoint never had this message; replay sends older events")
        row = new_delivery(tenant_id, endpoint.id, event_id, RESEND, self.clock.now())
        await DeliveryQueue(self.session).add_deliveries([row])
        return uuid.UUID(str(row["id"]))

    async def replay(self, tenant_id: str, endpoint_id: uuid.UUID, since: datetime) -> int:
        """Every event since then that the endpoint subscribes to, again, in order."""
        endpoint = await self._enabled(tenant_id, endpoint_id)
        types = None if ALL in endpoint.event_types else list(endpoint.event_types)
        queue = DeliveryQueue(self.session)
        now = self.clock.now()
        after: tuple[datetime, uuid.UUID] | None = None
        queued = 0
        while True:
            page = await self.repo.events_since(
                tenant_id, since, types, after=after, limit=REPLAY_CHUNK
            )
            if not page:
                return queued
            await queue.add_deliveries(
                [
                    new_delivery(tenant_id, endpoint.id, event_id, REPLAY, now)
                    for event_id, _ in page
                ]
            )
            queued += len(page)
            last_id, last_at = page[-1]
            after = (last_at, last_id)

    async def recover(self, tenant_id: str, endpoint_id: uuid.UUID, since: datetime) -> int:
        """Send once more, once each, every message whose latest attempt at or after
        `since` failed, keeping its `webhook-id`; how many were queued.

        A message whose delivery gave up (failed, or canceled after an attempt) gets a new
        delivery. One still waiting to retry is made due now instead, so it is not sent
        twice: unless its retry is within `RECOVER_HORIZON` anyway, which also leaves alone
        a delivery a worker holds at this moment (its lease is shorter than that). A
        message queued already by an earlier recovery, resend or replay is left to it:
        calling this twice queues nothing the second time until those have been tried.
        The endpoint's row is locked meanwhile, so two recoveries at once queue each
        message once. A disabled endpoint is refused, as for a replay.
        """
        endpoint = await self._enabled(tenant_id, endpoint_id, lock=True)
        queue = DeliveryQueue(self.session)
        now = self.clock.now()
        queued = await self.repo.hasten_retries(
            tenant_id, endpoint.id, since, beyond=now + RECOVER_HORIZON, now=now
        )
        after: uuid.UUID | None = None
        while True:
            page = await self.repo.failed_messages(
                tenant_id, endpoint.id, since, after=after, limit=REPLAY_CHUNK
            )
            if not page:
                return queued
            await queue.add_deliveries(
                [new_delivery(tenant_id, endpoint.id, event_id, RECOVER, now) for event_id in page]
            )
            queued += len(page)
            after = page[-1]

    async def _enabled(
        self, tenant_id: str, endpoint_id: uuid.UUID, *, lock: bool = False
    ) -> WebhookEndpoint:
        if lock:
            found = await self.repo.get_for_update(tenant_id, endpoint_id)
            if found is None:
                raise NotFound()
            endpoint = found
        else:
            endpoint = await self.get(tenant_id, endpoint_id)
        if not endpoint.enabled:
            raise EndpointDisabled("enable the endpoint first (PATCH enabled: true)")
        return endpoint
