"""Routes for courses and their seats (SPEC §3). The rules live in the service."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from coursegate.courses.repository import CourseRepository
from coursegate.courses.schemas import (
    CourseCreate,
    CourseOut,
    CoursePatch,
    SeatCounts,
    SeatOrderCreate,
    SeatOrderOut,
)
from coursegate.courses.service import CourseExpired, CourseService, CourseView
from coursegate.kit.contract import raises
from coursegate.kit.errors import AlreadyExists
from coursegate.kit.ids import SlugPath
from coursegate.kit.pagination import Page, PageRequest, build_page, cursor_text, page_request
from coursegate.models import Course, SeatOrder
from coursegate.web import ClockDep, CurrentPrincipal, Locate, Session

router = APIRouter(prefix="/v1/courses", tags=["courses"])


def course_out(course: Course, external_ids: dict[str, str]) -> CourseOut:
    return CourseOut(
        id=course.id,
        name=course.name,
        program_id=course.program_id,
        start_date=course.start_date,
        last_drop_date=course.last_drop_date,
        end_date=course.end_date,
        access_period_days=course.access_period_days,
        certificate_validity_days=course.certificate_validity_days,
        external_ids=external_ids,
        status=course.status,
        created_at=course.created_at,
        updated_at=course.updated_at,
    )


def view_out(view: CourseView) -> CourseOut:
    return course_out(view.course, view.external_ids)


def order_out(order: SeatOrder) -> SeatOrderOut:
    return SeatOrderOut.model_validate(order, from_attributes=True)


@router.post("", status_code=201, responses=raises(AlreadyExists))
async def create_course(
    body: CourseCreate, who: CurrentPrincipal, session: Session, clock: ClockDep, locate: Locate
) -> CourseOut:
    view = await CourseService(session, clock).create(who.tenant_id, body)
    locate(body.id)
    return view_out(view)


@router.get("")
async def list_courses(
    who: CurrentPrincipal,
    session: Session,
    page: PageRequest = Depends(page_request),
    status: str | None = Query(default=None, max_length=16),
    program: str | None = Query(default=None, max_length=63),
) -> Page[CourseOut]:
    repo = CourseRepository(session)
    rows = await repo.list(
        who.tenant_id,
        after=cursor_text(page.after),
        limit=page.limit + 1,
        status=status,
        program_id=program,
    )
    mapping = await repo.external_ids_of(who.tenant_id, [c.id for c in rows[: page.limit]])
    return build_page(rows, page, lambda c: {"id": c.id}, lambda c: course_out(c, mapping[c.id]))


@router.get("/{course_id}")
async def get_course(
    course_id: SlugPath, who: CurrentPrincipal, session: Session, clock: ClockDep
) -> CourseOut:
    return view_out(await CourseService(session, clock).get(who.tenant_id, course_id))


@router.patch("/{course_id}", responses=raises(CourseExpired))
async def update_course(
    course_id: SlugPath, body: CoursePatch, who: CurrentPrincipal, session: Session, clock: ClockDep
) -> CourseOut:
    return view_out(await CourseService(session, clock).update(who.tenant_id, course_id, body))


@router.post("/{course_id}/activate", responses=raises(CourseExpired))
async def activate_course(
    course_id: SlugPath, who: CurrentPrincipal, session: Session, clock: ClockDep
) -> CourseOut:
    return view_out(await CourseService(session, clock).activate(who.tenant_id, course_id))


@router.post(
    "/{course_id}/seats",
    status_code=201,
    responses={
        200: {"model": SeatOrderOut, "description": "The same order sent again."},
        **raises(CourseExpired, AlreadyExists),
    },
)
async def order_seats(
    course_id: SlugPath,
    body: SeatOrderCreate,
    response: Response,
    who: CurrentPrincipal,
    session: Session,
    clock: ClockDep,
) -> SeatOrderOut:
    """201 for a new order; 200 with the original for the same order sent again."""
    order, created = await CourseService(session, clock).order_seats(who.tenant_id, course_id, body)
    if not created:
        response.status_code = 200
    return order_out(order)


@router.get("/{course_id}/seats")
async def seat_counts(
    course_id: SlugPath, who: CurrentPrincipal, session: Session, clock: ClockDep
) -> SeatCounts:
    counts = await CourseService(session, clock).seat_counts(who.tenant_id, course_id)
    return SeatCounts(**counts)
