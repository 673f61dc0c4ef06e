"""Courses and Course (SPEC §9): seat counts, enrollments by status, and assigning from a
Students CSV through the saga the API's route uses (Drop and Cancel are in
`enrollment_actions`).

Assigning runs the provisioning saga and waits for it, as the API's route does. The
saga's steps commit on their own and SQLite has one connection, so that route holds no
transaction while it waits: it signs the operator in through a transaction of its own,
and the transaction that records the action and reads the page takes its connection at
its first statement, once the saga is over.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.console.students_csv import (
    HEADER_TEXT,
    BadLine,
    StudentsFile,
    StudentsFileRejected,
    read_students,
)
from coursegate.console.web import (
    PREFIX,
    BriefActor,
    Console,
    Session,
    Viewer,
    record_refusal,
    recorded,
    render,
    requires,
)
from coursegate.courses.repository import CourseRepository
from coursegate.courses.service import CourseService, CourseView
from coursegate.enrollments import errors
from coursegate.enrollments.adapters import Adapters
from coursegate.enrollments.api import STATUSES
from coursegate.enrollments.assignment import Assigner
from coursegate.enrollments.repository import EnrollmentRepository, Learner
from coursegate.enrollments.schemas import MAX_BATCH, AssignRequest
from coursegate.enrollments.service import VISIBLE_LIVE
from coursegate.kit.clock import Clock
from coursegate.kit.errors import DomainError, ValidationFailed
from coursegate.kit.fields import validated
from coursegate.kit.ids import query_uuid
from coursegate.models import Enrollment
from coursegate.operators.roles import Role
from coursegate.people.repository import PeopleRepository
from coursegate.web import ClockDep, database

router = APIRouter()

COURSES_SHOWN = 100
GROUP_SHOWN = 100
NAMESPACE = "student_id"
"""The identifier namespace a Students CSV's `student_id` is in (the API's default)."""
ASSIGN_PATH = f"{PREFIX}/courses/{{course_id}}/enrollments"
ASSIGN_ROUTE_PATTERN = rf"{PREFIX}/courses/[^/]+/enrollments"
"""The upload of a Students CSV: 500 rows may pass the default 64 KiB, so the route has the
batch routes' 1 MiB (SPEC §0)."""
ENROLLMENT_PATH = f"{PREFIX}/courses/{{course_id}}/enrollments/{{enrollment_id}}"

LABELS = {
    "assigned": "Assigned",
    "claimed": "Claimed",
    "active": "Active",
    "completed": "Completed",
    "archived": "Archived",
    "dropped": "Dropped",
    "canceled": "Canceled",
    "expired": "Expired",
}
SEAT_LABELS = (
    ("available", "Available"),
    ("reserved", "Reserved"),
    ("assigned", "Assigned"),
    ("spent", "Spent"),
    ("rolled_back", "Rolled back"),
    ("total", "Total"),
)
REASONS = {
    "before_last_drop_date": "seat recovered (dropped before the last drop date)",
    "after_last_drop_date": "seat spent (dropped on or after the last drop date)",
    "seat_previously_dropped": "seat spent (it had been dropped before)",
    "no_seat": "no seat (a roster enrollment)",
    "course_ended": "the course ended",
    "access_period_ended": "the access period ended",
}
_ASSIGN_REFUSALS = (
    ValidationFailed,  # the file, the options, and a dedup window longer than the access period
    errors.CourseNotActive,
    errors.NoSeatsAvailable,
    errors.EnrollmentExists,
    errors.ProvisioningFailed,
)

Operating = Annotated[Console, Depends(requires(Role.OPERATOR, acting=False))]
"""An operator's read of a control (a confirmation): the role is checked, no token needed."""


# What the pages show


@dataclass(slots=True)
class Row:
    enrollment: Enrollment
    learner: Learner | None
    details: list[tuple[str, datetime | None]]
    can_drop: bool
    can_cancel: bool
    acted: bool
    """The enrollment the answer on top of the page is about."""


