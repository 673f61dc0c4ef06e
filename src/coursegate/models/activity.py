"""Counts per quarter hour of what the Overview charts, kept ahead of time (SPEC §9)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from coursegate.models.base import Base, tenant_column, tenant_owned


class ActivityCount(Base):
    """How many of a metric (`completions`, `credits`, `deliveries_succeeded`,
    `deliveries_failed`) fell in one UTC quarter hour. Quarter hours, not days: every
    timezone's midnight falls on one, so any tenant's days are sums of whole buckets, and a
    change of the tenant's timezone needs no recount."""

    __tablename__ = "activity_counts"
    __table_args__ = (tenant_owned(),)

    tenant_id: Mapped[str] = tenant_column()
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket_at: Mapped[datetime] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class ActivityMark(Base):
    """The greatest id of a source table (`completions`, `credits`, `delivery_attempts`)
    already counted for a tenant; rows above it are counted when read."""

    __tablename__ = "activity_marks"
    __table_args__ = (tenant_owned(),)

    tenant_id: Mapped[str] = tenant_column()
    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_id: Mapped[uuid.UUID]
    updated_at: Mapped[datetime]
