"""Enrollments' transitions after assignment (SPEC §3): claim, login, activity, drop,
cancel, completion, and the endings the lifecycle applies.

Every transition writes its event in the transaction that makes it true.
Calls to the outside systems (revoke access, deplete or withdraw a budget)
are made before that transaction commits and are idempotent: if the commit
then fails, the caller's retry repeats them harmlessly, while the opposite
order could leave a dropped learner with access.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.courses.repository import CourseRepository
from coursegate.enrollments import lifecycle
from coursegate.enrollments.adapters import Adapters
from coursegate.enrollments.errors import (
    EnrollmentNotLive,
    InvalidTransition,
    NotCancelable,
)
from coursegate.enrollments.events import EnrollmentFacts, enrollment_event
from coursegate.enrollments.repository import EnrollmentRepository
from coursegate.events.outbox import record_events
from coursegate.kit.clock import Clock
from coursegate.kit.errors import NotFound
from coursegate.kit.ids import uuid7
from coursegate.models import Course, Enrollment
from coursegate.models.enrollments import LIVE_STATUSES
from coursegate.people.service import PeopleService
from coursegate.tenancy.repository import TenantRepository

USER_ID = "user_id"
NO_SEAT = "no_seat"
VISIBLE_LIVE = LIVE_STATUSES[1:]


def access_group(tenant_id: str, course_id: str) -> str:
    """The identity provider's group that gives access to a course."""
    return f"{tenant_id}:{course_id}"


def budget_account(enrollment_id: uuid.UUID) -> str:
    return str(enrollment_id)


def today_in(timezone: str, now: datetime) -> date:
    """Course dates are calendar dates in the tenant's timezone (SPEC §0)."""
    return now.astimezone(ZoneInfo(timezone)).date()


@dataclass(frozen=True, slots=True)
class Dropped:
    enrollment: Enrollment
    seat_recovered: bool
    reason: str


