"""Enrollments, their dedup locks and their scheduled lifecycle events (SPEC §3)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from coursegate.models.base import Base, tenant_column, tenant_fk

LIVE_STATUSES = ("provisioning", "assigned", "claimed", "active")
"""`provisioning` is an enrollment whose saga has not finished: it holds its place
(no second live enrollment of the person in the course) but nobody sees it."""

_LIVE = text("status IN ('provisioning', 'assigned', 'claimed', 'active')")


class Enrollment(Base):
    """A person in a course; `assigned → claimed → active → completed → archived`,
    or `dropped`, `canceled`, `expired`."""

    __tablename__ = "enrollments"
    __table_args__ = (
        tenant_fk("course_id", "courses"),
        tenant_fk("person_id", "people"),
        tenant_fk("seat_id", "seats"),
        # At most one live enrollment of a person in a course, whoever races.
        Index(
            "ux_enrollments_live",
            "tenant_id",
            "course_id",
            "person_id",
            unique=True,
            postgresql_where=_LIVE,
            sqlite_where=_LIVE,
        ),
        Index("ix_enrollments_course", "tenant_id", "course_id", "id"),
        Index("ix_enrollments_person", "tenant_id", "person_id", "id"),
        Index("ix_enrollments_batch", "batch_id"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    course_id: Mapped[str] = mapped_column(String(63))
    person_id: Mapped[uuid.UUID]
    seat_id: Mapped[uuid.UUID | None]
    """Null for an enrollment a roster created: a roster is not a seat purchase."""
    batch_id: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    dedup_window_days: Mapped[int | None] = mapped_column(Integer)
    cancelable_until: Mapped[datetime | None]
    access_ends_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    activated_at: Mapped[datetime | None]
    first_access_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    completion_id: Mapped[uuid.UUID | None]
    certificate_expires_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    canceled_by: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class EnrollmentLock(Base):
    """The dedup window of seed 002: while it lasts, the person cannot be enrolled in
    the course again, even after the enrollment ended. The key makes two racing
    assignments collide."""

    __tablename__ = "enrollment_locks"
    __table_args__ = (
        tenant_fk("course_id", "courses"),
        tenant_fk("person_id", "people"),
    )

    tenant_id: Mapped[str] = tenant_column()
    course_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    enrollment_id: Mapped[uuid.UUID]
    expires_at: Mapped[datetime]


class ScheduledEvent(Base):
    """A lifecycle event of an enrollment, due at `due_at`; fired once, then deleted.

    The sweeper reads only the index on `due_at` up to now, so pending rows far
    in the future cost nothing until they are due. The key allows one row of a
    kind per enrollment, which is what moving a row (`no_activity_7_days`) and
    canceling one rely on.
    """

    __tablename__ = "scheduled_events"
    __table_args__ = (Index("ix_scheduled_events_due", "due_at"),)

    tenant_id: Mapped[str] = tenant_column()
    enrollment_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    due_at: Mapped[datetime]
