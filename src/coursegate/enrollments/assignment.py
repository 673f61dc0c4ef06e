"""A batch assignment from request to answer: check, find or create the people, run the
saga and wait for it, read back what it made.

This is a boundary, like a request: it opens its own short transactions,
because the saga's steps commit on their own and must not wait behind a
transaction held open by the request (SQLite has one connection).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from dbos import DBOS, SetWorkflowID

from coursegate.courses.repository import CourseRepository
from coursegate.db import Database
from coursegate.enrollments import errors, saga
from coursegate.enrollments.repository import EnrollmentRepository
from coursegate.enrollments.schemas import AssignRequest
from coursegate.kit.clock import Clock
from coursegate.kit.errors import DomainError, NotFound, ValidationFailed
from coursegate.kit.ids import uuid7
from coursegate.models import Enrollment
from coursegate.people.service import PeopleService

_REFUSALS: dict[str, type[DomainError]] = {
    cls.code: cls
    for cls in (
        errors.NoSeatsAvailable,
        errors.EnrollmentExists,
        errors.CourseNotActive,
        errors.ProvisioningFailed,
    )
}
GRACE_SECONDS = 30.0
"""How much longer than its deadline the request waits for a saga to undo itself."""


class Assigner:
    def __init__(
        self, database: Database, clock: Clock, *, credits: int, timeout_seconds: float
    ) -> None:
        self.database = database
        self.clock = clock
        self.credits = credits
        self.timeout_seconds = timeout_seconds

    async def assign(self, tenant_id: str, course_id: str, body: AssignRequest) -> list[Enrollment]:
        seen: set[str] = set()
        for index, student in enumerate(body.students):
            if student.student_id in seen:
                raise ValidationFailed.field(
                    f"students.{index}.student_id", "duplicate", "each student once per batch"
                )
            seen.add(student.student_id)
        async with self.database.transaction() as session:
            course = await CourseRepository(session).get(tenant_id, course_id)
            if course is None:
                raise NotFound()
            if course.status != "active":
                raise errors.CourseNotActive(f"the course is {course.status}")
            dedup = body.dedup_window_days
            if dedup is not None and dedup >= course.access_period_days:
                raise ValidationFailed.field(
                    "dedup_window_days",
                    "out_of_range",
                    f"must be less than the course's access_period_days ({course.access_period_days})",
                )
            people = await PeopleService(session, self.clock).find_or_create(
                tenant_id,
                body.identifier_namespace,
                [(s.student_id, s.email, s.name) for s in body.students],
            )
        batch_id = uuid7()
        request: saga.Request = {
            "tenant_id": tenant_id,
            "course_id": course_id,
            "batch_id": str(batch_id),
            "people": [[str(p), s.email] for p, s in zip(people, body.students, strict=True)],
            "dedup_window_days": dedup,
            "cancelable_until": body.cancelable_until.isoformat()
            if body.cancelable_until
            else None,
            "credits": self.credits,
            "deadline": saga.deadline_after(self.clock.now(), self.timeout_seconds),
        }
        outcome = await self._run(batch_id, request)
        if not outcome["ok"]:
            refusal = _REFUSALS.get(outcome["code"], errors.ProvisioningFailed)
            raise refusal(outcome["message"])
        async with self.database.transaction() as session:
            return await EnrollmentRepository(session).of_batch(batch_id)

    async def _run(self, batch_id: uuid.UUID, request: saga.Request) -> dict[str, Any]:
        with SetWorkflowID(f"assign-{batch_id}"):
            handle = await DBOS.start_workflow_async(saga.provision_enrollments, request)
        try:
            return await asyncio.wait_for(handle.get_result(), self.timeout_seconds + GRACE_SECONDS)
        except TimeoutError:
            raise errors.ProvisioningFailed(
                "the assignment did not finish in time; it undoes itself"
            ) from None
