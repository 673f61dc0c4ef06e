"""Operators (people who sign in to the console), their sessions, failed sign-ins and actions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from coursegate.models.base import (
    TENANT_SLUG_LENGTH,
    Base,
    JsonDocument,
    tenant_column,
    tenant_fk,
    tenant_owned,
)

EMAIL_LENGTH = 320


class Operator(Base):
    """A person with a password and a role in one tenant; an email is unique per tenant."""

    __tablename__ = "operators"
    __table_args__ = (
        tenant_owned(),
        UniqueConstraint("tenant_id", "email"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(EMAIL_LENGTH))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class ConsoleSession(Base):
    """A signed-in browser. Only a SHA-256 digest of the cookie's value is stored, so the table
    hands out no session to whoever reads it; the digest finds the row without the tenant."""

    __tablename__ = "console_sessions"
    __table_args__ = (
        tenant_owned(),
        tenant_fk("operator_id", "operators", ondelete="CASCADE"),
        Index("ix_console_sessions_digest", "digest"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    operator_id: Mapped[uuid.UUID]
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class LoginFailure(Base):
    """A failed sign-in, kept to throttle guessing.

    Keyed by what was typed, organisation included, because guesses at an
    organisation that does not exist must be throttled too: so this table,
    alone, has no foreign key to `tenants`. Rows older than the window are
    deleted as new failures arrive.
    """

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_account", "organisation", "email", "failed_at"),
        Index("ix_login_failures_address", "address", "failed_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    organisation: Mapped[str] = mapped_column(String(TENANT_SLUG_LENGTH))
    email: Mapped[str] = mapped_column(String(EMAIL_LENGTH))
    address: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime]


class OperatorAction(Base):
    """What an operator did: the Activity page. The email is copied so the record outlives
    a renamed or removed operator."""

    __tablename__ = "operator_actions"
    __table_args__ = (tenant_owned(),)

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    operator_id: Mapped[uuid.UUID | None]
    operator_email: Mapped[str] = mapped_column(String(EMAIL_LENGTH))
    verb: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, object] | None] = mapped_column(JsonDocument)
    acted_at: Mapped[datetime]
