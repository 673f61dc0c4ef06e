"""Pull connectors: a tenant's configured partner feeds (SPEC §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from coursegate.models.base import Base, JsonDocument, tenant_column, tenant_owned


class Connector(Base):
    """One partner feed of a tenant: its kind, cron schedule (UTC) and kind-specific
    configuration. `config` names secrets by reference only; `watermark` is the
    greatest partner timestamp a finished run has seen (null before the first)."""

    __tablename__ = "connectors"
    __table_args__ = (tenant_owned(),)

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    schedule: Mapped[str] = mapped_column(String(64), default="0 1 * * *")
    config: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    enabled: Mapped[bool] = mapped_column(Boolean)
    watermark: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