class EnrollmentService:
    def __init__(self, session: AsyncSession, clock: Clock, adapters: Adapters) -> None:
        self.session = session
        self.repo = EnrollmentRepository(session)
        self.clock = clock
        self.adapters = adapters

    async def get(self, tenant_id: str, enrollment_id: uuid.UUID) -> Enrollment:
        return await self._enrollment(tenant_id, enrollment_id, lock=False)

    async def claim(self, tenant_id: str, enrollment_id: uuid.UUID, user_id: str) -> Enrollment:
        """`assigned → claimed`; the login becomes an identifier of the person. Claiming
        again with the same login changes nothing, so a retried call is harmless."""
        enrollment = await self._enrollment(tenant_id, enrollment_id)
        people = PeopleService(self.session, self.clock)
        if enrollment.status == "claimed":
            if await people.find(tenant_id, USER_ID, user_id) == enrollment.person_id:
                return enrollment
            raise InvalidTransition("the enrollment was claimed with another user_id")
        if enrollment.status != "assigned":
            raise InvalidTransition(
                f"only an assigned enrollment can be claimed, not {enrollment.status}"
            )
        await people.add_identifier(tenant_id, enrollment.person_id, USER_ID, user_id)
        now = self.clock.now()
        enrollment.status = "claimed"
        enrollment.claimed_at = now
        await self._transitioned([enrollment], now)
        return enrollment

    async def start_session(self, tenant_id: str, user_id: str) -> list[Enrollment]:
        """A login: the person's claimed enrollments whose course window is open today
        become active, with access granted."""
        person_id = await PeopleService(self.session, self.clock).find(tenant_id, USER_ID, user_id)
        if person_id is None:
            raise NotFound("no person has this user_id")
        now = self.clock.now()
        today = today_in(await self._timezone(tenant_id), now)
        activated: list[Enrollment] = []
        for enrollment in await self.repo.claimed_of_person(tenant_id, person_id):
            course = await self._course(tenant_id, enrollment.course_id)
            if course.status == "active" and course.start_date <= today < course.end_date:
                activated.append(enrollment)
        for course_id in sorted({e.course_id for e in activated}):
            await self.adapters.identity.grant(access_group(tenant_id, course_id), [str(person_id)])
        for enrollment in activated:
            enrollment.status = "active"
            enrollment.activated_at = now
        await self._transitioned(activated, now)
        return activated

    async def record_activity(
        self, tenant_id: str, enrollment_id: uuid.UUID, at: datetime | None
    ) -> Enrollment:
        """An access or progress report: the first cancels the no-access reminder, each
        moves the no-activity reminder to seven days after the latest."""
        enrollment = await self._enrollment(tenant_id, enrollment_id)
        self._require_live(enrollment)
        now = self.clock.now()
        at = min(at or now, now)
        if enrollment.first_access_at is None:
            enrollment.first_access_at = at
            await self.repo.unschedule(tenant_id, [enrollment.id], [lifecycle.REMINDER_NO_ACCESS])
        if enrollment.last_activity_at is None or at > enrollment.last_activity_at:
            enrollment.last_activity_at = at
            await self.repo.schedule(lifecycle.on_activity(enrollment))
        enrollment.updated_at = now
        await self.repo.flush()
        return enrollment

    async def drop(self, tenant_id: str, enrollment_id: uuid.UUID) -> Dropped:
        """Always drops a live enrollment. The seat comes back only the first time it is
        dropped and only before the course's last drop date; otherwise it is spent. A
        roster's enrollment had no seat to recover."""
        enrollment = await self._enrollment(tenant_id, enrollment_id)
        self._require_live(enrollment)
        now = self.clock.now()
        if enrollment.seat_id is None:
            await self.end([enrollment], "dropped", NO_SEAT, now, seat_recovered=False)
            return Dropped(enrollment, False, NO_SEAT)
        course = await self._course(tenant_id, enrollment.course_id)
        seat = await self.repo.get_seat(tenant_id, enrollment.seat_id)
        assert seat is not None
        today = today_in(await self._timezone(tenant_id), now)
        if seat.previously_dropped:
            recovered, reason = False, "seat_previously_dropped"
        elif today >= course.last_drop_date:
            recovered, reason = False, "after_last_drop_date"
        else:
            recovered, reason = True, "before_last_drop_date"
        if recovered:
            await self.repo.set_seat(
                tenant_id, seat.id, now, status="available", previously_dropped=True, batch_id=None
            )
        else:
            await self.repo.set_seat(tenant_id, seat.id, now, status="spent")
        await self.end([enrollment], "dropped", reason, now, seat_recovered=recovered)
        return Dropped(enrollment, recovered, reason)

    async def cancel(self, tenant_id: str, enrollment_id: uuid.UUID, author: str) -> Enrollment:
        """Undo an assignment while its cancel window is open: the seat is rolled back and
        a new one takes its place, the dedup lock goes, the budget is withdrawn."""
        enrollment = await self._enrollment(tenant_id, enrollment_id)
        self._require_live(enrollment)
        now = self.clock.now()
        if enrollment.cancelable_until is None or now > enrollment.cancelable_until:
            raise NotCancelable(
                "this enrollment had no cancel window"
                if enrollment.cancelable_until is None
                else "the cancel window has passed"
            )
        assert enrollment.seat_id is not None  # only assignments have a cancel window
        seat = await self.repo.get_seat(tenant_id, enrollment.seat_id)
        assert seat is not None
        await self.repo.set_seat(tenant_id, seat.id, now, status="rolled_back")
        await self.repo.add_seat(
            {
                "tenant_id": tenant_id,
                "id": uuid7(),
                "course_id": seat.course_id,
                "order_ref": seat.order_ref,
                "status": "available",
                "previously_dropped": False,
                "batch_id": None,
                "created_at": now,
                "updated_at": now,
            }
        )
        await self.repo.delete_lock(enrollment)
        enrollment.canceled_by = author
        await self.end([enrollment], "canceled", None, now, withdraw=True)
        return enrollment

    async def end(
        self,
        enrollments: Sequence[Enrollment],
        status: str,
        reason: str | None,
        now: datetime,
        *,
        seat_recovered: bool | None = None,
        withdraw: bool = False,
    ) -> None:
        """Live enrollments of one tenant end: access revoked, budgets depleted (withdrawn
        for a cancel), pending lifecycle rows canceled, an event each."""
        if not enrollments:
            return
        tenant_id = enrollments[0].tenant_id
        await release_access(self.adapters, enrollments, withdraw=withdraw)
        for enrollment in enrollments:
            enrollment.status = status
            enrollment.reason = reason
            enrollment.ended_at = now
        await self.repo.unschedule(tenant_id, [e.id for e in enrollments], lifecycle.WHILE_LIVE)
        await self._transitioned(enrollments, now, seat_recovered=seat_recovered)

    async def _transitioned(
        self,
        enrollments: Sequence[Enrollment],
        now: datetime,
        *,
        seat_recovered: bool | None = None,
    ) -> None:
        if not enrollments:
            return
        tenant_id = enrollments[0].tenant_id
        for enrollment in enrollments:
            enrollment.updated_at = now
        await self.repo.flush()
        learners = await self.repo.learners(tenant_id, [e.person_id for e in enrollments])
        await record_events(
            self.session,
            tenant_id,
            [
                enrollment_event(e, learners[e.person_id].ref, seat_recovered=seat_recovered)
                for e in enrollments
            ],
            now,
        )

    async def _enrollment(
        self, tenant_id: str, enrollment_id: uuid.UUID, *, lock: bool = True
    ) -> Enrollment:
        enrollment = await self.repo.get(tenant_id, enrollment_id, for_update=lock)
        if enrollment is None:
            raise NotFound()
        return enrollment

    async def _course(self, tenant_id: str, course_id: str) -> Course:
        course = await CourseRepository(self.session).get(tenant_id, course_id)
        assert course is not None
        return course

    async def _timezone(self, tenant_id: str) -> str:
        tenant = await TenantRepository(self.session).get(tenant_id)
        return tenant.timezone if tenant is not None else "UTC"

    @staticmethod
    def _require_live(enrollment: Enrollment) -> None:
        if enrollment.status not in VISIBLE_LIVE:
            raise EnrollmentNotLive(f"the enrollment is {enrollment.status}")


async def release_access(
    adapters: Adapters, enrollments: Sequence[EnrollmentFacts], *, withdraw: bool = False
) -> None:
    """Revoke course access and empty the budgets of ending enrollments, a call per
    course and one for the budgets."""
    by_group: dict[str, list[str]] = {}
    for e in enrollments:
        by_group.setdefault(access_group(e.tenant_id, e.course_id), []).append(str(e.person_id))
    for group, members in sorted(by_group.items()):
        await adapters.identity.revoke(group, members)
    accounts = [budget_account(e.id) for e in enrollments]
    if withdraw:
        await adapters.accounting.withdraw(accounts)
    else:
        await adapters.accounting.deplete(accounts)
