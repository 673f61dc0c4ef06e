"""The provisioning saga of a batch assignment (SPEC §6), a durable DBOS workflow.

reserve seats → create enrollments → fund budgets → grant access → confirm
(enrollments and seats `assigned`, lifecycle rows, `enrollment.created`
events and invites, in one transaction). Each step registers its undo
before it runs, so a step that failed half-way is undone too; on any
failure the undos run in reverse and nothing of the batch remains. Every
step is idempotent, because a durable workflow re-runs a step whose result
it had not recorded when its process died.

Until the confirm step the batch is invisible: its seats are `reserved`
(other assignments skip them) and its enrollments `provisioning` (lists
and lookups skip them, while the unique index already keeps the place).

The caller waits for the answer, so the batch must end in the answer it
got. A saga that outlives its caller — the process died and DBOS recovered
the workflow after a restart, or the wait ran out — compensates instead of
finishing: before each forward step it checks, as a recorded step, that it
still runs in the process that started it and within its deadline.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from dbos import DBOS

from coursegate import durable
from coursegate.courses.repository import CourseRepository
from coursegate.enrollments import lifecycle
from coursegate.enrollments.errors import CourseNotActive, EnrollmentExists, NoSeatsAvailable
from coursegate.enrollments.events import enrollment_event
from coursegate.enrollments.repository import EnrollmentRepository, lock_row
from coursegate.enrollments.service import access_group, budget_account
from coursegate.events.outbox import record_events
from coursegate.kit.errors import DomainError
from coursegate.kit.ids import uuid7
from coursegate.kit.timefmt import parse_instant
from coursegate.mail.repository import QueuedEmail
from coursegate.models import Course, Enrollment

log = structlog.get_logger(__name__)

WORKFLOW = "provision_enrollments"
PROCESS_BOOT = uuid.uuid4().hex
"""Tells a workflow recovered after a restart from one still running where it began."""

Request = dict[str, Any]
"""`tenant_id, course_id, batch_id, people: [[person_id, email | null]], dedup_window_days,
cancelable_until, credits, deadline` — plain data, because DBOS stores the arguments."""

_UNDO_RETRIES: dict[str, Any] = {
    "retries_allowed": True,
    "max_attempts": 8,
    "interval_seconds": 1.0,
    "backoff_rate": 2.0,
}


class Interrupted(Exception):
    """The saga outlived the request that was waiting for it."""


def _batch(request: Request) -> uuid.UUID:
    return uuid.UUID(request["batch_id"])


def _people(request: Request) -> list[uuid.UUID]:
    return [uuid.UUID(person_id) for person_id, _ in request["people"]]


@DBOS.step()
async def started_here() -> str:
    return PROCESS_BOOT


@DBOS.step()
async def still_wanted(boot: str, deadline: str) -> bool:
    return boot == PROCESS_BOOT and durable.runtime().clock.now() < parse_instant(deadline)


@DBOS.step()
async def reserve_seats(request: Request) -> list[str]:
    rt = durable.runtime()
    tenant_id, course_id, batch = request["tenant_id"], request["course_id"], _batch(request)
    async with rt.database.transaction() as session:
        repo = EnrollmentRepository(session)
        if held := await repo.seats_of_batch(batch):
            return [str(s) for s in held]
        course = await repo.lock_course(tenant_id, course_id)
        if course is None or course.status != "active":
            raise CourseNotActive("seats are assigned in an active course only")
        now = rt.clock.now()
        people = _people(request)
        if blocked := await repo.blocked(tenant_id, course_id, people, now):
            raise EnrollmentExists(_blocked_message(request, blocked))
        seats = await repo.reserve_seats(tenant_id, course_id, batch, len(people), now)
        if len(seats) < len(people):
            raise NoSeatsAvailable(f"{len(people)} seats needed, {len(seats)} available")
        return [str(s) for s in seats]


@DBOS.step(**_UNDO_RETRIES)
async def release_seats(request: Request) -> None:
    rt = durable.runtime()
    async with rt.database.transaction() as session:
        await EnrollmentRepository(session).release_seats(_batch(request), rt.clock.now())


@DBOS.step()
async def create_enrollments(request: Request, seats: list[str]) -> list[str]:
    rt = durable.runtime()
    tenant_id, course_id, batch = request["tenant_id"], request["course_id"], _batch(request)
    async with rt.database.transaction() as session:
        repo = EnrollmentRepository(session)
        if made := await repo.of_batch(batch):
            return [str(e.id) for e in made]
        course = await CourseRepository(session).get(tenant_id, course_id)
        assert course is not None
        now = rt.clock.now()
        cancelable = request["cancelable_until"]
        dedup = request["dedup_window_days"]
        rows: list[dict[str, Any]] = []
        locks: list[dict[str, Any]] = []
        for (person_id, _), seat_id in zip(request["people"], seats, strict=True):
            enrollment_id = uuid7()
            rows.append(
                {
                    "tenant_id": tenant_id,
                    "id": enrollment_id,
                    "course_id": course_id,
                    "person_id": uuid.UUID(person_id),
                    "seat_id": uuid.UUID(seat_id),
                    "batch_id": batch,
                    "status": "provisioning",
                    "dedup_window_days": dedup,
                    "cancelable_until": parse_instant(cancelable) if cancelable else None,
                    "access_ends_at": now + timedelta(days=course.access_period_days),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if dedup is not None:
                until = now + timedelta(days=course.access_period_days - dedup)
                locks.append(
                    lock_row(tenant_id, course_id, uuid.UUID(person_id), enrollment_id, until)
                )
        if not await repo.insert_enrollments(tenant_id, course_id, rows, locks, now):
            blocked = await repo.blocked(tenant_id, course_id, _people(request), now)
            raise EnrollmentExists(_blocked_message(request, blocked))
        return [str(row["id"]) for row in rows]


@DBOS.step(**_UNDO_RETRIES)
async def remove_enrollments(request: Request) -> None:
    rt = durable.runtime()
    async with rt.database.transaction() as session:
        await EnrollmentRepository(session).remove_provisioning(_batch(request))


@DBOS.step()
async def fund_budgets(request: Request, enrollment_ids: list[str]) -> None:
    accounts = [budget_account(uuid.UUID(e)) for e in enrollment_ids]
    await durable.runtime().adapters.accounting.fund(accounts, request["credits"])


@DBOS.step(**_UNDO_RETRIES)
async def withdraw_budgets(request: Request, enrollment_ids: list[str]) -> None:
    accounts = [budget_account(uuid.UUID(e)) for e in enrollment_ids]
    await durable.runtime().adapters.accounting.withdraw(accounts)


@DBOS.step()
async def grant_access(request: Request) -> None:
    group = access_group(request["tenant_id"], request["course_id"])
    await durable.runtime().adapters.identity.grant(group, [p for p, _ in request["people"]])


@DBOS.step(**_UNDO_RETRIES)
async def revoke_access(request: Request) -> None:
    group = access_group(request["tenant_id"], request["course_id"])
    await durable.runtime().adapters.identity.revoke(group, [p for p, _ in request["people"]])


@DBOS.step()
async def confirm(request: Request) -> None:
    """The batch becomes real in one transaction: statuses, lifecycle rows, events and
    invites. Invites are queued only here, because an email cannot be taken back."""
    rt = durable.runtime()
    tenant_id, batch = request["tenant_id"], _batch(request)
    async with rt.database.transaction() as session:
        repo = EnrollmentRepository(session)
        now = rt.clock.now()
        if not await repo.confirm_batch(batch, now):
            return  # confirmed by an earlier run of this step
        course = await CourseRepository(session).get(tenant_id, request["course_id"])
        assert course is not None
        enrollments = await repo.of_batch(batch)
        await repo.schedule(
            [r for e in enrollments for r in lifecycle.on_created(e, course.access_period_days)]
        )
        learners = await repo.learners(tenant_id, [e.person_id for e in enrollments])
        await record_events(
            session,
            tenant_id,
            [enrollment_event(e, learners[e.person_id].ref) for e in enrollments],
            now,
        )
        invites = [
            _invite(e, course, email)
            for e, (_, email) in zip(enrollments, _ordered(request, enrollments), strict=True)
            if email
        ]
        await rt.adapters.invitations.queue(session, invites, now)


@DBOS.workflow(name=WORKFLOW)
async def provision_enrollments(request: Request) -> dict[str, Any]:
    boot = await started_here()
    undo: list[tuple[Any, tuple[Any, ...]]] = []
    step = "reserve_seats"
    try:
        await _go_on(boot, request)
        undo.append((release_seats, (request,)))
        seats = await reserve_seats(request)
        step = "create_enrollments"
        await _go_on(boot, request)
        undo.append((remove_enrollments, (request,)))
        enrollment_ids = await create_enrollments(request, seats)
        step = "fund_budgets"
        await _go_on(boot, request)
        undo.append((withdraw_budgets, (request, enrollment_ids)))
        await fund_budgets(request, enrollment_ids)
        step = "grant_access"
        await _go_on(boot, request)
        undo.append((revoke_access, (request,)))
        await grant_access(request)
        step = "confirm"
        await _go_on(boot, request)
        await confirm(request)
    except Exception as exc:
        for compensate, args in reversed(undo):
            await compensate(*args)
        return _failure(step, exc)
    return {"ok": True, "enrollment_ids": enrollment_ids}


async def _go_on(boot: str, request: Request) -> None:
    if not await still_wanted(boot, request["deadline"]):
        raise Interrupted("the request waiting for this assignment is gone")


def _failure(step: str, exc: Exception) -> dict[str, Any]:
    if isinstance(exc, DomainError):
        return {"ok": False, "code": exc.code, "message": str(exc), "step": step}
    log.warning("provisioning_failed", step=step, error_class=type(exc).__name__)
    return {
        "ok": False,
        "code": "PROVISIONING_FAILED",
        "message": f"{step} failed ({type(exc).__name__}); the batch was undone",
        "step": step,
    }


def _ordered(request: Request, enrollments: list[Enrollment]) -> list[tuple[str, str | None]]:
    """The request's `(person_id, email)` in the order of the enrollments given."""
    emails: dict[str, str | None] = dict(request["people"])
    return [(str(e.person_id), emails[str(e.person_id)]) for e in enrollments]


def _invite(enrollment: Enrollment, course: Course, email: str) -> QueuedEmail:
    return QueuedEmail(
        tenant_id=enrollment.tenant_id,
        to_address=email,
        subject=f"You are enrolled in {' '.join(course.name.split())}",
        body=(
            f"You have a seat in {course.name}, from {course.start_date.isoformat()}"
            f" to {course.end_date.isoformat()}.\n"
            f"Your enrollment: {enrollment.id}\n"
            "Sign in to claim it.\n"
        ),
        kind="enrollment.invite",
    )


def _blocked_message(request: Request, blocked: set[uuid.UUID]) -> str:
    """Names the students by their place in the request, never by their ids."""
    places = [str(i) for i, person in enumerate(_people(request)) if person in blocked]
    return (
        f"students {', '.join(places)} already have a live enrollment in this course"
        " or an unexpired dedup lock"
    )


def deadline_after(now: datetime, seconds: float) -> str:
    return (now + timedelta(seconds=seconds)).isoformat()