@dataclass(slots=True)
class Group:
    status: str
    label: str
    count: int
    rows: list[Row]
    next_after: uuid.UUID | None

    @property
    def live(self) -> bool:
        """Its enrollments may be dropped or canceled: the table has a column for that."""
        return self.status in VISIBLE_LIVE


@dataclass(slots=True)
class AssignAnswer:
    """What the Assign form says after a try: what was made, or why nothing was."""

    notice: str | None = None
    error: str | None = None
    bad: StudentsFileRejected | None = None
    filename: str | None = None


@dataclass(slots=True)
class Outcome:
    """The answer to a drop or a cancel, shown above the enrollments; its row is marked."""

    enrollment_id: uuid.UUID
    message: str
    good: bool


@dataclass(slots=True)
class CoursePage:
    view: CourseView
    seats: dict[str, int]
    groups: list[Group]
    only: str | None = None


def who(learner: Learner | None) -> str:
    """A learner as a row or a notice names them: their name and their first identifier."""
    if learner is None:
        return "an unknown person"
    ids = learner.ref.identifiers
    student_ids = [value for ns, value in ids if ns == NAMESPACE]
    first = student_ids[0] if student_ids else (ids[0][1] if ids else None)
    if learner.name and first:
        return f"{learner.name} ({first})"
    return learner.name or first or str(learner.ref.id)


def adapters_of(request: Request) -> Adapters:
    adapters: Adapters = request.app.state.adapters
    return adapters


def is_htmx(request: Request) -> bool:
    return bool(request.headers.get("hx-request"))


async def load_course(
    session: AsyncSession,
    console: Console,
    now: Clock,
    course_id: str,
    *,
    only: str | None = None,
    after: uuid.UUID | None = None,
    outcome: Outcome | None = None,
) -> CoursePage:
    tenant = console.tenant_id
    courses = CourseService(session, now)
    view = await courses.get(tenant, course_id)
    seats = await courses.seat_counts(tenant, course_id)
    repo = EnrollmentRepository(session)
    counts = await repo.status_counts(tenant, course_id)
    at = now.now()
    groups: list[Group] = []
    for status in STATUSES:
        if not counts.get(status) or (only is not None and status != only):
            continue
        found = await repo.listing(
            tenant, after=after, limit=GROUP_SHOWN + 1, course_id=course_id, status=status
        )
        shown = list(found[:GROUP_SHOWN])
        learners = await repo.learners(tenant, [e.person_id for e in shown])
        rows = [
            Row(
                enrollment=e,
                learner=learners.get(e.person_id),
                details=_details(e),
                can_drop=e.status in VISIBLE_LIVE,
                can_cancel=cancelable(e, at),
                acted=outcome is not None and outcome.enrollment_id == e.id,
            )
            for e in shown
        ]
        next_after = shown[-1].id if len(found) > GROUP_SHOWN else None
        groups.append(Group(status, LABELS[status], counts[status], rows, next_after))
    return CoursePage(view=view, seats=seats, groups=groups, only=only)


def cancelable(enrollment: Enrollment, at: datetime) -> bool:
    """Whether the service would cancel it now (its cancel window is open)."""
    until = enrollment.cancelable_until
    return enrollment.status in VISIBLE_LIVE and until is not None and at <= until


def _details(enrollment: Enrollment) -> list[tuple[str, datetime | None]]:
    """What a row says of its enrollment: phrases, each with an instant or none."""
    e = enrollment
    if e.status in VISIBLE_LIVE:
        said: list[tuple[str, datetime | None]] = [("access until", e.access_ends_at)]
        if e.cancelable_until is not None:
            said.append(("cancelable until", e.cancelable_until))
        if e.last_activity_at is not None:
            said.append(("last active", e.last_activity_at))
        return said
    said = []
    if e.completed_at is not None:
        said.append(("completed", e.completed_at))
    if e.certificate_expires_at is not None:
        said.append(("certificate until", e.certificate_expires_at))
    if e.ended_at is not None and e.status != "completed":
        said.append(("ended", e.ended_at))
    if e.reason:
        said.append((REASONS.get(e.reason, e.reason.replace("_", " ")), None))
    if e.canceled_by:
        said.append((f"canceled by {e.canceled_by}", None))
    return said


