"""Programs, people and their identifiers: who learns, under which rules."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from coursegate.models.base import Base, tenant_column, tenant_fk, tenant_owned


class Program(Base):
    __tablename__ = "programs"
    __table_args__ = (tenant_owned(),)

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    jurisdiction: Mapped[str] = mapped_column(String(32))
    hours_per_credit: Mapped[Decimal]
    identifier_namespace: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Person(Base):
    __tablename__ = "people"
    __table_args__ = (tenant_owned(),)

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]


class PersonIdentifier(Base):
    """`(namespace, value)` names at most one person per tenant."""

    __tablename__ = "person_identifiers"
    __table_args__ = (
        tenant_fk("person_id", "people", ondelete="CASCADE"),
        Index("ix_person_identifiers_person", "tenant_id", "person_id"),
    )

    tenant_id: Mapped[str] = tenant_column()
    namespace: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), primary_key=True)
    person_id: Mapped[uuid.UUID]
    created_at: Mapped[datetime]
