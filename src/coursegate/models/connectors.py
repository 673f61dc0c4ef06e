"""Pull connectors: a tenant's configured partner feeds (SPEC §4)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from coursegate.models.base import Base, JsonDocument, tenant_column, tenant_fk, tenant_owned


class Connector(Base):
    """One partner feed of a tenant: its kind, cron schedule (UTC) and kind-specific
    configuration. `config` names secrets by reference only. `watermarks` holds, per
    collection the partner serves, the greatest partner timestamp a finished run has
    seen there; `watermark` is the greatest of them (null before the first run)."""

    __tablename__ = "connectors"
    __table_args__ = (tenant_owned(),)

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    schedule: Mapped[str] = mapped_column(String(64), default="0 1 * * *")
    config: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    enabled: Mapped[bool] = mapped_column(Boolean)
    watermark: Mapped[datetime | None]
    watermarks: Mapped[dict[str, str] | None] = mapped_column(JsonDocument)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


RUNNING = text("status = 'running'")
OPEN = text("resolved_at IS NULL")
WITHDRAWN = text("withdrawn_by_run IS NOT NULL")


class ConnectorRun(Base):
    """One run of a connector, by its schedule or by hand. At most one `running` run per
    connector (a partial unique index): that is the lock that keeps runs from
    overlapping. `heartbeat_at` moves with every committed page, so a run whose
    process died can be told from a slow one and taken over."""

    __tablename__ = "connector_runs"
    __table_args__ = (
        tenant_owned(),
        Index("ix_connector_runs_connector", "tenant_id", "connector_id", "id"),
        Index(
            "uq_connector_runs_running",
            "tenant_id",
            "connector_id",
            unique=True,
            postgresql_where=RUNNING,
            sqlite_where=RUNNING,
        ),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    connector_id: Mapped[str] = mapped_column(String(63))
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime | None]
    dry_run: Mapped[bool] = mapped_column(Boolean)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    pages: Mapped[int] = mapped_column(Integer)
    created: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    warnings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Entries taken with something left out (a student kept without an unusable email)."""
    watermark: Mapped[datetime | None]
    error_class: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(String(512))


class ConnectorReject(Base):
    """An entry a run could not take, kept whole with its reason until a replay takes it.

    Kept once per record and version: `digest` is the SHA-256 of the collection and the
    entry as received, so a provider that sends the same unchanged entry on every run
    (one that ignores `filter`, say) brings the one reject up to date instead of piling
    up new ones."""

    __tablename__ = "connector_rejects"
    __table_args__ = (
        tenant_owned(),
        Index("ix_connector_rejects_connector", "tenant_id", "connector_id", "id"),
        Index("uq_connector_rejects_digest", "tenant_id", "connector_id", "digest", unique=True),
        Index(
            "ix_connector_rejects_open",
            "tenant_id",
            "connector_id",
            "id",
            postgresql_where=OPEN,
            sqlite_where=OPEN,
        ),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    connector_id: Mapped[str] = mapped_column(String(63))
    run_id: Mapped[uuid.UUID]
    collection: Mapped[str | None] = mapped_column(String(32))
    """Which of the partner's collections the entry came from (null: the kind's only one)."""
    external_id: Mapped[str | None] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(String(256))
    raw: Mapped[Any] = mapped_column(JsonDocument)
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    replayed_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]


class Authorization(Base):
    """A validated authorization request pulled from a DataPass partner: one per
    `public_id` and connector, however often the partner lists it."""

    __tablename__ = "authorizations"
    __table_args__ = (
        tenant_owned(),
        Index(
            "uq_authorizations_external", "tenant_id", "connector_id", "external_id", unique=True
        ),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    connector_id: Mapped[str] = mapped_column(String(63))
    external_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(128))
    validated_at: Mapped[datetime | None]
    organisation: Mapped[Any] = mapped_column(JsonDocument)
    data: Mapped[Any] = mapped_column(JsonDocument)
    created_at: Mapped[datetime]


class RosterEnrollment(Base):
    """The enrollment a OneRoster enrollment record created: one per record `sourcedId`
    and connector, so a re-run creates nothing twice and `tobedeleted` (of the record
    or of its class) finds what to cancel."""

    __tablename__ = "roster_enrollments"
    __table_args__ = (
        tenant_owned(),
        tenant_fk("enrollment_id", "enrollments"),
        Index("ix_roster_enrollments_class", "tenant_id", "connector_id", "class_sourced_id"),
        Index(
            "ix_roster_enrollments_withdrawn",
            "tenant_id",
            "withdrawn_by_run",
            postgresql_where=WITHDRAWN,
            sqlite_where=WITHDRAWN,
        ),
    )

    tenant_id: Mapped[str] = tenant_column()
    connector_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    sourced_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    class_sourced_id: Mapped[str] = mapped_column(String(128))
    enrollment_id: Mapped[uuid.UUID]
    created_at: Mapped[datetime]
    withdrawn_by_run: Mapped[uuid.UUID | None]
    """The run that found this record (or its class) withdrawn and has not yet canceled
    its enrollment: it does at its end, or, held for cancelling too many, when an
    operator confirms."""