def course_context(console: Console, page: CoursePage, **extra: Any) -> dict[str, Any]:
    course = page.view.course
    return {
        "title": course.name,
        "active": "Courses",
        "course": course,
        "external_ids": page.view.external_ids,
        "seats": page.seats,
        "seat_labels": SEAT_LABELS,
        "groups": page.groups,
        "only": page.only,
        "only_label": LABELS.get(page.only or "", ""),
        "can_act": console.can(Role.OPERATOR),
        "header": HEADER_TEXT,
        "max_students": MAX_BATCH,
        **extra,
    }


async def course_page_response(
    request: Request,
    console: Console,
    session: AsyncSession,
    now: Clock,
    course_id: str,
    *,
    status: int = 200,
    assign: AssignAnswer | None = None,
    outcome: Outcome | None = None,
) -> HTMLResponse:
    page = await load_course(session, console, now, course_id, outcome=outcome)
    context = course_context(console, page, assign=assign or AssignAnswer(), outcome=outcome)
    return render(request, "course.html", context, status=status)


# Pages


@router.get(f"{PREFIX}/courses", include_in_schema=False)
async def courses_page(
    request: Request, console: Viewer, session: Session, now: ClockDep, after: str | None = None
) -> HTMLResponse:
    found = await CourseRepository(session).list(
        console.tenant_id, after=after, limit=COURSES_SHOWN + 1
    )
    shown = list(found[:COURSES_SHOWN])
    seats = await CourseService(session, now).seat_counts_of(
        console.tenant_id, [c.id for c in shown]
    )
    return render(
        request,
        "courses.html",
        {
            "title": "Courses",
            "active": "Courses",
            "courses": [(c, seats[c.id]) for c in shown],
            "seat_labels": SEAT_LABELS,
            "next_after": shown[-1].id if len(found) > COURSES_SHOWN else None,
        },
    )


@router.get(f"{PREFIX}/courses/{{course_id}}", include_in_schema=False)
async def course_page(
    request: Request,
    course_id: str,
    console: Viewer,
    session: Session,
    now: ClockDep,
    status: str | None = None,
    after: str | None = None,
) -> HTMLResponse:
    """The course; `?status=…&after=…` pages through one group of its enrollments."""
    if status is not None and status not in STATUSES:
        raise ValidationFailed.field("status", "invalid", f"one of {', '.join(STATUSES)}")
    page = await load_course(
        session,
        console,
        now,
        course_id,
        only=status,
        after=query_uuid("after", after) if status is not None else None,
    )
    return render(request, "course.html", course_context(console, page, assign=AssignAnswer()))


# Assign


