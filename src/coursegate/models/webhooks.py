"""Outbound webhooks: endpoints, one delivery per event and endpoint, every attempt."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from coursegate.models.base import Base, JsonDocument, tenant_column, tenant_fk, tenant_owned

# A partial index holds only what is still waiting, so a million delivered rows
# cost the dispatcher nothing (same predicate on both databases).
PENDING = text("status = 'pending'")


class WebhookEndpoint(Base):
    """A tenant's subscription: where to send which events, signed with which secret.

    During a rotation the previous secret stays valid until
    `previous_secret_expires_at`, and both signatures are sent meanwhile.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (tenant_owned(),)

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(512))
    event_types: Mapped[list[str]] = mapped_column(JsonDocument)
    enrichments: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    enabled: Mapped[bool] = mapped_column(Boolean)
    disabled_reason: Mapped[str | None] = mapped_column(String(32))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    """Set by the first failed attempt after a success; five days of it disables the endpoint."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Delivery(Base):
    """One message (an event for an endpoint) and where it stands.

    A claimed delivery gets `next_attempt_at` pushed out by a lease: if the
    worker dies mid-send, the row falls due again when the lease runs out, so
    nothing is lost (at-least-once). `claimed_at` is set by the claim and
    cleared when the attempt is written down, in the statements that already
    write the row: a claim that finds it still set is taking over from a
    worker that died mid-send, and records that lost send as an attempt whose
    outcome is unknown. `enrichment` is computed at the first attempt and
    kept, so every retry sends the same body.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        tenant_fk("endpoint_id", "webhook_endpoints", ondelete="CASCADE"),
        tenant_fk("event_id", "events"),
        Index(
            "ix_deliveries_due", "next_attempt_at", postgresql_where=PENDING, sqlite_where=PENDING
        ),
        Index("ix_deliveries_endpoint", "tenant_id", "endpoint_id", "event_id"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    endpoint_id: Mapped[uuid.UUID]
    event_id: Mapped[uuid.UUID]
    origin: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    enrichment: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    created_at: Mapped[datetime]


class DeliveryAttempt(Base):
    """One HTTP attempt: what came back, how long it took, or why it never got there."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (
        tenant_fk("endpoint_id", "webhook_endpoints", ondelete="CASCADE"),
        Index("ix_delivery_attempts_endpoint", "tenant_id", "endpoint_id", "id"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    endpoint_id: Mapped[uuid.UUID]
    delivery_id: Mapped[uuid.UUID]
    event_id: Mapped[uuid.UUID]
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    """None when the outcome is unknown: the worker that sent it died before it could say."""
    response_body: Mapped[str | None] = mapped_column(Text)
    error_class: Mapped[str | None] = mapped_column(String(64))


class OutboundEmail(Base):
    """The send queue: an email is a row committed with what caused it, sent by a worker.

    An email cannot be taken back, so it is queued only once the change that
    warrants it commits, and sent at least once after that.
    """

    __tablename__ = "outbound_emails"
    __table_args__ = (
        tenant_owned(),
        Index(
            "ix_outbound_emails_due",
            "next_attempt_at",
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        ),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
