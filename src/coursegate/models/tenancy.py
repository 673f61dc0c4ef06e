"""Tenants and their API keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from coursegate.models.base import TENANT_SLUG_LENGTH, Base, tenant_column, tenant_owned


class Tenant(Base):
    __tablename__ = "tenants"

    # The slug is the tenant's id and the `tenant_id` of every other table.
    id: Mapped[str] = mapped_column(String(TENANT_SLUG_LENGTH), primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    contact_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ApiKey(Base):
    """An admin API key: only a SHA-256 digest of it is stored.

    Keys are 256-bit random strings, so a fast digest cannot be brute-forced and
    a slow password hash would only slow down every request. The public prefix
    finds the row without a scan.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        tenant_owned(),
        Index("ix_api_keys_prefix", "prefix"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