@router.post(ASSIGN_PATH, include_in_schema=False)
async def assign(
    request: Request,
    course_id: str,
    console: BriefActor,
    now: ClockDep,
    students_csv: Annotated[UploadFile | None, File()] = None,
    cancelable_until: Annotated[str, Form(max_length=40)] = "",
    dedup_window_days: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse:
    """Assign every student of the file, through the API's `Assigner` (find or create the
    people, run the saga, wait for it), or nothing and say why."""
    db = database(request)
    raw = await students_csv.read() if students_csv is not None else b""
    filename = students_csv.filename if students_csv is not None else None
    students = read_students(raw)
    # No statement runs in this transaction before the saga is over (see the module's doc).
    async with db.transaction() as session:
        try:
            async with recorded(request, session, console, "assign", "course", course_id) as act:
                act.detail = {"students": len(students.rows) + len(students.bad)}
                await _checked(request, console, now, course_id, students, act.detail)
                body = validated(
                    AssignRequest,
                    {
                        "students": [row.student for row in students.rows],
                        "identifier_namespace": NAMESPACE,
                        "cancelable_until": _instant(cancelable_until, console.timezone, now),
                        "dedup_window_days": _days(dedup_window_days),
                    },
                )
                settings = request.app.state.settings
                made = await Assigner(
                    db,
                    now,
                    credits=settings.seat_budget_credits,
                    timeout_seconds=settings.saga_timeout_seconds,
                ).assign(console.tenant_id, course_id, body)
                act.detail["enrollments"] = len(made)
        except _ASSIGN_REFUSALS as exc:
            await record_refusal(request, exc.code)
            answer = AssignAnswer(
                error=_explain(exc),
                bad=exc if isinstance(exc, StudentsFileRejected) else None,
                filename=filename,
            )
            return await course_page_response(
                request, console, session, now, course_id, status=exc.status, assign=answer
            )
        plural = "s" if len(made) != 1 else ""
        notice = f"Assigned {len(made)} student{plural}; their invitations are queued."
        return await course_page_response(
            request, console, session, now, course_id, assign=AssignAnswer(notice=notice)
        )


async def _checked(
    request: Request,
    console: Console,
    now: Clock,
    course_id: str,
    students: StudentsFile,
    detail: dict[str, object],
) -> None:
    """The course is the tenant's (else 404, whatever the file), and the file is good: no
    bad line, and no student already enrolled. The saga checks enrollments again, whoever
    races; asking first names the students by their lines."""
    async with database(request).transaction() as session:
        await CourseService(session, now).get(console.tenant_id, course_id)
        bad = list(students.bad)
        if not bad:
            bad = await _already_enrolled(session, console, now, course_id, students)
    if bad:
        detail["bad_lines"] = len(bad)
        raise StudentsFileRejected(bad)


async def _already_enrolled(
    session: AsyncSession, console: Console, now: Clock, course_id: str, students: StudentsFile
) -> list[BadLine]:
    tenant = console.tenant_id
    known = await PeopleRepository(session).taken(
        tenant, [(NAMESPACE, row.student.student_id) for row in students.rows]
    )
    person_of = {i.value: i.person_id for i in known}
    if not person_of:
        return []
    blocked = await EnrollmentRepository(session).blocked(
        tenant, course_id, list(person_of.values()), now.now()
    )
    return [
        BadLine(
            row.line,
            f"student {row.student.student_id} already has a live enrollment in this course"
            " or an unexpired dedup lock",
        )
        for row in students.rows
        if person_of.get(row.student.student_id) in blocked
    ]


def _instant(value: str, zone: str, now: Clock) -> datetime | None:
    """The `datetime-local` field, read in the tenant's timezone; it must lie ahead."""
    text = value.strip()
    if not text:
        return None
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed.field(
            "cancelable_until", "invalid", "Cancelable until is not a date and time"
        ) from None
    at = local if local.tzinfo is not None else local.replace(tzinfo=ZoneInfo(zone))
    if at <= now.now():
        raise ValidationFailed.field(
            "cancelable_until", "out_of_range", "Cancelable until must be in the future"
        )
    return at


def _days(value: str) -> int | None:
    text = value.strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValidationFailed.field(
            "dedup_window_days", "invalid", "Dedup window must be a whole number of days"
        )
    return int(text)


def _explain(exc: DomainError) -> str:
    if isinstance(exc, StudentsFileRejected):
        return "The file was not accepted and nothing was assigned. Fix these lines and upload it again."
    if exc.message:
        return f"Nothing was assigned: {exc.message}."
    details = exc.details or []
    said = "; ".join(f"{d.get('field')}: {d.get('message', d.get('constraint'))}" for d in details)
    return f"Nothing was assigned: {said or exc.code}."
