"""Courses, their provider course ids, and the seats bought for them (SPEC §1, §3)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from coursegate.models.base import Base, tenant_column, tenant_fk, tenant_owned


class Course(Base):
    """A course of a tenant; `status` goes `draft → active → expired`."""

    __tablename__ = "courses"
    __table_args__ = (tenant_owned(), tenant_fk("program_id", "programs"))

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    program_id: Mapped[str | None] = mapped_column(String(63))
    start_date: Mapped[date]
    last_drop_date: Mapped[date]
    end_date: Mapped[date]
    access_period_days: Mapped[int] = mapped_column(Integer)
    certificate_validity_days: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CourseExternalId(Base):
    """A provider's id for a course.

    The key is the provider's course id, so one provider course names at most
    one course of the tenant: a completion finds its course by it. The unique
    index keeps one id per provider and course (the API's
    `{provider_id: external id}` mapping) and serves the lookup by course.
    The key `oneroster` is not a provider but a roster's class `sourcedId` (SPEC §4),
    so `provider_id` is checked by the service rather than by a foreign key.
    """

    __tablename__ = "course_external_ids"
    __table_args__ = (
        tenant_fk("course_id", "courses", ondelete="CASCADE"),
        Index(
            "ix_course_external_ids_course",
            "tenant_id",
            "course_id",
            "provider_id",
            unique=True,
        ),
    )

    tenant_id: Mapped[str] = tenant_column()
    provider_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    course_id: Mapped[str] = mapped_column(String(63))


class SeatOrder(Base):
    """One purchase of seats for one course; `order_ref` is unique per tenant, which is
    what makes a resent order idempotent."""

    __tablename__ = "seat_orders"
    __table_args__ = (tenant_fk("course_id", "courses"),)

    tenant_id: Mapped[str] = tenant_column()
    order_ref: Mapped[str] = mapped_column(String(128), primary_key=True)
    course_id: Mapped[str] = mapped_column(String(63))
    quantity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]


class Seat(Base):
    """One seat of a course: `available`, `reserved`, `assigned`, `spent` or `rolled_back`."""

    __tablename__ = "seats"
    __table_args__ = (
        tenant_fk("course_id", "courses"),
        tenant_fk("order_ref", "seat_orders", remote=("order_ref",)),
        Index("ix_seats_course_status", "tenant_id", "course_id", "status"),
        Index("ix_seats_batch", "batch_id"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    course_id: Mapped[str] = mapped_column(String(63))
    order_ref: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    previously_dropped: Mapped[bool]
    batch_id: Mapped[uuid.UUID | None]
    """The provisioning saga that reserved or assigned the seat."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
