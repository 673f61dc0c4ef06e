"""Routes for enrollments and logins (SPEC §3). The rules live in the services."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from coursegate.enrollments import errors
from coursegate.enrollments.adapters import Adapters
from coursegate.enrollments.assignment import Assigner
from coursegate.enrollments.repository import EnrollmentRepository
from coursegate.enrollments.schemas import (
    ActivityRequest,
    AssignRequest,
    CancelRequest,
    ClaimRequest,
    DropOut,
    EnrollmentOut,
    EnrollmentsOut,
    SessionRequest,
)
from coursegate.enrollments.service import EnrollmentService
from coursegate.kit.contract import raises
from coursegate.kit.errors import NotFound, ValidationFailed
from coursegate.kit.ids import UUID_SCHEMA, SlugPath, UuidPath, path_uuid, query_uuid
from coursegate.kit.pagination import Page, PageRequest, build_page, cursor_uuid, page_request
from coursegate.models import Enrollment
from coursegate.web import BriefPrincipal, ClockDep, CurrentPrincipal, Session

router = APIRouter(tags=["enrollments"])
ASSIGN_PATH = "/v1/courses/{course_id}/enrollments"
ASSIGN_ROUTE_PATTERN = r"/v1/courses/[^/]+/enrollments"
"""The batch route: its body may be up to 1 MiB (SPEC §0)."""

STATUSES = (
    "assigned",
    "claimed",
    "active",
    "completed",
    "archived",
    "dropped",
    "canceled",
    "expired",
)


def enrollment_out(enrollment: Enrollment) -> EnrollmentOut:
    return EnrollmentOut.model_validate(enrollment, from_attributes=True)


def service(request: Request, session: Session, clock: ClockDep) -> EnrollmentService:
    adapters: Adapters = request.app.state.adapters
    return EnrollmentService(session, clock, adapters)


Service = Depends(service)


@router.post(
    ASSIGN_PATH,
    status_code=201,
    responses=raises(
        errors.CourseNotActive,
        errors.EnrollmentExists,
        errors.NoSeatsAvailable,
        errors.ProvisioningFailed,
    ),
)
async def assign(
    course_id: SlugPath, body: AssignRequest, who: BriefPrincipal, request: Request, clock: ClockDep
) -> EnrollmentsOut:
    """Waits for the provisioning saga: 201 once every student is enrolled, or an error
    and nothing of the batch."""
    settings = request.app.state.settings
    assigner = Assigner(
        request.app.state.database,
        clock,
        credits=settings.seat_budget_credits,
        timeout_seconds=settings.saga_timeout_seconds,
    )
    made = await assigner.assign(who.tenant_id, course_id, body)
    return EnrollmentsOut(enrollments=[enrollment_out(e) for e in made])


@router.get("/v1/enrollments")
async def list_enrollments(
    who: CurrentPrincipal,
    session: Session,
    page: PageRequest = Depends(page_request),
    course: str | None = Query(default=None, max_length=63),
    person: str | None = Query(default=None, max_length=64, json_schema_extra=UUID_SCHEMA),
    status: str | None = Query(default=None, json_schema_extra={"enum": list(STATUSES)}),
) -> Page[EnrollmentOut]:
    if status is not None and status not in STATUSES:
        raise ValidationFailed.field("status", "invalid", f"one of {', '.join(STATUSES)}")
    rows = await EnrollmentRepository(session).listing(
        who.tenant_id,
        after=cursor_uuid(page.after),
        limit=page.limit + 1,
        course_id=course,
        person_id=query_uuid("person", person),
        status=status,
    )
    return build_page(rows, page, lambda e: {"id": str(e.id)}, enrollment_out)


@router.get("/v1/enrollments/{enrollment_id}")
async def get_enrollment(
    enrollment_id: UuidPath, who: CurrentPrincipal, enrollments: EnrollmentService = Service
) -> EnrollmentOut:
    return enrollment_out(await enrollments.get(who.tenant_id, path_uuid(enrollment_id)))


@router.post(
    "/v1/enrollments/{enrollment_id}/claim",
    responses=raises(errors.InvalidTransition, errors.EnrollmentNotLive),
)
async def claim(
    enrollment_id: UuidPath,
    body: ClaimRequest,
    who: CurrentPrincipal,
    enrollments: EnrollmentService = Service,
) -> EnrollmentOut:
    claimed = await enrollments.claim(who.tenant_id, path_uuid(enrollment_id), body.user_id)
    return enrollment_out(claimed)


@router.post("/v1/sessions", responses=raises(NotFound))
async def start_session(
    body: SessionRequest, who: CurrentPrincipal, enrollments: EnrollmentService = Service
) -> EnrollmentsOut:
    activated = await enrollments.start_session(who.tenant_id, body.user_id)
    return EnrollmentsOut(enrollments=[enrollment_out(e) for e in activated])


@router.post("/v1/enrollments/{enrollment_id}/drop", responses=raises(errors.EnrollmentNotLive))
async def drop(
    enrollment_id: UuidPath, who: CurrentPrincipal, enrollments: EnrollmentService = Service
) -> DropOut:
    dropped = await enrollments.drop(who.tenant_id, path_uuid(enrollment_id))
    return DropOut(
        enrollment=enrollment_out(dropped.enrollment),
        seat_recovered=dropped.seat_recovered,
        reason=dropped.reason,
    )


@router.post(
    "/v1/enrollments/{enrollment_id}/cancel",
    responses=raises(errors.NotCancelable, errors.EnrollmentNotLive),
)
async def cancel(
    enrollment_id: UuidPath,
    body: CancelRequest,
    who: CurrentPrincipal,
    enrollments: EnrollmentService = Service,
) -> EnrollmentOut:
    canceled = await enrollments.cancel(who.tenant_id, path_uuid(enrollment_id), body.author)
    return enrollment_out(canceled)


@router.post("/v1/enrollments/{enrollment_id}/activity", responses=raises(errors.EnrollmentNotLive))
async def activity(
    enrollment_id: UuidPath,
    body: ActivityRequest,
    who: CurrentPrincipal,
    enrollments: EnrollmentService = Service,
) -> EnrollmentOut:
    updated = await enrollments.record_activity(who.tenant_id, path_uuid(enrollment_id), body.at)
    return enrollment_out(updated)
