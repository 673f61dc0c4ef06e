"""All SQL about enrollments, their seats, dedup locks and scheduled lifecycle events."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, and_, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.completions.repository import PersonRef
from coursegate.kit.sql import dialect_insert, dialect_of
from coursegate.models import (
    Course,
    CourseExternalId,
    Enrollment,
    EnrollmentLock,
    Person,
    PersonIdentifier,
    ScheduledEvent,
    Seat,
    Tenant,
)
from coursegate.models.base import table_of
from coursegate.models.enrollments import LIVE_STATUSES

PROVISIONING = "provisioning"
ROWS_PER_INSERT = 1000
"""Both databases cap a statement's parameters; an enrollment row has 23 columns."""

_ENROLLMENTS = table_of(Enrollment)
_SCHEDULED = table_of(ScheduledEvent)
_BY_KEY = and_(
    _ENROLLMENTS.c.tenant_id == bindparam("k_tenant"),
    _ENROLLMENTS.c.id == bindparam("k_id"),
)


@dataclass(frozen=True, slots=True)
class Learner:
    """What an event or an email says about a person."""

    ref: PersonRef
    name: str | None
    email: str | None


@dataclass(frozen=True, slots=True)
class DueEvent:
    tenant_id: str
    enrollment_id: uuid.UUID
    kind: str
    due_at: datetime


def _person_ref(person_id: uuid.UUID, pairs: Sequence[Sequence[str]] | None) -> PersonRef:
    """Identifiers sorted as `learners` sorts them: the aggregate has no order."""
    return PersonRef(person_id, tuple(sorted((ns, value) for ns, value in pairs or ())))


@dataclass(frozen=True, slots=True)
class DueEnrollment:
    """An enrollment as the sweeper needs it, with its course's name, its person's email
    and identifiers (as events name a person): read in one query, never flushed back."""

    tenant_id: str
    id: uuid.UUID
    course_id: str
    person_id: uuid.UUID
    status: str
    reason: str | None
    first_access_at: datetime | None
    course_name: str
    email: str | None
    person: PersonRef


class EnrollmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def flush(self) -> None:
        await self.session.flush()

    # --- seats ----------------------------------------------------------------

    async def lock_course(self, tenant_id: str, course_id: str) -> Course | None:
        """The course, locked: seat reservations for one course queue behind each other,
        so a batch never hears "no seats" while seats are free (SQLite's writer lock
        does the same)."""
        stmt = (
            select(Course)
            .where(Course.tenant_id == tenant_id, Course.id == course_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def seats_of_batch(self, batch_id: uuid.UUID) -> list[uuid.UUID]:
        stmt = select(Seat.id).where(Seat.batch_id == batch_id).order_by(Seat.id)
        return list((await self.session.scalars(stmt)).all())

    async def reserve_seats(
        self, tenant_id: str, course_id: str, batch_id: uuid.UUID, count: int, now: datetime
    ) -> list[uuid.UUID]:
        """Up to `count` available seats, oldest first, now reserved by the batch."""
        free = (
            select(Seat.id)
            .where(
                Seat.tenant_id == tenant_id,
                Seat.course_id == course_id,
                Seat.status == "available",
            )
            .order_by(Seat.id)
            .limit(count)
        )
        ids = list((await self.session.scalars(free)).all())
        if len(ids) == count:
            await self.session.execute(
                update(Seat)
                .where(Seat.tenant_id == tenant_id, Seat.id.in_(ids))
                .values(status="reserved", batch_id=batch_id, updated_at=now)
            )
        return ids

    async def release_seats(self, batch_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(Seat)
            .where(Seat.batch_id == batch_id, Seat.status == "reserved")
            .values(status="available", batch_id=None, updated_at=now)
        )

    async def set_seat(
        self, tenant_id: str, seat_id: uuid.UUID, now: datetime, **values: Any
    ) -> None:
        await self.session.execute(
            update(Seat)
            .where(Seat.tenant_id == tenant_id, Seat.id == seat_id)
            .values(updated_at=now, **values)
        )

    async def get_seat(self, tenant_id: str, seat_id: uuid.UUID) -> Seat | None:
        return await self.session.get(Seat, (tenant_id, seat_id), populate_existing=True)

    async def add_seat(self, values: Mapping[str, Any]) -> None:
        await self.session.execute(insert(Seat).values(**values))

    # --- enrollments ----------------------------------------------------------

    async def blocked(
        self, tenant_id: str, course_id: str, person_ids: Sequence[uuid.UUID], now: datetime
    ) -> set[uuid.UUID]:
        """People with a live enrollment in the course or an unexpired dedup lock."""
        live = select(Enrollment.person_id).where(
            Enrollment.tenant_id == tenant_id,
            Enrollment.course_id == course_id,
            Enrollment.person_id.in_(person_ids),
            Enrollment.status.in_(LIVE_STATUSES),
        )
        locked = select(EnrollmentLock.person_id).where(
            EnrollmentLock.tenant_id == tenant_id,
            EnrollmentLock.course_id == course_id,
            EnrollmentLock.person_id.in_(person_ids),
            EnrollmentLock.expires_at > now,
        )
        rows = await self.session.scalars(live.union(locked))
        return set(rows.all())

    async def insert_enrollments(
        self,
        tenant_id: str,
        course_id: str,
        rows: Sequence[Mapping[str, Any]],
        locks: Sequence[Mapping[str, Any]],
        now: datetime,
    ) -> bool:
        """Insert a batch's enrollments and dedup locks; False, and nothing inserted, when
        a racing assignment took one of the people first (the unique keys say so). Lapsed
        locks of these people are cleared first."""
        person_ids = [row["person_id"] for row in rows]
        try:
            async with self.session.begin_nested():
                await self.session.execute(
                    delete(EnrollmentLock).where(
                        EnrollmentLock.tenant_id == tenant_id,
                        EnrollmentLock.course_id == course_id,
                        EnrollmentLock.person_id.in_(person_ids),
                        EnrollmentLock.expires_at <= now,
                    )
                )
                for start in range(0, len(rows), ROWS_PER_INSERT):
                    await self.session.execute(
                        insert(Enrollment).values(rows[start : start + ROWS_PER_INSERT])
                    )
                if locks:
                    await self.session.execute(insert(EnrollmentLock).values(list(locks)))
        except IntegrityError:
            return False
        return True

    async def of_batch(self, batch_id: uuid.UUID) -> list[Enrollment]:
        stmt = select(Enrollment).where(Enrollment.batch_id == batch_id).order_by(Enrollment.id)
        return list((await self.session.scalars(stmt)).all())

    async def remove_provisioning(self, batch_id: uuid.UUID) -> None:
        """Undo a batch's enrollments that never became visible, and their dedup locks."""
        pending = select(Enrollment.id).where(
            Enrollment.batch_id == batch_id, Enrollment.status == PROVISIONING
        )
        await self.session.execute(
            delete(EnrollmentLock).where(EnrollmentLock.enrollment_id.in_(pending))
        )
        await self.session.execute(
            delete(Enrollment).where(
                Enrollment.batch_id == batch_id, Enrollment.status == PROVISIONING
            )
        )

    async def confirm_batch(self, batch_id: uuid.UUID, now: datetime) -> int:
        """The batch's enrollments and seats become `assigned`; how many enrollments did."""
        done = await self.session.execute(
            update(Enrollment)
            .where(Enrollment.batch_id == batch_id, Enrollment.status == PROVISIONING)
            .values(status="assigned", updated_at=now)
        )
        await self.session.execute(
            update(Seat)
            .where(Seat.batch_id == batch_id, Seat.status == "reserved")
            .values(status="assigned", updated_at=now)
        )
        return int(getattr(done, "rowcount", 0) or 0)

    async def get(
        self, tenant_id: str, enrollment_id: uuid.UUID, *, for_update: bool = False
    ) -> Enrollment | None:
        stmt = select(Enrollment).where(
            Enrollment.tenant_id == tenant_id,
            Enrollment.id == enrollment_id,
            Enrollment.status != PROVISIONING,
        )
        if for_update:
            stmt = stmt.with_for_update()
        stmt = stmt.execution_options(populate_existing=True)
        return (await self.session.scalars(stmt)).one_or_none()

    async def due_enrollments(self, keys: Iterable[tuple[str, uuid.UUID]]) -> list[DueEnrollment]:
        """The enrollments of these keys, locked, with course name and email, in one query.

        Two plain `IN` lists rather than a list of pairs: PostgreSQL plans them as one
        index scan of the primary key (measured three times faster for a sweep batch);
        the pairs are checked here. The name, the email and the identifiers (as one
        JSON array) are scalar subqueries, index probes per row: as joins, PostgreSQL
        hashed the whole people table for each batch, a cost growing with the tenant
        rather than the batch."""
        wanted = set(keys)
        if not wanted:
            return []
        e = _ENROLLMENTS
        course_name = (
            select(Course.name)
            .where(Course.tenant_id == e.c.tenant_id, Course.id == e.c.course_id)
            .scalar_subquery()
        )
        email = (
            select(Person.email)
            .where(Person.tenant_id == e.c.tenant_id, Person.id == e.c.person_id)
            .scalar_subquery()
        )
        i = PersonIdentifier
        pair = (
            func.json_build_array(i.namespace, i.value)
            if dialect_of(self.session) == "postgresql"
            else func.json_array(i.namespace, i.value)
        )
        aggregate = (
            func.json_agg(pair, type_=JSON)
            if dialect_of(self.session) == "postgresql"
            else func.json_group_array(pair, type_=JSON)
        )
        identifiers = (
            select(aggregate)
            .where(i.tenant_id == e.c.tenant_id, i.person_id == e.c.person_id)
            .scalar_subquery()
        )
        stmt = (
            select(
                e.c.tenant_id,
                e.c.id,
                e.c.course_id,
                e.c.person_id,
                e.c.status,
                e.c.reason,
                e.c.first_access_at,
                course_name,
                email,
                identifiers,
            )
            .where(
                e.c.tenant_id.in_({tenant for tenant, _ in wanted}),
                e.c.id.in_([enrollment_id for _, enrollment_id in wanted]),
            )
            .with_for_update(of=e)
        )
        rows = (await self.session.execute(stmt)).all()
        return [
            DueEnrollment(
                tenant_id=tenant_id,
                id=enrollment_id,
                course_id=course_id,
                person_id=person_id,
                status=status,
                reason=reason,
                first_access_at=first_access_at,
                course_name=name,
                email=address,
                person=_person_ref(person_id, pairs),
            )
            for (
                tenant_id,
                enrollment_id,
                course_id,
                person_id,
                status,
                reason,
                first_access_at,
                name,
                address,
                pairs,
            ) in rows
            if (tenant_id, enrollment_id) in wanted
        ]

    async def set_many(
        self, tenant_id: str, enrollment_ids: Sequence[uuid.UUID], values: Mapping[str, Any]
    ) -> None:
        """The same change to many enrollments of a tenant, in one statement."""
        if enrollment_ids:
            await self.session.execute(
                update(_ENROLLMENTS)
                .where(_ENROLLMENTS.c.tenant_id == tenant_id, _ENROLLMENTS.c.id.in_(enrollment_ids))
                .values(dict(values))
            )

    async def listing(
        self,
        tenant_id: str,
        *,
        after: uuid.UUID | None,
        limit: int,
        course_id: str | None = None,
        person_id: uuid.UUID | None = None,
        status: str | None = None,
    ) -> Sequence[Enrollment]:
        stmt = select(Enrollment).where(
            Enrollment.tenant_id == tenant_id, Enrollment.status != PROVISIONING
        )
        if course_id is not None:
            stmt = stmt.where(Enrollment.course_id == course_id)
        if person_id is not None:
            stmt = stmt.where(Enrollment.person_id == person_id)
        if status is not None:
            stmt = stmt.where(Enrollment.status == status)
        if after is not None:
            stmt = stmt.where(Enrollment.id > after)
        return (await self.session.scalars(stmt.order_by(Enrollment.id).limit(limit))).all()

    async def status_counts(self, tenant_id: str, course_id: str) -> dict[str, int]:
        """How many of a course's enrollments are in each status (provisioning ones aside)."""
        stmt = (
            select(Enrollment.status, func.count())
            .where(
                Enrollment.tenant_id == tenant_id,
                Enrollment.course_id == course_id,
                Enrollment.status != PROVISIONING,
            )
            .group_by(Enrollment.status)
        )
        rows = (await self.session.execute(stmt)).all()
        return {status: int(count) for status, count in rows}

    async def claimed_of_person(self, tenant_id: str, person_id: uuid.UUID) -> list[Enrollment]:
        stmt = (
            select(Enrollment)
            .where(
                Enrollment.tenant_id == tenant_id,
                Enrollment.person_id == person_id,
                Enrollment.status == "claimed",
            )
            .order_by(Enrollment.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return list((await self.session.scalars(stmt)).all())

    async def live_of_course(self, tenant_id: str, course_id: str, limit: int) -> list[Enrollment]:
        stmt = (
            select(Enrollment)
            .where(
                Enrollment.tenant_id == tenant_id,
                Enrollment.course_id == course_id,
                Enrollment.status.in_(LIVE_STATUSES[1:]),
            )
            .order_by(Enrollment.id)
            .limit(limit)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return list((await self.session.scalars(stmt)).all())

    async def live_for_completion(
        self, tenant_id: str, person_id: uuid.UUID, provider_id: str, external_course_id: str
    ) -> Enrollment | None:
        """The person's live enrollment in the course a provider's course id names."""
        stmt = (
            select(Enrollment)
            .join(
                CourseExternalId,
                and_(
                    CourseExternalId.tenant_id == Enrollment.tenant_id,
                    CourseExternalId.course_id == Enrollment.course_id,
                ),
            )
            .where(
                Enrollment.tenant_id == tenant_id,
                Enrollment.person_id == person_id,
                Enrollment.status.in_(LIVE_STATUSES[1:]),
                CourseExternalId.provider_id == provider_id,
                CourseExternalId.external_id == external_course_id,
            )
            .with_for_update(of=Enrollment)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def update_many(self, changes: Sequence[Mapping[str, Any]]) -> None:
        """One UPDATE per row by key (`k_tenant`, `k_id`), sent as one executemany; the
        SET columns are the other keys, the same for every row."""
        if not changes:
            return
        columns = [k for k in changes[0] if not k.startswith("k_")]
        stmt = (
            update(_ENROLLMENTS)
            .where(_BY_KEY)
            .values({c: bindparam(c) for c in columns})
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt, list(changes))

    async def delete_lock(self, enrollment: Enrollment) -> None:
        await self.session.execute(
            delete(EnrollmentLock).where(
                EnrollmentLock.tenant_id == enrollment.tenant_id,
                EnrollmentLock.enrollment_id == enrollment.id,
            )
        )

    # --- courses --------------------------------------------------------------

    async def active_courses_ending(self, utc_today: date) -> list[tuple[str, str, str, date]]:
        """Active courses whose end date has come somewhere on Earth: `(tenant, course,
        tenant timezone, end date)`; the caller checks the tenant's own today."""
        rows = await self.session.execute(
            select(Course.tenant_id, Course.id, Tenant.timezone, Course.end_date)
            .join(Tenant, Tenant.id == Course.tenant_id)
            .where(Course.status == "active", Course.end_date <= utc_today + timedelta(days=1))
            .order_by(Course.tenant_id, Course.id)
        )
        return [(t, c, tz, end) for t, c, tz, end in rows.all()]

    async def certificate_validity(self, tenant_id: str, course_id: str) -> int | None:
        stmt = select(Course.certificate_validity_days).where(
            Course.tenant_id == tenant_id, Course.id == course_id
        )
        validity: int | None = await self.session.scalar(stmt)
        return validity

    async def expire_course(self, tenant_id: str, course_id: str, now: datetime) -> None:
        await self.session.execute(
            update(Course)
            .where(Course.tenant_id == tenant_id, Course.id == course_id)
            .values(status="expired", updated_at=now)
        )

    # --- people ---------------------------------------------------------------

    async def learners(
        self, tenant_id: str, person_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, Learner]:
        """Each person with all their identifiers, in two queries."""
        ids = list(set(person_ids))
        if not ids:
            return {}
        people = (
            await self.session.execute(
                select(Person.id, Person.name, Person.email).where(
                    Person.tenant_id == tenant_id, Person.id.in_(ids)
                )
            )
        ).all()
        identifiers: dict[uuid.UUID, list[tuple[str, str]]] = {i: [] for i in ids}
        rows = await self.session.execute(
            select(PersonIdentifier.person_id, PersonIdentifier.namespace, PersonIdentifier.value)
            .where(PersonIdentifier.tenant_id == tenant_id, PersonIdentifier.person_id.in_(ids))
            .order_by(PersonIdentifier.namespace, PersonIdentifier.value)
        )
        for person_id, namespace, value in rows.all():
            identifiers[person_id].append((namespace, value))
        return {
            pid: Learner(PersonRef(pid, tuple(identifiers[pid])), name, email)
            for pid, name, email in people
        }

    # --- scheduled lifecycle events -------------------------------------------

    async def schedule(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Create or move scheduled events (one per kind and enrollment)."""
        if not rows:
            return
        stmt = dialect_insert(dialect_of(self.session), _SCHEDULED)
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "enrollment_id", "kind"],
            set_={"due_at": stmt.excluded.due_at},
        )
        for start in range(0, len(rows), ROWS_PER_INSERT):
            await self.session.execute(stmt, list(rows[start : start + ROWS_PER_INSERT]))

    async def unschedule(
        self,
        tenant_id: str,
        enrollment_ids: Sequence[uuid.UUID],
        kinds: Sequence[str] | None = None,
    ) -> None:
        if not enrollment_ids:
            return
        stmt = delete(ScheduledEvent).where(
            ScheduledEvent.tenant_id == tenant_id,
            ScheduledEvent.enrollment_id.in_(enrollment_ids),
        )
        if kinds is not None:
            stmt = stmt.where(ScheduledEvent.kind.in_(kinds))
        await self.session.execute(stmt)

    async def scheduled_of(self, tenant_id: str, enrollment_id: uuid.UUID) -> dict[str, datetime]:
        rows = await self.session.execute(
            select(ScheduledEvent.kind, ScheduledEvent.due_at).where(
                ScheduledEvent.tenant_id == tenant_id,
                ScheduledEvent.enrollment_id == enrollment_id,
            )
        )
        return {str(kind): due for kind, due in rows.all()}

    async def take_due(self, now: datetime, limit: int) -> list[DueEvent]:
        """Delete and return up to `limit` due rows, earliest first.

        Taking is deleting, in the transaction that applies them: a row fires
        once, and if the transaction fails it is back. On PostgreSQL, `SKIP
        LOCKED` lets several sweepers share the table; SQLite has one writer.
        """
        due = (
            select(_SCHEDULED.c.tenant_id, _SCHEDULED.c.enrollment_id, _SCHEDULED.c.kind)
            .where(_SCHEDULED.c.due_at <= now)
            .order_by(_SCHEDULED.c.due_at)
            .limit(limit)
        )
        if dialect_of(self.session) == "postgresql":
            due = due.with_for_update(skip_locked=True)
        key = tuple_(_SCHEDULED.c.tenant_id, _SCHEDULED.c.enrollment_id, _SCHEDULED.c.kind)
        stmt = (
            delete(_SCHEDULED)
            .where(key.in_(due))
            .returning(
                _SCHEDULED.c.tenant_id,
                _SCHEDULED.c.enrollment_id,
                _SCHEDULED.c.kind,
                _SCHEDULED.c.due_at,
            )
        )
        rows = (await self.session.execute(stmt)).all()
        return sorted((DueEvent(*row) for row in rows), key=lambda d: d.due_at)


def lock_row(
    tenant_id: str, course_id: str, person_id: uuid.UUID, enrollment_id: uuid.UUID, until: datetime
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "course_id": course_id,
        "person_id": person_id,
        "enrollment_id": enrollment_id,
        "expires_at": until,
    }
