"""Firing due lifecycle events, and the daily course expiry (SPEC §3).

`Sweeper.sweep_batch` takes up to a batch of due rows in one transaction:
it deletes them (taking is deleting, so each fires once, and a failed
transaction puts them back), loads their enrollments with their people in one
query, applies every row, and writes the status changes, events and
emails in a handful of statements. Emails are only queued; the send queue
sends them. Access and budgets of expired enrollments are released before
the commit (idempotent calls, see `EnrollmentService`).

A DBOS schedule runs the sweep each minute and the course expiry each
hour: a course's `end_date` is a date in its tenant's timezone, so an
hourly look expires each course within the hour after its midnight.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import structlog
from dbos import DBOS
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate import durable
from coursegate.db import Database
from coursegate.enrollments import lifecycle
from coursegate.enrollments.adapters import Adapters
from coursegate.enrollments.events import enrollment_event, reminder_event
from coursegate.enrollments.repository import DueEnrollment, DueEvent, EnrollmentRepository
from coursegate.enrollments.service import VISIBLE_LIVE, release_access, today_in
from coursegate.events.outbox import NewEvent, record_events
from coursegate.kit.clock import Clock
from coursegate.mail.queue import queue_emails
from coursegate.mail.repository import QueuedEmail

log = structlog.get_logger(__name__)

SWEEP_BATCH = 500
EXPIRY_BATCH = 500

_ENDINGS = {
    lifecycle.COURSE_EXPIRED: ("expired", "access_period_ended"),
    lifecycle.COURSE_ARCHIVED: ("archived", None),
}
"""The lifecycle rows that end an enrollment: its new status and reason."""

_SUBJECTS = {
    lifecycle.REMINDER_NO_ACCESS: "You have not started {course} yet",
    lifecycle.NO_ACTIVITY: "We miss you in {course}",
    lifecycle.ACCESS_PERIOD_REMINDER: "Your access to {course} ends in 30 days",
    lifecycle.CERT_EXPIRATION_REMINDER: "Your {course} certificate expires in 30 days",
}


class Sweeper:
    def __init__(self, database: Database, clock: Clock, adapters: Adapters) -> None:
        self.database = database
        self.clock = clock
        self.adapters = adapters

    async def sweep(self, batch: int = SWEEP_BATCH) -> int:
        """Every row due now, batch after batch; how many fired."""
        fired = 0
        while True:
            taken = await self.sweep_batch(batch)
            fired += taken
            if taken < batch:
                return fired

    async def sweep_batch(self, batch: int = SWEEP_BATCH) -> int:
        now = self.clock.now()
        async with self.database.transaction() as session:
            repo = EnrollmentRepository(session)
            due = await repo.take_due(now, batch)
            if due:
                await self._apply(session, repo, due, now)
        return len(due)

    async def _apply(
        self,
        session: AsyncSession,
        repo: EnrollmentRepository,
        due: Sequence[DueEvent],
        now: datetime,
    ) -> None:
        enrollments = {
            (e.tenant_id, e.id): e
            for e in await repo.due_enrollments({(d.tenant_id, d.enrollment_id) for d in due})
        }

        events: dict[str, list[NewEvent]] = defaultdict(list)
        emails: list[QueuedEmail] = []
        ended: dict[tuple[str, str], list[DueEnrollment]] = defaultdict(list)
        for d in due:
            key = (d.tenant_id, d.enrollment_id)
            enrollment = enrollments.get(key)
            if enrollment is None or not _applies(d.kind, enrollment):
                continue
            person = enrollment.person
            if d.kind in lifecycle.REMINDERS:
                events[d.tenant_id].append(reminder_event(enrollment, person, d.kind))
                if enrollment.email:
                    emails.append(_reminder_email(enrollment, d.kind))
                continue
            status, reason = _ENDINGS[d.kind]
            # A later row of the same enrollment in this batch sees the new status.
            enrollments[key] = enrollment = replace(enrollment, status=status, reason=reason)
            ended[(d.tenant_id, d.kind)].append(enrollment)
            events[d.tenant_id].append(enrollment_event(enrollment, person))

        expired = [
            e for (_, kind), es in ended.items() if kind == lifecycle.COURSE_EXPIRED for e in es
        ]
        if expired:
            await release_access(self.adapters, expired)
        for (tenant_id, kind), members in ended.items():
            ids = [e.id for e in members]
            status, reason = _ENDINGS[kind]
            values: dict[str, Any] = {"status": status, "reason": reason, "updated_at": now}
            if kind == lifecycle.COURSE_EXPIRED:
                values["ended_at"] = now
                await repo.unschedule(tenant_id, ids, lifecycle.WHILE_LIVE)
            await repo.set_many(tenant_id, ids, values)
        for tenant_id, tenant_events in events.items():
            await record_events(session, tenant_id, tenant_events, now)
        await queue_emails(session, emails, at=now)

    async def expire_courses(self) -> int:
        """Courses whose end date has come in their tenant's timezone become `expired`;
        their live enrollments expire (reason `course_ended`) with access and budgets
        released, a batch per transaction. How many enrollments expired."""
        now = self.clock.now()
        async with self.database.transaction() as session:
            candidates = await EnrollmentRepository(session).active_courses_ending(now.date())
        expired = 0
        for tenant_id, course_id, timezone, end_date in candidates:
            if today_in(timezone, now) < end_date:
                continue
            while True:
                async with self.database.transaction() as session:
                    count = await self._expire_some(session, tenant_id, course_id, now)
                expired += count
                if count < EXPIRY_BATCH:
                    break
            log.info("course_expired", tenant=tenant_id, course=course_id)
        return expired

    async def _expire_some(
        self, session: AsyncSession, tenant_id: str, course_id: str, now: datetime
    ) -> int:
        """One batch of a course's live enrollments; the course itself once none is left."""
        repo = EnrollmentRepository(session)
        live = await repo.live_of_course(tenant_id, course_id, EXPIRY_BATCH)
        if live:
            await release_access(self.adapters, live)
            for enrollment in live:
                enrollment.status, enrollment.reason = "expired", "course_ended"
                enrollment.ended_at = enrollment.updated_at = now
            await repo.unschedule(tenant_id, [e.id for e in live], lifecycle.WHILE_LIVE)
            await repo.flush()
            learners = await repo.learners(tenant_id, [e.person_id for e in live])
            await record_events(
                session,
                tenant_id,
                [enrollment_event(e, learners[e.person_id].ref) for e in live],
                now,
            )
        if len(live) < EXPIRY_BATCH:
            await repo.expire_course(tenant_id, course_id, now)
        return len(live)


def _applies(kind: str, enrollment: DueEnrollment) -> bool:
    """A row fires only while its condition holds; rows are also canceled when it stops
    holding, so this guards against a row that outlived its reason."""
    if kind == lifecycle.REMINDER_NO_ACCESS:
        return enrollment.status in VISIBLE_LIVE and enrollment.first_access_at is None
    if kind in (lifecycle.NO_ACTIVITY, lifecycle.ACCESS_PERIOD_REMINDER, lifecycle.COURSE_EXPIRED):
        return enrollment.status in VISIBLE_LIVE
    return enrollment.status == "completed"


def _reminder_email(enrollment: DueEnrollment, kind: str) -> QueuedEmail:
    assert enrollment.email is not None
    name = " ".join(enrollment.course_name.split())
    return QueuedEmail(
        tenant_id=enrollment.tenant_id,
        to_address=enrollment.email,
        subject=_SUBJECTS[kind].format(course=name),
        body=f"{_SUBJECTS[kind].format(course=name)}.\nYour enrollment: {enrollment.id}\n",
        kind=f"enrollment.reminder.{kind}",
    )


def _sweeper() -> Sweeper:
    rt = durable.runtime()
    return Sweeper(rt.database, rt.clock, rt.adapters)


@DBOS.step()
async def sweep_step() -> int:
    return await _sweeper().sweep_batch()


@DBOS.workflow(name="sweep_lifecycle")
async def sweep_lifecycle(scheduled_at: datetime, context: Any) -> int:
    fired = 0
    while (taken := await sweep_step()) == SWEEP_BATCH:
        fired += taken
    return fired + taken


@DBOS.step()
async def expire_courses_step() -> int:
    return await _sweeper().expire_courses()


@DBOS.workflow(name="expire_courses")
async def expire_courses(scheduled_at: datetime, context: Any) -> int:
    return await expire_courses_step()


durable.declare_schedule("sweep-lifecycle", sweep_lifecycle, "0 * * * * *")
durable.declare_schedule("expire-courses", expire_courses, "0 5 * * * *")
